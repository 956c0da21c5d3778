"""An organiser reads Insights on a phone and on a desktop: changes the period, reads the charts and their tables,
downloads a table as CSV."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import expect

from .browser_fixtures import DESKTOP, PHONE, Checker, sign_in_browser
from .test_insights import PERIOD, plan, seed

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360px", "1280px"])
def test_an_organiser_changes_the_period_and_downloads_a_table(live_server, page, viewport, organiser):
    seed(plan())
    page.set_viewport_size(viewport)
    check = Checker(page, viewport["width"])
    sign_in_browser(page, live_server, organiser)
    check.visit("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Insights").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Insights")
    check.check("insights, last 12 months")

    page.get_by_label("From", exact=True).fill("2025-01-01")
    page.get_by_label("To", exact=True).fill("2025-12-31")
    page.get_by_role("button", name="Show this period").click()
    expect(page.locator("#period")).to_contain_text("12 meetings held from Wednesday 1 January 2025")
    check.check("insights, 2025")
    assert PERIOD in page.url

    for chart in ("chart-attendance", "chart-sectors", "chart-regions", "chart-feedback"):
        svg = page.locator(f"svg#{chart}")
        expect(svg).to_have_attribute("role", "img")
        assert svg.locator("title").first.text_content()
    bars = page.locator("#chart-attendance .chart-value").all_text_contents()
    table = page.locator("#table-meetings tbody tr")
    assert len(bars) == table.count() == 12
    for n, bar in enumerate(bars):
        cells = table.nth(n).locator("td").all_text_contents()
        assert bar == f"{cells[6]} of {cells[4]} going"  # attended of going, as the table says

    with page.expect_download() as download:
        page.locator("#regions ~ p a[download]").first.click()
    rows = list(csv.reader(io.StringIO(download.value.path().read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["Region", "Members who attended"]
    shown = dict(
        page.locator("#table-regions tbody tr").evaluate_all(
            "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
        )
    )
    assert dict(rows[1:]) == {k: ("<5" if 0 < int(v) < 5 else v) for k, v in shown.items()}
    check.assert_clean()
