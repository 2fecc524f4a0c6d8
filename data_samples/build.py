"""`pretrain-audit sample DIR`: a small, deterministic, clearly synthetic audit workspace.

1,000 training images (128 px): real photographs shipped in scikit-image and edits of them, clock
and logo families of near-duplicates, exact duplicates, and novel scenes; two simulated classifier
scores whose filter removes 5% of the data, more of the "woman" captions than the "man" ones; and
100 generated samples of which a known minority are near-copies. The ground truth is written to
`sample_truth.json` so tests can check the analyses against it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from analysis.cache import atomic_save_json, atomic_save_parquet
from analysis.workspace import write_config
from data_samples import drawing
from data_samples.captions import N_MAN, N_WOMAN, NEUTRAL_SAFE, plan_captions, safe_scores

SEED = 20220628  # the date of OpenAI's DALL·E 2 pre-training mitigations post
N_TRAIN = 1000
N_GENERATED = 100
N_EVAL = 40  # the evaluation set looked for by `contamination`: a few planted copies among distinct items
EVAL_NAME = "bench-eval"
EDITED_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "retina")
TEXTURED = ("astronaut", "coffee", "chelsea", "motorcycle_left")  # photos whose crops verify at 128 px
EXACT_DUPLICATE_SOURCES = 10
THRESHOLDS = {"sexual": 0.5, "violence": 0.5}
# The limits a pipeline would set (`check`, the report's summary): the sample's planted bias and memorised copies fail
# them, its filters' removed share passes.
SAMPLE_GATES = {
    "max-removed-fraction": 0.10,
    "max-term-shift": ["woman=0.10", "man=0.10"],
    "max-duplicate-fraction": 0.15,
    "max-regurgitation-rate": 0.05,
}
SYNTHETIC_NOTE = "SYNTHETIC sample workspace built by `pretrain-audit sample`: not real training data."
HUE_NAMES = (
    (0.04, "red"),
    (0.11, "orange"),
    (0.19, "yellow"),
    (0.45, "green"),
    (0.53, "teal"),
    (0.72, "blue"),
    (0.8, "purple"),
    (0.95, "pink"),
    (1.0, "red"),
)


def hue_name(hue: float) -> str:
    return next(name for limit, name in HUE_NAMES if hue % 1.0 < limit)


def _families() -> list[tuple[str, str, Image.Image]]:
    """(family, caption, image) for every member of a planted near-duplicate family."""
    members = []
    for style in range(len(drawing.CLOCK_STYLES)):
        for hour in range(1, 13):
            members.append((f"clock-{style}", f"a wall clock showing {hour} o'clock", drawing.clock(style, hour)))
    for shape, name in enumerate(drawing.LOGO_SHAPES):
        for variant in range(8):
            # Neighbouring variants differ by a small hue step, as re-coloured copies of one icon do.
            hue = shape / 6 + variant * 0.025
            members.append((f"logo-{name}", f"the ACME {name} logo in {hue_name(hue)}", drawing.logo(shape, hue)))
    for photo in EDITED_PHOTOS:
        for edit, image in zip(
            ("original", "cropped", "rescaled", "recoloured", "compressed", "rotated"), drawing.photo_edits(photo)
        ):
            members.append((f"photo-{photo}", f"a {edit} photo of the {photo.replace('_', ' ')}", image))
    return members


def build_sample(directory: Path, *, seed: int = SEED, progress: bool = False) -> Path:
    """Write the sample workspace into `directory` (created; must be empty or absent)."""
    started = time.monotonic()
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        from analysis.errors import AuditInputError

        raise AuditInputError("directory is not empty.", path=directory, fix="choose a new or empty directory.")
    rng = np.random.default_rng(seed)
    train_dir, generated_dir = directory / "images" / "train", directory / "images" / "generated"
    train_dir.mkdir(parents=True)
    generated_dir.mkdir(parents=True)

    families = _families()
    scene_captions = plan_captions(rng, N_TRAIN - len(families) - EXACT_DUPLICATE_SOURCES)
    items = _family_items(rng, families) + _scene_items(rng, scene_captions)
    _add_exact_duplicates(rng, items)
    order = rng.permutation(len(items))
    items = [items[i] for i in order]
    original = _write_training_images(directory, items)
    generated, copies = _generated(rng, items, generated_dir)
    evaluation, eval_truth = _evaluation(np.random.default_rng(seed + 1), items, directory / "eval")
    _write_workspace(directory, original, generated, evaluation)
    atomic_save_json(directory / "sample_truth.json", _truth(items, original, copies) | eval_truth)
    (directory / "README.txt").write_text(SYNTHETIC_NOTE + "\nSee sample_truth.json for the planted ground truth.\n")
    if progress:
        import sys

        print(f"sample workspace written to {directory} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return directory


def _family_items(rng: np.random.Generator, families: list) -> list[dict]:
    """The planted near-duplicate families, each member with safe scores and a neutral caption."""
    items: list[dict] = []
    for family, caption, image in families:
        sexual, violence = safe_scores(rng)
        items.append(
            {
                "family": family,
                "caption": caption,
                "image": image,
                "kind": family.split("-")[0],
                "caption_kind": "neutral",
                "sexual": sexual,
                "violence": violence,
                "context": "safe",
            }
        )
    return items


def _scene_items(rng: np.random.Generator, scene_captions: list) -> list[dict]:
    """One drawn scene per planned caption: safe and neutral where none is planned, else the planned concept."""
    items: list[dict] = []
    for planned in scene_captions:
        context = "safe" if planned is None else planned.context
        if planned is None:
            sexual, violence = safe_scores(rng)
            caption, caption_kind = NEUTRAL_SAFE[int(rng.integers(len(NEUTRAL_SAFE)))], "neutral"
        else:
            sexual, violence, caption, caption_kind = planned.sexual, planned.violence, planned.caption, planned.kind
        items.append(
            {
                "family": None,
                "caption": caption,
                "image": drawing.with_concept(drawing.scene(rng), context),
                "kind": "scene",
                "caption_kind": caption_kind,
                "sexual": sexual,
                "violence": violence,
                "context": context,
            }
        )
    return items


def _add_exact_duplicates(rng: np.random.Generator, items: list[dict]) -> None:
    """Byte-identical copies of safe scene images, under new ids (appended to `items`)."""
    safe_scene_rows = [
        i
        for i, it in enumerate(items)
        if it["kind"] == "scene" and it["caption_kind"] == "neutral" and max(it["sexual"], it["violence"]) < 0.3
    ]
    for source in rng.choice(safe_scene_rows, EXACT_DUPLICATE_SOURCES, replace=False):
        copy = dict(items[int(source)])
        copy["family"] = f"exact-{int(source)}"
        items[int(source)]["family"] = copy["family"]
        items.append(copy)


def _write_training_images(directory: Path, items: list[dict]) -> pd.DataFrame:
    """Each item's PNG under images/train, its id set on the item; the original manifest's rows."""
    rows = []
    for index, item in enumerate(items):
        item_id = f"train-{index:04d}"
        relative = f"train/{item_id}.png"
        item["image"].save(directory / "images" / relative, format="PNG", optimize=False)
        item["id"] = item_id
        rows.append(
            {
                "id": item_id,
                "image": relative,
                "caption": item["caption"],
                "sexual": item["sexual"],
                "violence": item["violence"],
                "kind": item["kind"],
                "width": item["image"].width,
                "height": item["image"].height,
            }
        )
    return pd.DataFrame(rows)


def _write_workspace(
    directory: Path, original: pd.DataFrame, generated: pd.DataFrame, evaluation: pd.DataFrame
) -> None:
    """The manifests and audit.toml: LAION-style score filters, the generated set, gates and the eval set."""
    atomic_save_parquet(directory / "original.parquet", original)
    atomic_save_parquet(directory / "generated.parquet", generated)
    atomic_save_parquet(directory / "eval" / "eval.parquet", evaluation)
    write_config(
        directory,
        {
            "workspace": {
                "name": "synthetic sample",
                "images_root": "images",
                "synthetic": True,
                "description": SYNTHETIC_NOTE,
            },
            "original": {"manifest": "original.parquet"},
            "filtered": {
                "scores": [{"name": name, "column": name, "threshold": value} for name, value in THRESHOLDS.items()]
            },
            "generated": {"manifest": "generated.parquet"},
            "gates": SAMPLE_GATES,
            "eval": [{"name": EVAL_NAME, "manifest": "eval/eval.parquet"}],
        },
    )


def _generated(rng: np.random.Generator, items: list[dict], out: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Generated samples: near-copies of family members (the memorised) and novel scenes (the rest)."""
    family_rows = [i for i, it in enumerate(items) if it["family"] and not it["family"].startswith("exact")]
    clock_or_logo = [i for i in family_rows if items[i]["kind"] in ("clock", "logo")]
    photos = [i for i in family_rows if items[i]["kind"] == "photo"]
    exact = [i for i, it in enumerate(items) if it["family"] and it["family"].startswith("exact")]
    sources = (
        list(rng.choice(clock_or_logo, 11, replace=False))
        + list(rng.choice(photos, 2, replace=False))
        + list(rng.choice(exact, 2, replace=False))
    )
    rows, copies = [], {}
    safe_rows = [i for i, it in enumerate(items) if max(it["sexual"], it["violence"]) < 0.5]
    for index in range(N_GENERATED):
        gen_id = f"gen-{index:03d}"
        if index < len(sources):
            source = items[int(sources[index])]
            image = drawing.near_copy(source["image"], rng)
            copies[gen_id] = source["id"]
        else:
            source = items[int(rng.choice(safe_rows))]
            image = drawing.scene(rng)
        relative = f"generated/{gen_id}.png"
        image.save(out.parent / relative, format="PNG")
        rows.append({"id": gen_id, "image": relative, "prompt": source["caption"], "source_id": source["id"]})
    order = rng.permutation(len(rows))
    return pd.DataFrame([rows[i] for i in order]), copies


