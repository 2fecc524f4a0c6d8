"""The embedder interface and the factory that turns a name into an embedder."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
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


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
LARGEST_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc refuses more on 64-bit (HEAP_MAX_SIZE / 2)


@lru_cache(maxsize=1)
def keep_freed_buffers() -> bool:
    """Let glibc keep the model's freed activation buffers for the next batch instead of returning them to the kernel.

    By default glibc serves every allocation above its mmap threshold with a fresh `mmap` and unmaps it on free, and
    trims the heap top on every large free, so each forward pass page-faults its activations in again: at batch 32,
    EfficientNet-Lite0 spent 46% of its CPU time in the kernel (5.2 million minor faults per 512 images) and ran at
    40 img/s. With the threshold at glibc's maximum and no trimming, batch 4 runs at 80–98 img/s with a few thousand
    faults (analysis.embeddings.DEFAULT_BATCH_SIZE; bench/prepare_speed.py, docs/benchmarks.md). A process-wide
    setting, made once by the process that runs a model; elsewhere than glibc, nothing. Returns whether it was
    applied."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl and other libcs: their allocators behave differently; leave them alone
        return False
    kept_mapped = libc.mallopt(M_MMAP_THRESHOLD, LARGEST_MMAP_THRESHOLD)
    return bool(kept_mapped and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))


def l2_normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


def default_for_embedder(defaults: Mapping[str, float], embedder: str, fallback: float = 0.95) -> float:
    """A per-embedder default (thresholds differ by embedder: cosines of different models are not comparable)."""
    return next((value for prefix, value in defaults.items() if embedder.startswith(prefix)), fallback)
