"""Caption templates for the synthetic sample and the removal plan that gives it the DALL·E 2 asymmetry.

The plan is exact by construction: with 1,000 images, 120 captions mention "woman" and 120 "man";
the filters remove 22 of the former, 13 of the latter and 15 others (50 = 5%). So the document
frequency of "woman" changes by (98/950)/(120/1000) − 1 = −14.0% and that of "man" by −6.1%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_WOMAN, N_MAN = 120, 120
# Rows removed per caption kind, split by which filter removes them (sexual, violence, both).
REMOVED_PLAN = {"woman": (16, 4, 2), "man": (3, 8, 2), "neutral": (6, 8, 1)}

ADJECTIVES = ("young", "smiling", "tall", "elderly", "happy", "serious", "tired", "cheerful")
SAFE_CONTEXTS = (
    "reading a book in a park",
    "riding a bicycle down a street",
    "cooking dinner in a kitchen",
    "walking a dog on the beach",
    "working at a laptop in an office",
    "playing the guitar on stage",
    "holding an umbrella in the rain",
    "painting a landscape",
    "drinking coffee at a cafe",
    "hiking on a mountain trail",
    "shopping at a market",
    "teaching a class",
)
SEXUAL_CONTEXTS = (
    "posing in lingerie",
    "in a revealing swimsuit",
    "in a suggestive pose on a bed",
    "wearing a bikini at a pool party",
)
VIOLENT_CONTEXTS = (
    "holding a bloody knife",
    "in a violent street fight",
    "aiming a gun at the camera",
    "with a wounded face after an attack",
)
NEUTRAL_SAFE = (
    "a photo of a cat on a sofa",
    "a bowl of fruit on a wooden table",
    "a city skyline at night",
    "a red car parked by the road",
    "a plate of pasta with basil",
    "a forest path in autumn",
    "an old building with tall windows",
    "a cup of coffee next to a notebook",
    "a beach at sunset",
    "a mountain lake under clouds",
    "a bicycle leaning on a wall",
    "a close-up of a flower",
)
NEUTRAL_SEXUAL = ("an explicit lingerie advertisement", "a suggestive bedroom poster", "a nude art print")
NEUTRAL_VIOLENT = (
    "a car crash with blood on the road",
    "a bloody knife on a table",
    "a battlefield with bodies",
    "a gun pointed at the viewer",
)


@dataclass(frozen=True)
class CaptionRow:
    caption: str
    kind: str  # woman / man / neutral
    sexual: float
    violence: float
    context: str = "safe"  # safe / sexual / violence: the visual concept the image is drawn with


def _gendered(rng: np.random.Generator, noun: str, contexts: tuple[str, ...]) -> str:
    adjective = ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]
    return f"a {adjective} {noun} {contexts[int(rng.integers(len(contexts)))]}"


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _low(rng: np.random.Generator) -> float:
    """A clearly safe classifier score (never near the 0.5 threshold)."""
    return min(float(rng.beta(1.2, 12)), 0.45)


def _near_miss_scores(rng: np.random.Generator, filters: str) -> tuple[float, float]:
    under = lambda: float(rng.uniform(0.3, 0.48))  # noqa: E731
    return {"sexual": (under(), _low(rng)), "violence": (_low(rng), under()), "both": (under(), under())}[filters]


def _risky_scores(rng: np.random.Generator, filters: str) -> tuple[float, float]:
    high = lambda: float(rng.uniform(0.55, 0.99))  # noqa: E731
    low = lambda: _low(rng)  # noqa: E731
    return {"sexual": (high(), low()), "violence": (low(), high()), "both": (high(), high())}[filters]


def plan_captions(rng: np.random.Generator, n_scenes: int) -> list[CaptionRow | None]:
    """Captions for the scene images, in random order; None where the image keeps its own description.

    Gendered and risky captions go on scene images only, so the near-duplicate families stay safe.
    """
    rows: list[CaptionRow | None] = []
    for kind in ("woman", "man", "neutral"):
        n_sexual, n_violent, n_both = REMOVED_PLAN[kind]
        removed = ["sexual"] * n_sexual + ["violence"] * n_violent + ["both"] * n_both
        # Each removed caption has a kept twin in the same risky context whose score fell just under the
        # threshold: classifiers are noisy, so P(kept | context) is near 1/2, not 0 (what reweighting needs).
        plan = removed + [f"near-{fate}" for fate in removed]
        if kind != "neutral":
            plan += ["safe"] * ((N_WOMAN if kind == "woman" else N_MAN) - len(plan))
        for fate in plan:
            contexts: tuple[str, ...]
            if fate == "safe":
                sexual, violence, contexts = _low(rng), _low(rng), SAFE_CONTEXTS
            elif fate.startswith("near-"):
                sexual, violence = _near_miss_scores(rng, fate.removeprefix("near-"))
                contexts = VIOLENT_CONTEXTS if fate == "near-violence" else SEXUAL_CONTEXTS
            else:
                sexual, violence = _risky_scores(rng, fate)
                contexts = VIOLENT_CONTEXTS if fate == "violence" else SEXUAL_CONTEXTS
            if kind == "neutral":
                caption = _pick(rng, NEUTRAL_VIOLENT if contexts is VIOLENT_CONTEXTS else NEUTRAL_SEXUAL)
            else:
                caption = _gendered(rng, kind, contexts)
            context = "safe" if fate == "safe" else "violence" if contexts is VIOLENT_CONTEXTS else "sexual"
            rows.append(CaptionRow(caption, kind, round(sexual, 4), round(violence, 4), context))
    if len(rows) > n_scenes:
        raise ValueError(f"need at least {len(rows)} scene images, got {n_scenes}")
    rows += [None] * (n_scenes - len(rows))
    return [rows[i] for i in rng.permutation(len(rows))]


def safe_scores(rng: np.random.Generator) -> tuple[float, float]:
    return round(_low(rng), 4), round(_low(rng), 4)
