"""The steps of building a filter, each reading and writing the filter's folder `filters/NAME/`:

- `filter.json`  the definition (name, specification, features);
- `weights.npz`, `model.json`  the latest fit: plain arrays and its measured figures (no pickle);
- `scores.npy`, `flagged.npy`, `previous-flagged.npy`  the latest fit's probability for every row and what it
  flags, and what the fit before it flagged (the page shows the difference);
- `applied.json`  written by `apply`, beside `scores/filter-NAME.parquet` (the score the workspace filters on);
  `unapply` moves it to `unapplied.json`.
Labels and rounds live in `labels.sqlite` (`definition.label_store`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.cache import atomic_save_json, atomic_save_npy, atomic_save_parquet, file_fingerprint, load_json
from analysis.captions import caption_index
from analysis.embedding_store import load_embeddings
from analysis.errors import AuditInputError
from analysis.filter_spec import ScoreFilter, check_threshold, with_score_filter, without_score_filter
from analysis.filters import measure, model, rounds, seeds
from analysis.filters.definition import (
    NEGATIVE,
    POSITIVE,
    SKIP,
    FilterDefinition,
    filter_folder,
    label_store,
    labels,
    load_definition,
)
from analysis.filters.preview import preview_table
from analysis.verdicts.store import VerdictStore
from analysis.workspace import Workspace, update_config


@dataclass
class Builder:
    """One filter of one workspace, with what every step needs."""

    workspace: Workspace
    definition: FilterDefinition
    store: VerdictStore

    @classmethod
    def open(cls, workspace: Workspace, name: str) -> Builder:
        return cls(workspace, load_definition(workspace, name), label_store(workspace))

    @property
    def folder(self) -> Path:
        return filter_folder(self.workspace, self.definition.name)

    @cached_property
    def features(self) -> model.Features:
        embedded = load_embeddings(self.workspace, "original")
        assert embedded is not None
        extra = {c: self.workspace.original[c].to_numpy(dtype=np.float64) for c in self.definition.extra_scores}
        return model.build_features(embedded, extra)

    @cached_property
    def ids(self) -> np.ndarray:
        return self.workspace.original["id"].astype(str).to_numpy()

    @cached_property
    def _id_index(self) -> pd.Index:
        return pd.Index(self.ids)

    def positions(self, ids: list[str] | pd.Series) -> np.ndarray:
        found = self._id_index.get_indexer(pd.Index([str(i) for i in ids]))
        if (found < 0).any():
            missing = [str(i) for i, f in zip(ids, found) if f < 0][:5]
            raise AuditInputError(f"unknown id(s) {missing}.", path=self.workspace.config.original)
        return found.astype(np.int64)

    def labels(self) -> pd.DataFrame:
        return labels(self.store, self.definition)

    def rounds(self) -> pd.DataFrame:
        return rounds.round_items(self.store, self.definition.kind)

    def decided(
        self, current: pd.DataFrame | None = None, items: pd.DataFrame | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows labelled positive or negative (with an embedding), their truth, and whether each is in the random
        slice; from the labels and rounds given (a step that has read them already), else read now."""
        current = self.labels() if current is None else current
        items = self.rounds() if items is None else items
        current = current[current["label"].isin([POSITIVE, NEGATIVE])]
        rows = self.positions(current["item_id"])
        usable = self.features.valid[rows]
        in_slice = np.isin(self.ids[rows], items.loc[items["reason"] == rounds.RANDOM, "item_id"].to_numpy())
        return rows[usable], (current["label"].to_numpy() == POSITIVE)[usable], in_slice[usable]

    def training_set(self) -> tuple[np.ndarray, np.ndarray]:
        """What the model learns from: every decided label outside the random slice (the slice is its test set)."""
        rows, truth, in_slice = self.decided()
        return rows[~in_slice], truth[~in_slice]

    def latest_fit(self) -> measure.FitReport | None:
        path = self.folder / "model.json"
        return measure.FitReport.from_json(load_json(path)["figures"]) if path.exists() else None

    def latest_scores(self) -> np.ndarray | None:
        path = self.folder / "scores.npy"
        return np.load(path) if path.exists() and (self.folder / "model.json").exists() else None

    def applied(self) -> dict | None:
        path = self.folder / "applied.json"
        return load_json(path) if path.exists() else None


# Seeds and rounds.
def pending(builder: Builder) -> pd.DataFrame:
    """The latest round's items that nobody has labelled yet (a round is finished before the next is drawn)."""
    items = builder.rounds()
    if items.empty:
        return items
    latest = items[items["round"] == items["round"].max()]
    return latest[~latest["item_id"].isin(set(builder.labels()["item_id"]))].reset_index(drop=True)


