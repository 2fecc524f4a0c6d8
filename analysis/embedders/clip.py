"""CLIP through open_clip_torch: `open_clip:MODEL:PRETRAINED`, PRETRAINED a tag or a local checkpoint.

Tags download from a model hub unless already cached; on an offline machine that fails, and the
error says to pass a local checkpoint path instead. The text tower is exposed for search by text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from analysis.embedders.base import ResizePreprocess, l2_normalise
from analysis.errors import AuditInputError


class OpenClipEmbedder:
    def __init__(self, model_name: str, pretrained: str, device: str = "cpu") -> None:
        import open_clip

        self.name = f"open_clip:{model_name}:{pretrained}"
        self.device = device
        if model_name not in open_clip.list_models():
            raise AuditInputError(
                f"open_clip has no model '{model_name}'.", fix="see open_clip.list_models(), e.g. ViT-B-32."
            )
        local = Path(pretrained).expanduser()
        try:
            if local.exists():
                model = open_clip.create_model(model_name, pretrained=str(local), device=device)
            elif pretrained in ("none", "random"):
                model = open_clip.create_model(model_name, pretrained=None, device=device)
            else:
                model = open_clip.create_model(model_name, pretrained=pretrained, device=device)
        except (RuntimeError, OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise AuditInputError(
                f"cannot load open_clip weights '{pretrained}' for {model_name} ({reason}).",
                fix="this machine may be offline: download the checkpoint elsewhere and pass its "
                "local path, e.g. open_clip:ViT-B-32:/models/vit_b_32.pt.",
            ) from None
        self.model = model.eval()
        self.tokenizer = open_clip.get_tokenizer(model_name)
        size = model.visual.image_size
        size = size[0] if isinstance(size, (tuple, list)) else size
        mean = tuple(getattr(model.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN)
        std = tuple(getattr(model.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD)
        self.preprocess = ResizePreprocess(int(size), mean, std)
        self.preprocessing = self.preprocess.describe()
        self.version = f"open_clip_torch {open_clip.__version__}, {model_name}, weights {pretrained}"
        with torch.inference_mode():
            self.dim = int(self.model.encode_image(torch.zeros(1, 3, size, size, device=device)).shape[-1])

    @torch.inference_mode()
    def embed(self, batch: np.ndarray) -> np.ndarray:
        return l2_normalise(self.model.encode_image(torch.from_numpy(batch).to(self.device)).float().cpu().numpy())

    @torch.inference_mode()
    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Text-tower embeddings in the same space as the images (for search by text)."""
        tokens = self.tokenizer(texts).to(self.device)
        return l2_normalise(self.model.encode_text(tokens).float().cpu().numpy())
