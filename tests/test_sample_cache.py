"""The developer's cache of the prepared sample is keyed on everything the sample depends on, and nothing else."""

from __future__ import annotations

from tests.helpers import REPO
from tests.sample_cache import enabled, inputs_key, source_closure

SAMPLE_INPUTS = ["data_samples.build", "analysis.embeddings", "analysis.concepts.cached"]


def test_the_key_covers_modules_imported_inside_functions() -> None:
    closure = {str(path.relative_to(REPO)) for path in source_closure(SAMPLE_INPUTS)}
    # prepare imports the embedders inside a function; the map its projection likewise
    assert {"analysis/embedders/effnet.py", "analysis/embeddings.py", "analysis/concepts/projection.py"} <= closure
    assert "data_samples/build.py" in closure


def test_the_key_leaves_out_what_the_prepared_sample_does_not_run() -> None:
    closure = {str(path.relative_to(REPO)) for path in source_closure(SAMPLE_INPUTS)}
    assert not {"analysis/dedup/compute.py", "analysis/regurgitation/compute.py", "dashboard/warm.py"} & closure


def test_the_key_is_stable_and_depends_on_the_modules_asked() -> None:
    assert inputs_key(SAMPLE_INPUTS) == inputs_key(SAMPLE_INPUTS)
    assert inputs_key(SAMPLE_INPUTS) != inputs_key(["data_samples.build"])


def test_ci_never_uses_the_cache(monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert not enabled()
    monkeypatch.delenv("CI")
    monkeypatch.setenv("PRETRAIN_AUDIT_TEST_CACHE", "0")
    assert not enabled()
