"""Which rows a removal took out, as the population a review samples: every (removed row, filter) pair."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.workspace import Workspace


def removed_by_filter(workspace: Workspace) -> pd.DataFrame:
    """id, filter, score of every (removed row, filter that removed it): what precision is estimated over
    (a row removed by two filters counts for both; a manifest filter has no score, shown as 1)."""
    columns = {f.name: f.column for f in workspace.config.filtered.scores}
    frames = []
    for name, mask in workspace.removed_by.items():
        column = columns.get(name)
        scores = workspace.original[column].to_numpy() if column else np.ones(len(mask))
        frames.append(
            pd.DataFrame({"id": workspace.original["id"].to_numpy()[mask], "filter": name, "score": scores[mask]})
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["id", "filter", "score"])
