"""Every interval in the product, with its method stated, and the one rule for when an estimate is judgeable.

Methods (coverage checked by simulation at counts 1, 2, 5, 20 and 1,000: `python -m bench.interval_coverage`,
table in docs/analyses.md):
- a proportion (removal rates, precision from verdicts, regurgitation rates): Clopper–Pearson, whose coverage is
  at least 95% at every true rate; Wilson and Jeffreys average 95% but dip to 79–92% near 0 and 1 at small counts;
- a relative change of a caption frequency (filtered / original − 1): Clopper–Pearson-type bounds on the two
  cells that move it (captions with the term that were kept, and that were removed), drawn from
  Beta(x, n − x + 1) for the lower end and Beta(x + 1, n − x) for the upper, so an empty cell still gives a wide,
  honest interval;
- a recall estimated around sampled images (dedup): a bootstrap over the sampled images, since the pairs around
  one image are found or missed together, widened at small counts to the Clopper–Pearson interval over images.
Tests of many groups at once (removal rate per visual cluster): a two-sided exact binomial test of each group
against the overall rate, with Benjamini–Hochberg q-values over the groups tested (false discovery rate).
Judgeable: an estimate resting on fewer than `MIN_JUDGEABLE` observations is shown with its interval but marked
"too few to judge", not ranked and never passed by a gate (NCHS Data Presentation Standards for Proportions,
Parker et al. 2017, suppress proportions with an effective sample size below 30).
"""

from __future__ import annotations

import math

import numpy as np


def _scipy_stats():
    """scipy.stats, imported on first use: it costs half a second, and most commands never need an interval."""
    from scipy import stats

    return stats


Z95 = 1.959963984540054
MIN_JUDGEABLE = 30
TOO_FEW = f"too few to judge (< {MIN_JUDGEABLE})"
PROPORTION_METHOD = "Clopper–Pearson 95% interval"
CHANGE_METHOD = "95% Clopper–Pearson-type bounds on the kept and removed cells (2,000 Beta draws each)"


def judgeable(observations: float) -> bool:
    """The one rule: enough observations (captions with the term, items judged, samples measured) to rank."""
    return observations >= MIN_JUDGEABLE


