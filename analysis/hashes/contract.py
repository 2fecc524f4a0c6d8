"""Hash-list matching on the analysis contract: CLI `match-hashes`, its report section and the match gate."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pandas as pd

from analysis.contract import Analysis, Gate, Headline, Log, ReportContext, ReportSection, quiet
from analysis.copies.hash_list import match_hash_list, read_hash_list, register_matches
from analysis.filter_spec import HASH_FILTER
from analysis.hashes.params import HashParams
from analysis.images import tile_png
from analysis.workspace import Workspace


@dataclass(frozen=True)
class HashMatches:
    matches: pd.DataFrame  # id, distance, pdq, label
    listed: int | None  # hashes in the list just matched (None: the matches registered earlier)
    max_distance: int | None


def registered_matches(workspace: Workspace) -> pd.DataFrame | None:
    path = workspace.config.filtered.hash_matches
    return pd.read_parquet(path) if path is not None and path.exists() else None


class HashListMatches(
    Analysis,
    name="match-hashes",
    title="Known-bad hashes",
    help="match the images against a list of PDQ hashes of known-bad images; matches become a filter",
):
    Params = HashParams

    def run(self, workspace: Workspace, params: HashParams, log: Log = quiet) -> HashMatches:
        if params.list is None:
            found = registered_matches(workspace)
            return HashMatches(
                found if found is not None else pd.DataFrame(columns=["id", "distance", "pdq", "label"]), None, None
            )
        listed = read_hash_list(params.list)
        matches = match_hash_list(workspace, listed, max_distance=params.max_distance, log=log)
        register_matches(workspace, matches)
        log(f"{len(matches):,} matches registered as the filter '{HASH_FILTER}' in audit.toml")
        return HashMatches(matches, len(listed), params.max_distance)

    def to_json(self, result: HashMatches) -> dict:
        return {
            "n_matches": int(len(result.matches)),
            "n_listed": result.listed,
            "max_distance": result.max_distance,
            "matches": result.matches.astype(object).to_dict("records"),
        }

    def summary_lines(self, result: HashMatches) -> list[str]:
        source = (
            f"against {result.listed:,} listed hashes (Hamming ≤ {result.max_distance})"
            if result.listed
            else "registered in this workspace"
        )
        lines = [
            f"{len(result.matches):,} images match a known-bad PDQ hash {source}; they are removed by the "
            f"filter '{HASH_FILTER}'"
        ]
        lines += [
            f"  {row.id}: distance {row.distance}" + (f" ({row.label})" if row.label else "")
            for row in result.matches.head(10).itertuples()
        ]
        return lines

    def headline(self, workspace: Workspace) -> Headline:
        found = registered_matches(workspace)
        if found is None:
            return Headline(
                self.title, None, "no known-bad hash list matched yet. Run `pretrain-audit match-hashes DIR --list F`"
            )
        return Headline(
            self.title,
            f"{len(found):,} of {workspace.n_original:,} images match a known-bad PDQ hash (removed by the filter "
            f"'{HASH_FILTER}')",
        )

    def report_sections(self, context: ReportContext) -> list[ReportSection]:
        workspace = context.workspace
        found = registered_matches(workspace)
        if found is None:
            return []
        section = ReportSection(
            "Known-bad hash-list matches (PDQ)", summary=self.summary_lines(HashMatches(found, None, None))
        )
        images = dict(zip(workspace.original["id"], workspace.original.get("image", pd.Series(dtype=str)).astype(str)))
        section.images.append(
            (
                "Matched images (blurred)",
                [
                    (
                        f"{row.id} (distance {row.distance})",
                        tile_png(workspace.config.images_root, images.get(row.id, ""), blur=True, size=160),
                    )
                    for row in found.head(8).itertuples()
                ],
            )
        )
        return [section]

    def add_gate_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--max-hash-matches", type=int, help="largest number of images matching the known-bad hash list (usually 0)"
        )

    def gates(self, workspace: Workspace, options: argparse.Namespace) -> list[Gate]:
        if options.max_hash_matches is None:
            return []
        found = registered_matches(workspace)
        if found is None:
            return [
                Gate(
                    "known-bad hash matches",
                    options.max_hash_matches,
                    None,
                    "no hash list matched yet: run `pretrain-audit match-hashes DIR --list F`",
                )
            ]
        from analysis.copies.pdq import pdq_hashes

        hashes = pdq_hashes(workspace, "original")
        unreadable = int((hashes["pdq"] == "").sum())
        unmeasured = f"{unreadable:,} of {len(hashes):,} images could not be read (not hashed)" if unreadable else ""
        return [
            Gate(
                "known-bad hash matches",
                options.max_hash_matches,
                float(len(found)),
                f"{len(found):,} images within PDQ distance of a listed hash",
                unmeasured=unmeasured,
            )
        ]
