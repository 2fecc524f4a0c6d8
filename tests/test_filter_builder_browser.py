"""The Filter builder page in a real browser: create a filter, seed it, label three rounds (images blurred until
revealed), fit, preview its effect on "woman"/"man", apply it, and see Removals change."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.filters import compute
from analysis.workspace import load_workspace
from tests.helpers import screenshot, serve_dashboard, wait_for_app


@pytest.fixture()
def filter_dashboard(sample_dir: Path, tmp_path: Path):
    workspace = tmp_path / "ws"
    shutil.copytree(sample_dir, workspace, ignore=shutil.ignore_patterns("reviews.sqlite*", "*.lock"))
    with serve_dashboard(workspace) as url:
        yield url, workspace


def _pending(workspace: Path) -> list[str]:
    return list(compute.pending(compute.Builder.open(load_workspace(workspace), "clocks"))["item_id"])


def _label_shown_round(page, workspace: Path, truth: dict[str, bool]) -> int:
    items = _pending(workspace)
    for _ in range(120):  # the click's rerun may start after wait_for_app returned: wait for the round it stores
        if items:
            break
        page.wait_for_timeout(500)
        items = _pending(workspace)
    assert items, "a round must be waiting"
    for item in items:
        verdict = "positive" if truth[item] else "negative"
        group = page.get_by_role("radiogroup", name=f"label {item}", exact=True).first  # a tile may show twice
        group.get_by_role("radio", name=verdict, exact=True).click()
        page.wait_for_timeout(300)
        wait_for_app(page)
    assert _pending(workspace) == []
    return len(items)


def _assert_round_is_blurred(page, url: str, workspace: Path) -> None:
    """Every tile of the waiting round is served blurred (no one has revealed it), in the order of the round."""
    from PIL import Image

    from tests.helpers import is_blurred
    from tests.test_browser import _served_image

    items = _pending(workspace)
    page.wait_for_function(
        "n => { const images = [...document.querySelectorAll(\"[data-testid='stImage'] img\")];"
        " return images.length >= n && images.every(i => i.complete && i.naturalWidth > 0); }",
        arg=len(items),
        timeout=30000,
    )
    sources = page.locator("[data-testid='stImage'] img").evaluate_all("images => images.map(i => i.src)")
    loaded = load_workspace(workspace)
    image_of = dict(zip(loaded.original["id"].astype(str), loaded.original["image"].astype(str)))
    assert len(sources) == len(items)
    for source, item in zip(sources, items):
        original = Image.open(loaded.config.images_root / image_of[item]).convert("RGB")
        assert is_blurred(_served_image(page, url, source), original), item


def test_a_filter_is_built_in_three_rounds_previewed_and_applied_in_the_browser(filter_dashboard, browser) -> None:
    url, workspace = filter_dashboard
    original = pd.read_parquet(workspace / "original.parquet")
    truth = dict(zip(original["id"].astype(str), original["kind"] == "clock"))
    context = browser.new_context(viewport={"width": 1400, "height": 3600})
    page = context.new_page()
    page.goto(f"{url}/filter_builder")
    wait_for_app(page, 60000)
    _sign_in(page)
    _create_and_seed(page)
    screenshot(page, "filter-builder-round")
    _assert_round_is_blurred(page, url, workspace)
    labelled = _label_shown_round(page, workspace, truth)
    for _ in range(2):
        page.get_by_label("Images per round").fill("10")
        page.get_by_label("Images per round").press("Enter")
        wait_for_app(page)
        page.get_by_role("button", name="Propose the next round").click()
        wait_for_app(page)
        labelled += _label_shown_round(page, workspace, truth)
    _fit_counts_every_label_once(page, labelled)
    before = load_workspace(workspace).n_removed
    _apply_and_see_it_on_the_other_pages(page, url, workspace, before)
    _unapply_from_the_page(page, url, workspace, before)
    context.close()
    assert labelled >= 24


def _sign_in(page) -> None:
    reviewer = page.get_by_label("Reviewer name")
    reviewer.fill("labeller")
    reviewer.press("Enter")
    wait_for_app(page)


def _create_and_seed(page) -> None:
    page.get_by_label("Filter name", exact=True).fill("clocks")
    page.get_by_label("Written specification", exact=True).fill("Wall clocks and clock faces. Not: watches, sundials.")
    page.get_by_role("button", name="Create filter").click()
    wait_for_app(page)
    page.get_by_label("Caption words (comma-separated)").fill("clock")
    page.get_by_label("How many").fill("8")
    page.get_by_label("How many").press("Enter")
    wait_for_app(page)
    page.get_by_role("button", name="Seed by caption words").click()
    wait_for_app(page)
    page.locator("[data-testid='stImage'] img").first.wait_for()


def _fit_counts_every_label_once(page, labelled: int) -> None:
    """The model's training labels plus the random slice held out to measure it are every label given."""
    page.get_by_role("button", name="Fit and measure").click()
    wait_for_app(page, 60000)
    page.get_by_text("cv AUC").first.wait_for()
    body = page.inner_text("body")
    training = int(re.search(r"Training labels\s+(\d+)", body).group(1))  # type: ignore[union-attr]
    held_out = int(re.search(r"(\d+) more held out \(random slice\)", body).group(1))  # type: ignore[union-attr]
    assert training + held_out == labelled, (training, held_out, labelled)
    page.get_by_text("Removal rate per term: now and with filter 'clocks'").first.wait_for(timeout=30000)
    assert "“woman”" in page.inner_text("body") or "woman" in page.inner_text("body")
    screenshot(page, "filter-builder-fitted")


def _apply_and_see_it_on_the_other_pages(page, url: str, workspace: Path, before: int) -> None:
    page.get_by_role("button", name="Apply at").click()
    page.get_by_text("Filter 'clocks' applied").wait_for(timeout=30000)
    after = load_workspace(workspace)
    assert "clocks" in after.removed_by and after.n_removed > before
    page.goto(f"{url}/removals")
    wait_for_app(page, 60000)
    page.get_by_text("Filter: clocks").first.wait_for(timeout=30000)
    screenshot(page, "removals-with-built-filter")
    page.goto(f"{url}/bias")
    wait_for_app(page, 60000)
    # The Bias page's charts now count the filtered set with the new filter (their provenance footer).
    page.get_by_text(f"→ {after.n_kept:,} filtered").first.wait_for(timeout=30000)
    screenshot(page, "bias-with-built-filter")


def _unapply_from_the_page(page, url: str, workspace: Path, before: int) -> None:
    """Undone from the page: the workspace filters as before, and the filter's work is kept."""
    page.goto(f"{url}/filter_builder")
    wait_for_app(page, 60000)
    if not page.get_by_label("Reviewer name").input_value():
        _sign_in(page)
    page.get_by_role("button", name="Unapply").click()
    page.get_by_text("Filter 'clocks' is no longer applied").wait_for(timeout=30000)
    undone = load_workspace(workspace)
    assert "clocks" not in undone.removed_by and undone.n_removed == before
    assert (workspace / "scores" / "filter-clocks.parquet").exists()
