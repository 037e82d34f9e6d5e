"""Feed-forward arbitrary style transfer (Huang & Belongie 2017): AdaIN at relu4_1 and a decoder we train.

The encoder is the project's VGG19 up to relu4_1 (frozen). The decoder mirrors it (nearest upsampling, reflection
padding) and is trained by `train_decoder` with the usual losses: content = distance between the encoder's
features of the output and the AdaIN target; style = distance between the channel means and standard deviations
at relu1_1..relu4_1 of the output and of the style image. Checkpoints are resumable; the shipped weights are fp16.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision import transforms
from torchvision.models.feature_extraction import create_feature_extractor
from tqdm.auto import tqdm

from common.atomic import atomic_write
from common.errors import NoSuchFile
from transfer.images import ImageError, LoadedImage, list_images, load_image
from transfer.render import RenderError, RenderOptions, RenderResult, to_image, to_tensor
from transfer.vgg import LAYER_NODES, caffe_preprocess, load_vgg19_features

log = logging.getLogger(__name__)

ENCODER_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "adain_decoder.pt"


def decoder() -> nn.Sequential:
    """The decoder: relu4_1 features (512 channels, 1/8 size) back to an RGB image in [0, 1]."""

    def conv(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)]
        return [*layers, nn.ReLU()] if relu else layers

    up = [nn.Upsample(scale_factor=2, mode="nearest")]
    return nn.Sequential(
        *conv(512, 256), *up,
        *conv(256, 256), *conv(256, 256), *conv(256, 256), *conv(256, 128), *up,
        *conv(128, 128), *conv(128, 64), *up,
        *conv(64, 64), *conv(64, 3, relu=False),
    )  # fmt: skip


def mean_std(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    n, c = features.shape[:2]
    flat = features.reshape(n, c, -1)
    return flat.mean(-1).view(n, c, 1, 1), (flat.var(-1, unbiased=False) + eps).sqrt().view(n, c, 1, 1)


def adain(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Content features renormalised to the style features' channel means and standard deviations."""
    c_mean, c_std = mean_std(content)
    s_mean, s_std = mean_std(style)
    return (content - c_mean) / c_std * s_std + s_mean