def _evaluation(rng: np.random.Generator, items: list[dict], out: Path) -> tuple[pd.DataFrame, dict]:
    """An evaluation set (its images relative to its own folder, as evaluation sets live apart from the training
    images): 6 near copies and 2 crops of training images, 3 captions copied
    exactly once case and punctuation are folded and 2 with a word misspelt, and distinct items for the rest."""
    (out / "images").mkdir(parents=True)
    # Copies of textured photographs: at 128 px a procedural scene, a clock, a logo, the rocket's sky or the retina
    # has too few local features for pixels to verify a crop (as a plain gradient in real data: such a pair stays an
    # uncounted candidate).
    textured = [i for i, it in enumerate(items) if it["kind"] == "photo" and it["family"].split("-", 1)[1] in TEXTURED]
    image_sources = [int(i) for i in rng.choice(textured, 8, replace=False)]
    kept = [i for i, it in enumerate(items) if max(it["sexual"], it["violence"]) < THRESHOLDS["sexual"]]
    caption_sources = [int(i) for i in rng.choice([i for i in kept if i not in image_sources], 5, replace=False)]
    rows, image_copies, caption_copies = [], {}, {}
    for index in range(N_EVAL):
        eval_id = f"eval-{index:03d}"
        caption = f"evaluation item {index} of a held-out benchmark"
        if index < len(image_sources):
            source = items[image_sources[index]]
            image = drawing.near_copy(source["image"], rng) if index < 6 else _cropped(source["image"])
            image_copies[eval_id] = source["id"]
        else:
            image = drawing.scene(rng)
        if len(image_sources) <= index < len(image_sources) + len(caption_sources):
            source = items[caption_sources[index - len(image_sources)]]
            exact = index < len(image_sources) + 3
            caption = source["caption"].upper() + "!" if exact else _misspelt(source["caption"])
            caption_copies[eval_id] = {"train_id": source["id"], "kind": "exact" if exact else "near"}
        image.save(out / "images" / f"{eval_id}.png", format="PNG")
        rows.append({"id": eval_id, "image": f"images/{eval_id}.png", "caption": caption})
    truth = {"eval_set": EVAL_NAME, "eval_image_copies": image_copies, "eval_caption_copies": caption_copies}
    return pd.DataFrame(rows), truth


