"""How things look: the VGG19 encoder, Gram style embeddings, and (later) style transfer."""