def proportion_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper–Pearson ("exact") interval: coverage ≥ `level` at every true proportion, small counts included."""
    if trials <= 0:
        return (0.0, 1.0)
    alpha = 1 - level
    beta = _scipy_stats().beta
    low = 0.0 if successes <= 0 else float(beta.ppf(alpha / 2, successes, trials - successes + 1))
    high = 1.0 if successes >= trials else float(beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    return (low, high)


def verdicts_for_width(p: float, width: float, z: float = Z95) -> int:
    """Verdicts needed for a 95% interval of total width `width` around a proportion near `p` (normal approx.)."""
    p = min(max(p, 0.05), 0.95)
    return int(math.ceil((2 * z) ** 2 * p * (1 - p) / (width * width)))


def _beta_or_point(rng: np.random.Generator, a: float, b: float, draws: int) -> np.ndarray:
    """Beta(a, b) draws, with the degenerate ends (a = 0: all 0; b = 0: all 1) of the Clopper–Pearson bounds."""
    if a <= 0:
        return np.zeros(draws)
    if b <= 0:
        return np.ones(draws)
    return rng.beta(a, b, draws)


def _change_draws(
    term_kept: int, term_removed: int, n_kept: int, n_removed: int, draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draws of the relative change for its lower and its upper end (see `relative_change_interval`)."""
    w = n_kept / (n_kept + n_removed)

    def change(p_kept: np.ndarray, p_removed: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = p_kept / (w * p_kept + (1 - w) * p_removed) - 1
        return np.where(np.isnan(value), 0.0, value)

    low_kept = _beta_or_point(rng, term_kept, n_kept - term_kept + 1, draws)
    low_removed = _beta_or_point(rng, term_removed + 1, n_removed - term_removed, draws)
    high_kept = _beta_or_point(rng, term_kept + 1, n_kept - term_kept, draws)
    high_removed = _beta_or_point(rng, term_removed, n_removed - term_removed + 1, draws)
    return change(low_kept, low_removed), change(high_kept, high_removed)


def relative_change_interval(
    term_kept: int, term_removed: int, other_kept: int, other_removed: int, draws: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """95% interval for filtered frequency / original frequency − 1, honest when a cell is empty or tiny.

    With w the kept share, the change is p_k / (w·p_k + (1 − w)·p_r) − 1: it rises with p_k (share of kept
    captions containing the term) and falls with p_r (share of removed ones). The lower end is the 2.5th
    percentile of the change over the lower Clopper–Pearson posteriors of p_k and upper ones of p_r; the upper end
    the 97.5th over the opposite pair. A term seen once and kept spans a large decrease to the largest possible
    increase, instead of a confident +20%.
    """
    n_kept, n_removed = term_kept + other_kept, term_removed + other_removed
    if n_kept + n_removed == 0 or term_kept + term_removed == 0 or n_kept == 0:
        return None  # no term, or nothing kept: no filtered frequency
    if n_removed == 0:
        return (0.0, 0.0)
    low, high = _change_draws(term_kept, term_removed, n_kept, n_removed, draws, np.random.default_rng(seed))
    return (float(np.percentile(low, 2.5)), float(np.percentile(high, 97.5)))


def reweighted_change_interval(
    term_kept_weights: np.ndarray,
    term_removed: int,
    n_kept: int,
    n_removed: int,
    weight_range: tuple[float, float],
    draws: int = 2000,
    seed: int = 0,
) -> tuple[float, float] | None:
    """95% interval for the reweighted change, given the fitted weights (mean 1 over kept captions).

    The reweighted change is m·(1 + r) − 1, where r is the unweighted relative change and m the mean weight of the
    kept captions with the term; r is drawn as in `relative_change_interval` and m by a bootstrap over those
    captions. Below `MIN_JUDGEABLE` such captions a bootstrap cannot know how spread their weights are, so m
    spans `weight_range` (the smallest and largest kept weight): wide, and honest about it."""
    term_kept = len(term_kept_weights)
    if n_kept + n_removed == 0 or term_kept + term_removed == 0 or n_kept == 0:
        return None
    rng = np.random.default_rng(seed)
    if n_removed == 0:
        low_change = high_change = np.zeros(draws)
    else:
        low_change, high_change = _change_draws(term_kept, term_removed, n_kept, n_removed, draws, rng)
    if judgeable(term_kept):
        weights = np.asarray(term_kept_weights, dtype=np.float64)
        if term_kept <= 5000:
            means = weights[rng.integers(0, term_kept, size=(draws, term_kept))].mean(axis=1)
        else:  # large counts: the mean is normal to a fine approximation
            means = rng.normal(weights.mean(), weights.std(ddof=1) / np.sqrt(term_kept), draws)
        low_mean, high_mean = means, rng.permutation(means)
    else:
        low_mean, high_mean = np.full(draws, weight_range[0]), np.full(draws, weight_range[1])
    low = float(np.percentile(low_mean * (1 + low_change) - 1, 2.5))
    high = float(np.percentile(high_mean * (1 + high_change) - 1, 97.5))
    return (low, high)


def clustered_ratio_interval(
    found: np.ndarray, total: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95% interval for Σfound / Σtotal when the units are sampled images and the counts are the pairs around
    each: a percentile bootstrap over the images (pairs around one image are found or missed together, so
    treating pairs as independent gives intervals far too narrow). Below `MIN_JUDGEABLE` images with pairs, or
    when every image had all (or none) of its pairs found, the bootstrap cannot show the uncertainty, so the
    interval is widened to the Clopper–Pearson interval over those images (all 51 found: 0.930 … 1)."""
    found, total = np.asarray(found, dtype=np.float64), np.asarray(total, dtype=np.float64)
    with_pairs = total > 0
    units = int(with_pairs.sum())
    if units == 0:
        return (0.0, 1.0)
    found, total = found[with_pairs], total[with_pairs]
    rng = np.random.default_rng(seed)
    step = max(1, 10_000_000 // units)  # resamples per block, so a block holds ≤ 10M picks
    ratios = []
    for start in range(0, n_boot, step):
        picks = rng.integers(0, units, size=(min(step, n_boot - start), units))
        ratios.append(found[picks].sum(axis=1) / total[picks].sum(axis=1))
    low, high = (float(v) for v in np.percentile(np.concatenate(ratios), [2.5, 97.5]))
    all_or_none = bool(np.all(found == total) or np.all(found == 0))
    if not judgeable(units) or all_or_none:  # a bootstrap cannot see variation the sample does not hold
        estimate = found.sum() / total.sum()
        cp_low, cp_high = proportion_interval(round(estimate * units), units)
        low, high = min(low, cp_low), max(high, cp_high)
    return (low, high)


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size: how many unweighted samples the weighted set is worth."""
    total = float(weights.sum())
    return total * total / float(np.square(weights).sum()) if total > 0 else 0.0


STRATIFIED_METHOD = "stratified estimate, Korn–Graubard Clopper–Pearson 95% interval (effective sample size)"


def stratified_proportion(
    successes: np.ndarray, judged: np.ndarray, population: np.ndarray, level: float = 0.95
) -> tuple[float | None, tuple[float, float], float]:
    """(estimate, interval, effective sample size) of a population share from a stratified random sample.

    The estimate weights each stratum's sample share by the stratum's size. The interval is Korn and Graubard's
    (1998) Clopper–Pearson interval at the effective sample size p(1 − p) / Var(p̂), so it keeps Clopper–Pearson's
    behaviour at small counts and at 0 and 1; the variance carries the finite-population correction of each
    stratum, and a stratum with one judged item counts with the largest Bernoulli variance (1/4). Strata with no
    judged item are left out and the weights of the others renormalised (the caller says so)."""
    successes, judged, population = (np.asarray(a, dtype=float) for a in (successes, judged, population))
    seen = judged > 0
    if not seen.any():
        return None, (0.0, 1.0), 0.0
    weights = population[seen] / population[seen].sum()
    shares = successes[seen] / judged[seen]
    estimate = float((weights * shares).sum())
    n_h, big_n = judged[seen], population[seen]
    unit_variance = np.where(n_h >= 2, shares * (1 - shares) * n_h / np.maximum(n_h - 1, 1), 0.25)
    variance = float((weights**2 * (1 - n_h / big_n) * unit_variance / n_h).sum())
    total = float(n_h.sum())
    if variance > 0 and 0 < estimate < 1:
        effective = min(estimate * (1 - estimate) / variance, float(big_n.sum()))
        degrees = max(total - len(n_h), 1.0)  # Korn–Graubard's degrees-of-freedom correction for few items
        if total > 1:
            effective *= (
                _scipy_stats().t.ppf(1 - (1 - level) / 2, total - 1)
                / _scipy_stats().t.ppf(1 - (1 - level) / 2, degrees)
            ) ** 2
    else:
        effective = total
    alpha = 1 - level
    x = estimate * effective
    low = 0.0 if x <= 0 else float(_scipy_stats().beta.ppf(alpha / 2, x, effective - x + 1))
    high = 1.0 if x >= effective else float(_scipy_stats().beta.ppf(1 - alpha / 2, x + 1, effective - x))
    return estimate, (low, high), effective


def binomial_p_value(successes: int, trials: int, rate: float) -> float:
    """Two-sided exact binomial test of `successes` in `trials` against the rate `rate`."""
    if trials <= 0:
        return 1.0
    return float(_scipy_stats().binomtest(successes, trials, min(max(rate, 0.0), 1.0)).pvalue)


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """q-values controlling the false discovery rate over the tests given (Benjamini & Hochberg 1995): the
    smallest FDR at which each test would be called significant."""
    p = np.asarray(p_values, dtype=np.float64)
    return p if p.size == 0 else _scipy_stats().false_discovery_control(p, method="bh")