def add_seed_round(builder: Builder, positions: np.ndarray, reason: str) -> pd.DataFrame:
    if len(pending(builder)):
        raise AuditInputError(
            "the current round still has unlabelled images.",
            fix="label them first (`filter label`, or the page), then seed again.",
        )
    ids = [builder.ids[p] for p in positions]
    rounds.save_round(
        builder.store, builder.definition.kind, ids, [reason] * len(ids), 0, int(builder.features.valid.sum())
    )
    return pending(builder)


def seed(
    builder: Builder,
    *,
    caption_words: list[str] | None = None,
    like: list[str] | None = None,
    score_band: tuple[str, float, float] | None = None,
    text_vector: np.ndarray | None = None,
    text: str | None = None,
    n: int = 20,
) -> pd.DataFrame:
    features = builder.features
    if caption_words:
        found = seeds.by_caption_words(caption_index(builder.workspace), features, caption_words, n)
        return add_seed_round(builder, found, f"seed: caption words {', '.join(caption_words)}")
    if like:
        return add_seed_round(
            builder, seeds.like(features, builder.positions(like), n), f"seed: like {', '.join(like)}"
        )
    if score_band:
        column, low, high = score_band
        found = seeds.by_score_band(builder.workspace, features, column, low, high, n)
        return add_seed_round(builder, found, f"seed: {column} in [{low:g}, {high:g}]")
    if text is not None:
        return add_seed_round(builder, seeds.by_text(text_vector, features, n), f"seed: text “{text}”")
    raise AuditInputError("say how to find seeds.", fix="give --caption-words, --like, --score-band or --text.")


def next_round(builder: Builder, n: int = 20) -> pd.DataFrame:
    """The images to label now: the unlabelled rest of the current round, else a new round of `n`."""
    if n < 4:
        raise AuditInputError(f"--n {n} is too small for a round.", fix="use at least 4 (20 is usual).")
    waiting = pending(builder)
    if len(waiting):
        return waiting
    features = builder.features
    current = builder.labels()
    labelled = np.zeros(features.n_rows, dtype=bool)
    labelled[builder.positions(current["item_id"])] = True
    items = builder.rounds()
    in_slice = np.zeros(features.n_rows, dtype=bool)
    in_slice[builder.positions(items.loc[items["reason"] == rounds.RANDOM, "item_id"])] = True
    decided_rows, decided_truth, decided_in_slice = builder.decided(current, items)
    rows, truth = decided_rows[~decided_in_slice], decided_truth[~decided_in_slice]
    scores = positives = missed = None
    if model.can_fit(truth):
        x = features.rows(rows)
        out_of_fold = model.cross_validated(x, truth, features)
        scores = model.score_all(model.fit(x, truth, features), features)
        positives, missed = rows[truth], rows[truth & (out_of_fold < 0.5)]
    elif truth.any():
        positives = rows[truth]
    number = int(items["round"].max()) + 1 if len(items) else 1
    proposal = rounds.propose(
        features, labelled, in_slice, n, seed=number, scores=scores, positives=positives, missed=missed
    )
    if len(proposal.positions) == 0:
        raise AuditInputError(
            "every image with an embedding is labelled already: there is nothing left to propose.",
            fix="fit, preview and apply the filter.",
        )
    ids = [builder.ids[p] for p in proposal.positions]
    rounds.save_round(builder.store, builder.definition.kind, ids, proposal.reasons, number, int(features.valid.sum()))
    return pending(builder)


# Fitting and measuring.
@dataclass
class Trained:
    model: model.LinearModel
    scores: np.ndarray  # every row's probability (NaN without an embedding)
    out_of_fold: np.ndarray  # the training rows' probabilities from models that did not see their label
    threshold: float
    estimate: measure.SliceEstimate


def train_and_measure(
    features: model.Features,
    rows: np.ndarray,
    truth: np.ndarray,
    slice_rows: np.ndarray,
    slice_truth: np.ndarray,
    target_recall: float,
    c: float = model.DEFAULT_C,
) -> Trained:
    """The one rule by which a filter is fitted and judged (`fit`, and the benchmark that checks its intervals):
    trained on `rows` (never the random slice); the threshold keeps `target_recall` of the training positives scored
    out of fold, never the slice's, since a threshold chosen to keep 90% of the slice's positives makes the slice's
    recall 90% by construction, not a measurement; precision and recall at that threshold are measured on the
    slice alone."""
    x = features.rows(rows)
    out_of_fold = model.cross_validated(x, truth, features, c)
    fitted = model.fit(x, truth, features, c)
    scores = model.score_all(fitted, features)
    threshold = measure.threshold_for_recall(out_of_fold[truth], target_recall)
    assert threshold is not None  # can_fit: at least MIN_PER_CLASS positives
    estimate = measure.slice_estimates(scores[slice_rows], slice_truth, threshold)
    return Trained(fitted, scores, out_of_fold, threshold, estimate)