class AdaINModel(nn.Module):
    """Frozen VGG19 encoder to relu4_1 + trainable decoder."""

    def __init__(self) -> None:
        super().__init__()
        nodes = {LAYER_NODES[name]: name for name in ENCODER_LAYERS}
        self.encoder = create_feature_extractor(load_vgg19_features("relu4_1"), return_nodes=nodes)
        self.encoder.requires_grad_(False).eval()
        self.decoder = decoder()

    def encode(self, rgb01: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.encoder(caffe_preprocess(rgb01))

    def stylise(self, content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        c, s = self.encode(content)["relu4_1"], self.encode(style)["relu4_1"]
        target = alpha * adain(c, s) + (1 - alpha) * c
        return self.decoder(target)

    def losses(self, content: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(content loss, style loss) of one training batch."""
        style_features = self.encode(style)
        target = adain(self.encode(content)["relu4_1"], style_features["relu4_1"])
        output = self.decoder(target)
        output_features = self.encode(output)
        content_loss = F.mse_loss(output_features["relu4_1"], target)
        return content_loss, style_distance(output_features, style_features)


def style_distance(features: dict[str, torch.Tensor], style_features: dict[str, torch.Tensor]) -> torch.Tensor:
    """The style loss: squared distance between the channel means and standard deviations of two images'
    `encode` features, summed over relu1_1..relu4_1."""
    pairs = ((mean_std(features[name]), mean_std(style_features[name])) for name in ENCODER_LAYERS)
    return sum(F.mse_loss(mo, ms) + F.mse_loss(so, ss) for (mo, so), (ms, ss) in pairs)


# -- training -----------------------------------------------------------------------------------------------
class _Crops(torch.utils.data.Dataset):
    """Random square crops of the images under a folder (unreadable files are skipped)."""

    def __init__(self, folder: str | os.PathLike, size: int) -> None:
        self.paths = list_images(folder)
        if not self.paths:
            raise NoSuchFile(f"no images under {folder}")
        self.transform = transforms.Compose(
            [transforms.Resize(int(size * 1.15)), transforms.RandomCrop(size), transforms.ToTensor()]
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        for offset in range(len(self.paths)):
            try:
                rgb = load_image(self.paths[(i + offset) % len(self.paths)]).rgb
                return self.transform(Image.fromarray(rgb))
            except ImageError:
                continue
        raise RuntimeError("no readable image")


def _forever(loader):
    while True:
        yield from loader


def train_decoder(
    content_dir: str | os.PathLike,
    style_dir: str | os.PathLike,
    out: str | os.PathLike,
    steps: int = 2000,
    batch_size: int = 8,
    size: int = 256,
    lr: float = 1e-4,
    style_weight: float = 10.0,
    checkpoint_every: int = 200,
    device: str | None = None,
    seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
    minutes: float | None = None,
) -> list[float]:
    """Train (or resume training) the AdaIN decoder; checkpoints go to `out` (a .pt file) every
    `checkpoint_every` steps and at the end. Returns the loss of every step run in this call.

    `workers`: image-decoding processes per loader (default: 0 on CPU, half the cores up to 8 on a GPU, which
    otherwise waits for JPEG decoding). `minutes`: stop (with a checkpoint) after this much wall-clock time even
    if `steps` is not reached, so that a lent GPU's time can be spent in slices; a later call resumes."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(seed)
    random.seed(seed)
    model = AdaINModel().to(device)
    optimiser = torch.optim.Adam(model.decoder.parameters(), lr=lr)
    out = Path(out)
    step = 0
    if out.exists():
        state = torch.load(out, map_location=device, weights_only=True)
        model.decoder.load_state_dict({k: v.float() for k, v in state["decoder"].items()})
        if "optimiser" in state:
            optimiser.load_state_dict(state["optimiser"])
        step = int(state.get("step", 0))
        log.info("resuming %s at step %d", out, step)
    if workers is None:
        workers = min(8, (os.cpu_count() or 2) // 2) if device.type == "cuda" else 0
    loaders = [
        torch.utils.data.DataLoader(
            _Crops(d, size), batch_size=batch_size, shuffle=True, num_workers=workers,
            pin_memory=device.type == "cuda", persistent_workers=workers > 0,
        )
        for d in (content_dir, style_dir)
    ]  # fmt: skip
    deadline = time.monotonic() + minutes * 60 if minutes else float("inf")
    contents, styles = _forever(loaders[0]), _forever(loaders[1])
    losses = []
    model.decoder.train()
    with tqdm(total=steps, initial=min(step, steps), desc="training decoder", disable=not progress) as bar:
        while step < steps:
            content = next(contents).to(device, non_blocking=True)
            style = next(styles).to(device, non_blocking=True)
            n = min(len(content), len(style))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                content_loss, style_loss = model.losses(content[:n], style[:n])
                loss = content_loss + style_weight * style_loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step += 1
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.1f}")
            out_of_time = time.monotonic() > deadline
            if step % checkpoint_every == 0 or step == steps or out_of_time:
                _save(model, optimiser, step, out)
            if out_of_time:
                log.info("stopping at step %d: the %.1f-minute budget is spent", step, minutes)
                break
    return losses


def _save(model: AdaINModel, optimiser, step: int, out: Path) -> None:
    state = {"decoder": model.decoder.state_dict(), "optimiser": optimiser.state_dict(), "step": step}
    atomic_write(out, lambda f: torch.save(state, f))


def export_weights(checkpoint: str | os.PathLike, out: str | os.PathLike = SHIPPED_WEIGHTS) -> Path:
    """The decoder weights alone, in fp16 (what ships with the package)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    weights = {"decoder": {k: v.half() for k, v in state["decoder"].items()}, "step": state.get("step", 0)}
    return atomic_write(out, lambda f: torch.save(weights, f))


# -- rendering ----------------------------------------------------------------------------------------------
def weights_path(weights: str | os.PathLike | None = None) -> Path:
    """The decoder weights a renderer loads: `weights`, else `$STYLEREC_ADAIN_WEIGHTS`, else the shipped ones."""
    return Path(weights) if weights else Path(os.environ.get("STYLEREC_ADAIN_WEIGHTS", SHIPPED_WEIGHTS))


@functools.lru_cache(maxsize=8)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def weights_id(weights: str | os.PathLike | None = None) -> str:
    """A short hash of the decoder weights `weights_path` names ("" when there are none): renders made with other
    weights are other renders, so the render cache's key includes it."""
    path = weights_path(weights)
    try:
        stat = path.stat()
    except OSError:
        return ""
    return _sha256(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


class AdaINRenderer:
    """Renders with a trained decoder; `RenderError` with what to do when there are no weights."""

    def __init__(self, weights: str | os.PathLike | None = None, device: str | None = None) -> None:
        path = weights_path(weights)
        if not path.exists():
            raise RenderError(
                f"no trained AdaIN decoder at {path}: train one with `stylerec train-decoder` (a GPU helps), "
                "or use the gatys renderer"
            )
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = AdaINModel().to(self.device).eval()
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.decoder.load_state_dict({k: v.float() for k, v in state["decoder"].items()})
        self.model.requires_grad_(False)

    @torch.inference_mode()
    def render(self, content: LoadedImage, style: LoadedImage, options: RenderOptions, progress=False):
        start = time.perf_counter()
        c = to_tensor(content.rgb, options.size).to(self.device)
        s = to_tensor(style.rgb, options.size).to(self.device)
        out = self.model.stylise(c, s).clamp(0, 1)
        out = F.interpolate(out, c.shape[-2:], mode="bilinear")
        return RenderResult(to_image(out), time.perf_counter() - start, 1)


def renderer_for(options: RenderOptions, device: str | None = None, threads: int | None = None):
    """The renderer an options object names (`threads`: the fast renderer's onnxruntime threads; it runs on CPU)."""
    from transfer.fast import FastRenderer
    from transfer.render import GatysRenderer

    if options.renderer == "fast":
        return FastRenderer(threads)
    return AdaINRenderer(device=device) if options.renderer == "adain" else GatysRenderer(device)
