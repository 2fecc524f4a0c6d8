"""Real-browser tests: `pretrain-audit dashboard` on the sample, in headless Debian Chromium via Playwright."""

from __future__ import annotations

import pytest

from tests.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser


def test_overview_shows_counts_in_a_real_browser(dashboard_url: str, page) -> None:
    page.goto(dashboard_url)
    wait_for_app(page)
    page.get_by_text("Original images").wait_for()
    body = page.inner_text("body")
    for text in ("1,000", "950", "50", "100", "SYNTHETIC"):
        assert text in body
    assert page.locator("[data-testid='stException']").count() == 0
    assert screenshot(page, "overview").stat().st_size > 10_000
