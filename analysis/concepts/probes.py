"""Text probes: with an embedder that has a text tower (open_clip), which of a few prompts ("a photo of a woman",
"a photo of a man") each image is closest to, and how the shares differ between kept and removed images. This sees
what captions do not say (an image of a woman captioned "a person on a beach"). Zero-shot CLIP assignments carry
CLIP's own biases; they are a probe to look further, not a measurement of people."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.index import as_float32
from analysis.stats import judgeable, proportion_interval

DEFAULT_PROBES = ("a photo of a woman", "a photo of a man")
NO_TEXT_TOWER = (
    "The embedder {embedder} has no text tower, so images cannot be compared with text prompts. Prepare the "
    "workspace with an open_clip embedder (`pretrain-audit prepare DIR --embedder open_clip:MODEL:CHECKPOINT`) "
    "to run text probes."
)


@dataclass(frozen=True)
class ProbeShare:
    prompt: str
    kept: int
    removed: int
    kept_share: float
    removed_share: float
    kept_ci95: tuple[float, float]
    removed_ci95: tuple[float, float]

    @property
    def ratio(self) -> float | None:
        """Removed share / kept share: above 1, removal took more of the images closest to this prompt."""
        return self.removed_share / self.kept_share if self.kept_share else None

    def to_json(self) -> dict:
        return {
            "prompt": self.prompt,
            "kept": {"count": self.kept, "share": self.kept_share, "ci95": list(self.kept_ci95)},
            "removed": {"count": self.removed, "share": self.removed_share, "ci95": list(self.removed_ci95)},
            "removed_over_kept": self.ratio,
        }


@dataclass(frozen=True)
class ProbeResult:
    embedder: str
    available: bool
    reason: str
    n_kept: int
    n_removed: int
    shares: list[ProbeShare]

    @property
    def judgeable(self) -> bool:
        return judgeable(self.n_removed) and judgeable(self.n_kept)

    def to_json(self) -> dict:
        return {
            "embedder": self.embedder,
            "available": self.available,
            "reason": self.reason or None,
            "n_kept": self.n_kept,
            "n_removed": self.n_removed,
            "judgeable": self.judgeable,
            "assignment": "each image goes to the prompt whose text embedding is most similar to it",
            "probes": [s.to_json() for s in self.shares],
        }


def unavailable(embedder: str) -> ProbeResult:
    return ProbeResult(embedder, False, NO_TEXT_TOWER.format(embedder=embedder), 0, 0, [])


def probe_shares(
    vectors: np.ndarray,
    valid: np.ndarray,
    kept: np.ndarray,
    prompts: list[str],
    prompt_vectors: np.ndarray,
    embedder: str,
    chunk: int = 65_536,
) -> ProbeResult:
    """Assign every embedded image to its nearest prompt and compare the shares among kept and removed images."""
    nearest = np.full(len(vectors), -1, dtype=np.int64)
    rows = np.flatnonzero(valid)
    text = as_float32(prompt_vectors)
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        nearest[part] = np.argmax(as_float32(vectors[part]) @ text.T, axis=1)
    kept_rows, removed_rows = valid & kept, valid & ~kept
    n_kept, n_removed = int(kept_rows.sum()), int(removed_rows.sum())
    kept_counts = np.bincount(nearest[kept_rows], minlength=len(prompts))
    removed_counts = np.bincount(nearest[removed_rows], minlength=len(prompts))
    shares = [
        ProbeShare(
            prompt,
            int(kept_counts[i]),
            int(removed_counts[i]),
            kept_counts[i] / n_kept if n_kept else 0.0,
            removed_counts[i] / n_removed if n_removed else 0.0,
            proportion_interval(int(kept_counts[i]), n_kept),
            proportion_interval(int(removed_counts[i]), n_removed),
        )
        for i, prompt in enumerate(prompts)
    ]
    return ProbeResult(embedder, True, "", n_kept, n_removed, shares)
