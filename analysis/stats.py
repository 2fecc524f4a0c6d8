"""Small statistical helpers with the methods stated, so every interval in the product is explainable."""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion (good coverage for small n and rates near 0 or 1)."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def verdicts_for_width(p: float, width: float, z: float = Z95) -> int:
    """Verdicts needed for a 95% interval of total width `width` around a proportion near `p` (normal approx.)."""
    p = min(max(p, 0.05), 0.95)
    return int(math.ceil((2 * z) ** 2 * p * (1 - p) / (width * width)))


def relative_change_interval(
    term_kept: int, term_removed: int, other_kept: int, other_removed: int, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """95% percentile-bootstrap interval for filtered frequency / original frequency − 1.

    Resampling captions of the original with replacement only changes the four cell counts
    (term × kept), so the bootstrap is drawn exactly as a multinomial over the cells: the same
    estimator as resampling rows, at no cost per caption.
    """
    counts = np.array([term_kept, term_removed, other_kept, other_removed], dtype=np.float64)
    n = counts.sum()
    if n == 0 or term_kept + term_removed == 0:
        return None
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(int(n), counts / n, size=n_boot).astype(np.float64)
    a, b, c = draws[:, 0], draws[:, 1], draws[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (a / (a + c)) / ((a + b) / n) - 1
    ratio = ratio[np.isfinite(ratio)]
    if len(ratio) < n_boot // 2:
        return None
    low, high = np.percentile(ratio, [2.5, 97.5])
    return (float(low), float(high))


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size: how many unweighted samples the weighted set is worth."""
    total = float(weights.sum())
    return total * total / float(np.square(weights).sum()) if total > 0 else 0.0
