"""The evaluation sets to look for in the training set: `--eval NAME=MANIFEST` on the command line, else the
`[[eval]]` tables of audit.toml. An evaluation manifest has an id (or the image path as id), and an image, a
caption or both; its image paths are relative to the manifest's own folder (an evaluation set lives apart from
the training images) or absolute."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.errors import AuditInputError
from analysis.manifests import load_manifest
from analysis.storage import is_object_url
from analysis.workspace import Workspace


@dataclass(frozen=True)
class EvalSet:
    name: str
    manifest: Path
    frame: pd.DataFrame  # id, image (absolute path or URL, "" where none), caption ("" where none)

    @property
    def has_images(self) -> bool:
        return bool((self.frame["image"] != "").any())

    @property
    def has_captions(self) -> bool:
        return bool((self.frame["caption"] != "").any())


def parse_eval_option(given: str, base: Path) -> tuple[str, Path]:
    """`NAME=MANIFEST` (a relative path is the shell's: relative to `base`, the current folder)."""
    name, separator, manifest = given.partition("=")
    if not separator or not name.strip() or not manifest.strip():
        raise AuditInputError(
            f"--eval {given!r} is not NAME=MANIFEST.", fix="write e.g. --eval coco=coco-val.parquet (one per set)."
        )
    path = Path(manifest.strip()).expanduser()
    return name.strip(), path if path.is_absolute() else base / path


def absolute_image(root: Path, relative: str) -> str:
    """An image path that needs no root: `relative` joined to `root`, unless it is a URL or already absolute."""
    if not relative or is_object_url(relative) or relative.startswith(("http://", "https://")):
        return relative
    path = Path(relative).expanduser()
    return str(path if path.is_absolute() else root.resolve() / path)


def load_eval_set(name: str, manifest: Path) -> EvalSet:
    frame = load_manifest(manifest, required=("id",), what=f"evaluation set {name!r}")
    if "image" not in frame.columns and "caption" not in frame.columns:
        raise AuditInputError(
            f"evaluation set {name!r} has neither an 'image' nor a 'caption' column.",
            path=manifest,
            fix="give it an image column (paths relative to the manifest's folder), a caption column, or both.",
        )
    folder = manifest.parent
    images = frame["image"] if "image" in frame.columns else pd.Series([""] * len(frame))
    captions = frame["caption"] if "caption" in frame.columns else pd.Series([""] * len(frame))
    return EvalSet(
        name,
        manifest,
        pd.DataFrame(
            {
                "id": frame["id"].to_numpy(),
                "image": [absolute_image(folder, str(image)) for image in images],
                "caption": captions.astype(str).to_numpy(),
            }
        ),
    )


def eval_sets_for(workspace: Workspace, given: list[str] | None = None, base: Path | None = None) -> list[EvalSet]:
    """The sets of `--eval` when any are given, else those of `[[eval]]`; an error naming both ways when there
    are none."""
    named = [parse_eval_option(option, base or Path.cwd()) for option in given or []]
    if named and len({name for name, _ in named}) < len(named):
        raise AuditInputError("--eval names a set twice.", fix="give each evaluation set its own name.")
    pairs = named or list(workspace.config.evals)
    if not pairs:
        raise AuditInputError(
            "no evaluation set to look for.",
            path=workspace.config.config_path,
            fix="pass --eval NAME=MANIFEST, or add [[eval]] name = ... manifest = ... to audit.toml.",
        )
    return [load_eval_set(name, manifest) for name, manifest in pairs]
