"""Dedup's answer as other analyses use it: the group of each training row and the rows it keeps. Regurgitation
reads it (how large is the family a copy comes from, and is the copy still reachable once dedup removed its
group's other members) without knowing how dedup found the groups; dedup's result gives it (`DedupResult.
duplicate_groups`) and analysis/registry.py hands dedup's provider to regurgitation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DuplicateGroups:
    group_id: np.ndarray  # per training row; -1 for a row in no group
    keep: np.ndarray  # per training row: kept by dedup

    def size_of_each_row(self) -> np.ndarray:
        """Per training row: the size of its duplicate group (1 for a row in no group)."""
        sizes = np.ones(len(self.group_id), dtype=np.int64)
        in_group = self.group_id >= 0
        if in_group.any():
            sizes[in_group] = np.bincount(self.group_id[in_group])[self.group_id[in_group]]
        return sizes
