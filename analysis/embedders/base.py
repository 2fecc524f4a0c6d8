"""The embedder interface and the factory that turns a name into an embedder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image


class Embedder(Protocol):
    name: str
    version: str
    dim: int
    preprocessing: str

    # Picklable, so DataLoader workers can decode and resize in parallel while the model runs.
    @property
    def preprocess(self) -> ResizePreprocess: ...

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """(N, C, H, W) float32 → (N, dim) float32, L2-normalised rows."""
        ...


@dataclass(frozen=True)
class ResizePreprocess:
    """Resize the short side, centre-crop, scale to [0, 1], normalise: the usual ImageNet/CLIP recipe."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, image: Image.Image) -> np.ndarray:
        # Crop the central square first, then resize: the same pixels as resize-then-crop, without building a
        # huge intermediate for extreme aspect ratios (a 20000×50 banner).
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        crop = image.crop((left, top, left + side, top + side)).resize((self.size, self.size), Image.Resampling.BICUBIC)
        array: np.ndarray = np.asarray(crop, dtype=np.float32) / 255.0
        array = (array - np.array(self.mean, dtype=np.float32)) / np.array(self.std, dtype=np.float32)
        return np.ascontiguousarray(array.transpose(2, 0, 1))

    def describe(self) -> str:
        return f"centre square crop, resize to {self.size} (bicubic), mean {self.mean}, std {self.std}"


def l2_normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


def default_for_embedder(defaults: Mapping[str, float], embedder: str, fallback: float = 0.95) -> float:
    """A per-embedder default (thresholds differ by embedder: cosines of different models are not comparable)."""
    return next((value for prefix, value in defaults.items() if embedder.startswith(prefix)), fallback)