def _misspelt(caption: str) -> str:
    """The caption with two letters of its longest word swapped (one whose swap changes it): a near copy, not an
    exact one."""
    words = caption.split(" ")
    longest = max(
        (i for i in range(len(words)) if len(words[i]) > 3 and words[i][1] != words[i][2]), key=lambda i: len(words[i])
    )
    word = words[longest]
    words[longest] = word[0] + word[2] + word[1] + word[3:]
    return " ".join(words)


def _cropped(image: Image.Image) -> Image.Image:
    """A centre crop of 80% scaled back up: how a benchmark's copy of a web image often differs."""
    width, height = image.size
    box = (width // 10, height // 10, width - width // 10, height - height // 10)
    return image.crop(box).resize((width, height), Image.Resampling.BICUBIC)


def _truth(items: list[dict], original: pd.DataFrame, copies: dict[str, str]) -> dict:
    families: dict[str, list[str]] = {}
    for item in items:
        if item["family"]:
            families.setdefault(item["family"], []).append(item["id"])
    removed = (original["sexual"] >= THRESHOLDS["sexual"]) | (original["violence"] >= THRESHOLDS["violence"])
    kinds = pd.Series([it["caption_kind"] for it in items])
    planned = {
        kind: {"total": int((kinds == kind).sum()), "removed": int((removed & (kinds == kind)).sum())}
        for kind in ("woman", "man", "neutral")
    }
    n, n_kept = len(original), int((~removed).sum())

    def change(kind: str) -> float:
        total, gone = planned[kind]["total"], planned[kind]["removed"]
        return ((total - gone) / n_kept) / (total / n) - 1

    assert planned["woman"]["total"] == N_WOMAN and planned["man"]["total"] == N_MAN
    return {
        "note": SYNTHETIC_NOTE,
        "seed": SEED,
        "n_train": n,
        "n_removed": int(removed.sum()),
        "caption_kinds": planned,
        "expected_relative_change": {"woman": change("woman"), "man": change("man")},
        "near_duplicate_families": {k: v for k, v in families.items() if not k.startswith("exact")},
        "exact_duplicate_families": {k: v for k, v in families.items() if k.startswith("exact")},
        "generated_copies": copies,
        "visual_concepts": {
            concept: sorted(item["id"] for item in items if item["context"] == concept)
            for concept in drawing.CONCEPT_MOTIFS
        },
        "generated_novel": sorted(set(f"gen-{i:03d}" for i in range(N_GENERATED)) - set(copies)),
    }


if __name__ == "__main__":  # pragma: no cover
    import sys

    build_sample(Path(sys.argv[1]), progress=True)
    print(json.dumps({"written": sys.argv[1]}))