def fit(builder: Builder, target_recall: float | None = None) -> measure.FitReport:
    features = builder.features
    current, items = builder.labels(), builder.rounds()
    # The random slice is held out of training: the model's scores on it are honest, and precision and recall
    # measured there are a test set's (docs/analyses.md, "Filter builder").
    decided_rows, decided_truth, in_slice = builder.decided(current, items)
    rows, truth = decided_rows[~in_slice], decided_truth[~in_slice]
    if not model.can_fit(truth):
        raise AuditInputError(
            f"a model needs at least {model.MIN_PER_CLASS} positive and {model.MIN_PER_CLASS} negative labels outside "
            f"the random slice, which is held out for measurement (now {int(truth.sum())} and {int((~truth).sum())}).",
            fix="label more images (`filter next`, `filter label`, or seed).",
        )
    target = target_recall or builder.definition.target_recall
    slice_rows, slice_truth = decided_rows[in_slice], decided_truth[in_slice]
    trained = train_and_measure(features, rows, truth, slice_rows, slice_truth, target)
    fitted, scores, threshold, estimate = trained.model, trained.scores, trained.threshold, trained.estimate
    auc, roc = measure.roc_points(truth, trained.out_of_fold)
    basis = f"the {int(truth.sum())} training positives"
    flagged = np.nan_to_num(scores, nan=-1.0) >= threshold
    previous_path = builder.folder / "flagged.npy"
    previous = np.load(previous_path) if previous_path.exists() else None
    newly, dropped, change = measure.flagged_change(previous, flagged)
    report = measure.FitReport(
        n_labels=len(current),
        n_positive=int(truth.sum()),
        n_negative=int((~truth).sum()),
        n_skipped=int((current["label"] == SKIP).sum()),
        rounds=int(items["round"].max()) if len(items) else 0,
        cv_auc=auc,
        roc=roc,
        target_recall=target,
        threshold=threshold,
        threshold_basis=basis,
        n_slice=len(slice_rows),
        n_slice_positive=int(slice_truth.sum()),
        n_slice_flagged=estimate.flagged,
        precision=estimate.precision,
        precision_ci95=estimate.precision_ci95,
        recall=estimate.recall,
        recall_ci95=estimate.recall_ci95,
        n_flagged=int(flagged.sum()),
        newly_flagged=newly,
        no_longer_flagged=dropped,
        change=change,
        fitted_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    if previous is not None:
        atomic_save_npy(builder.folder / "previous-flagged.npy", previous)
    atomic_save_npy(builder.folder / "flagged.npy", flagged)
    atomic_save_npy(builder.folder / "scores.npy", scores)
    fitted.save(builder.folder / "weights.npz", features.names)
    atomic_save_json(
        builder.folder / "model.json",
        {
            "filter": builder.definition.to_json(),
            "embedder": load_embeddings(builder.workspace, "original").meta["embedder"],  # type: ignore[union-attr]
            "features": {
                "embedding_dim": int(features.embeddings.shape[1]),
                "extra_scores": list(builder.definition.extra_scores),
            },
            "classifier": f"logistic regression, C={model.DEFAULT_C}, balanced classes, standardised features",
            "weights": "weights.npz (coef, intercept, mean, scale, feature_names): "
            "p = 1/(1+exp(-((x-mean)/scale·coef+intercept)))",
            "figures": report.to_json(),
        },
    )
    return report


def flagged_at(builder: Builder, threshold: float) -> np.ndarray:
    scores = builder.latest_scores()
    if scores is None:
        raise AuditInputError("this filter has no model yet.", fix="run `filter fit` first.")
    return np.nan_to_num(scores, nan=-1.0) >= threshold


def newly_flagged(builder: Builder) -> np.ndarray:
    """Rows the latest fit flags that the fit before it did not."""
    current, previous = builder.folder / "flagged.npy", builder.folder / "previous-flagged.npy"
    if not current.exists() or not previous.exists():
        return np.zeros(0, dtype=np.int64)
    now, before = np.load(current), np.load(previous)
    return np.flatnonzero(now & ~before) if len(now) == len(before) else np.zeros(0, dtype=np.int64)


def chosen_threshold(builder: Builder, threshold: float | None, target_recall: float | None) -> float:
    report = builder.latest_fit()
    if report is None:
        raise AuditInputError("this filter has no model yet.", fix="run `filter fit` first.")
    if threshold is not None:
        value = check_threshold(threshold, f"filter '{builder.definition.name}'")
        if not 0 <= value <= 1:
            raise AuditInputError(f"threshold {value} is not in [0, 1].", fix="a filter's score is a probability.")
        return value
    if target_recall is not None and target_recall != report.target_recall:
        report = fit(builder, target_recall)
    if report.threshold is None:
        raise AuditInputError("the fit has no threshold.", fix="label more positives, or give --threshold.")
    return report.threshold


def preview(builder: Builder, threshold: float | None = None) -> tuple[float, pd.DataFrame]:
    value = chosen_threshold(builder, threshold, None)
    table = preview_table(
        builder.workspace, caption_index(builder.workspace), builder.definition.name, flagged_at(builder, value)
    )
    return value, table


def apply(
    builder: Builder, threshold: float | None = None, target_recall: float | None = None
) -> tuple[Workspace, dict]:
    """Make the filter a score filter of the workspace: `scores/filter-NAME.parquet` + `[scores]` +
    `[[filtered.scores]]`; Removals, Bias, the report and `check` see it from then on."""
    value = chosen_threshold(builder, threshold, target_recall)
    scores = builder.latest_scores()
    assert scores is not None
    definition = builder.definition
    path = builder.workspace.config.root / "scores" / f"{definition.score_column}.parquet"
    atomic_save_parquet(path, pd.DataFrame({"id": builder.ids, "score": scores.astype(np.float64)}))
    entry = ScoreFilter(definition.name, definition.score_column, value)

    def change(body: dict) -> None:
        body.setdefault("scores", {})[definition.score_column] = path.relative_to(
            builder.workspace.config.root
        ).as_posix()
        with_score_filter(body, entry)

    report = builder.latest_fit()
    assert report is not None
    applied = {
        "threshold": value,
        "applied_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "n_flagged": int(flagged_at(builder, value).sum()),
        "figures": report.to_json(),
        "score_file": path.name,
    }
    atomic_save_json(
        path.with_suffix(".json"),
        {
            "model": f"filter builder '{definition.name}' (logistic regression, filters/{definition.name}/weights.npz)",
            "model_sha256": file_fingerprint(builder.folder / "weights.npz"),
            "threshold": value,
            "applied_at": applied["applied_at"],
        },
    )
    workspace = update_config(builder.workspace.config.root, change)
    atomic_save_json(builder.folder / "applied.json", applied)
    return workspace, applied


def unapply(builder: Builder) -> tuple[Workspace, dict]:
    """Undo `apply`: the workspace filters as it did before (its score filter and `[scores]` entry removed from
    audit.toml). Nothing is deleted: the score file, the labels, the model and the fit stay, so `apply` can be run
    again; the applied record moves to `unapplied.json` with the time it was undone."""
    definition = builder.definition
    config = builder.workspace.config
    if not any(f.name == definition.name for f in config.filtered.scores):
        raise AuditInputError(
            f"filter '{definition.name}' is not applied to this workspace: nothing to undo.",
            path=config.config_path,
            fix=f"`pretrain-audit filter DIR apply {definition.name}` applies it.",
        )

    workspace = update_config(
        config.root, lambda body: without_score_filter(body, definition.name, definition.score_column)
    )
    record = {**(builder.applied() or {}), "unapplied_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    atomic_save_json(builder.folder / "unapplied.json", record)
    (builder.folder / "applied.json").unlink(missing_ok=True)
    return workspace, record


def export(builder: Builder, out: Path) -> Path:
    scores = builder.latest_scores()
    if scores is None:
        raise AuditInputError("this filter has no model yet.", fix="run `filter fit` first.")
    threshold = chosen_threshold(builder, None, None)
    applied = builder.applied()
    if applied:
        threshold = applied["threshold"]
    current = builder.labels().set_index("item_id")["label"]
    frame = pd.DataFrame(
        {
            "id": builder.ids,
            "score": scores.astype(np.float64),
            "flagged": np.nan_to_num(scores, nan=-1.0) >= threshold,
            "label": current.reindex(builder.ids).fillna("").to_numpy(),
        }
    )
    if out.suffix.lower() == ".csv":
        from analysis.cache import atomic_path

        with atomic_path(out) as tmp:
            frame.to_csv(tmp, index=False)
    else:
        atomic_save_parquet(out, frame)
    return out


def text_vector(workspace: Workspace, text: str) -> np.ndarray | None:
    """A prompt's embedding in the image space, when the workspace's embedder has a text tower (open_clip)."""
    from analysis.embedders import get_embedder
    from analysis.embedding_store import current_embedder

    spec = current_embedder(workspace) or workspace.config.embedder
    embedder = get_embedder(spec)
    embed_text = getattr(embedder, "embed_text", None)
    return None if embed_text is None else np.asarray(embed_text([text])[0])
