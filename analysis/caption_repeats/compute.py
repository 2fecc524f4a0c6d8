"""How many images carry a caption that other images carry too, in the original set and in the filtered one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.captions import normalise_caption
from analysis.stats import judgeable, proportion_interval


@dataclass(frozen=True)
class RepeatShare:
    """Images whose caption at least `min_images` images of the same set carry, among the images with a caption."""

    n_with_caption: int
    n_repeated: int

    @property
    def share(self) -> float | None:
        return self.n_repeated / self.n_with_caption if self.n_with_caption else None

    def to_json(self) -> dict:
        return {
            "n_with_caption": self.n_with_caption,
            "n_repeated": self.n_repeated,
            "share": self.share,
            "ci95": list(proportion_interval(self.n_repeated, self.n_with_caption)) if self.n_with_caption else None,
            "judgeable": judgeable(self.n_with_caption),
        }


@dataclass(frozen=True)
class RepeatedCaptions:
    min_images: int
    original: RepeatShare
    filtered: RepeatShare  # repetition counted within the filtered set: what a model trained on it sees
    top: pd.DataFrame  # caption (as first written), images (original), kept (filtered), most repeated first

    def to_json(self) -> dict:
        return {
            "min_images": self.min_images,
            "caption_rule": "equal after HTML entities, Unicode (NFKC), case, punctuation and spacing are folded",
            "original": self.original.to_json(),
            "filtered": self.filtered.to_json(),
            "top": self.top.to_dict("records"),
        }


def _share(keys: pd.Series, min_images: int) -> RepeatShare:
    captioned = keys[keys != ""]
    counts = captioned.map(captioned.value_counts())
    return RepeatShare(int(len(captioned)), int((counts >= min_images).sum()))


def repeated_captions(captions: pd.Series, kept: np.ndarray, min_images: int, top: int) -> RepeatedCaptions:
    """Captions are compared folded (`normalise_caption`), so "A dog." and "a  dog" are one caption; an empty
    caption repeats nothing."""
    written = captions.fillna("").astype(str).reset_index(drop=True)
    keys = written.map(normalise_caption)
    kept_keys = keys[np.asarray(kept, dtype=bool)]
    original_counts = keys[keys != ""].value_counts()
    kept_counts = kept_keys[kept_keys != ""].value_counts()
    repeated = original_counts[original_counts >= min_images].head(top)
    first_written = written.groupby(keys).first()
    table = pd.DataFrame(
        {
            "caption": first_written.reindex(repeated.index).to_numpy(),
            "images": repeated.to_numpy(dtype=np.int64),
            "kept": kept_counts.reindex(repeated.index).fillna(0).to_numpy(dtype=np.int64),
        }
    )
    return RepeatedCaptions(min_images, _share(keys, min_images), _share(kept_keys, min_images), table)
