"""The FAISS style index (no torch import here)."""
