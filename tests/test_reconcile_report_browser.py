"""The HTML reports as a real headless browser (Debian ``chromium``) renders them: read the DOM.

Skipped with a reason when no chromium is installed; CI installs it and sets
``SCAYLE_ORDERWISE_REQUIRE_BROWSER=1``, which turns a missing browser into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scayle_orderwise.reconcile import (
    ErpOrderSummary,
    LineSummary,
    ShopOrderSummary,
    reconcile_orders,
    reconcile_stock_levels,
)
from scayle_orderwise.reconcile.report import to_html

BROWSER = os.environ.get("SCAYLE_ORDERWISE_CHROMIUM") or next(
    (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None
)
NO_BROWSER = "no chromium to render the report (apt-get install -y chromium)"


def dump_dom(page: str, tmp_path: Path) -> str:
    """The DOM chromium builds from ``page`` (loaded from a file, with networking switched off).

    Skips without chromium, or fails when ``SCAYLE_ORDERWISE_REQUIRE_BROWSER`` is set (CI).
    """
    if BROWSER is None:
        if os.environ.get("SCAYLE_ORDERWISE_REQUIRE_BROWSER"):
            pytest.fail(NO_BROWSER)
        pytest.skip(NO_BROWSER)
    source = tmp_path / "report.html"
    source.write_text(page, encoding="utf-8")
    done = subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            source.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def _rows(dom: str, table_class: str) -> list[list[str]]:
    rows = []
    for table in re.findall(rf'<table class="{table_class}"[^>]*>(.*?)</table>', dom, re.S):
        body = re.search(r"<tbody>(.*?)</tbody>", table, re.S)
        assert body is not None
        for tr in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S):
            rows.append([re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)])
    return rows


def test_the_order_report_renders_in_chromium(tmp_path: Path) -> None:
    lines = [LineSummary.from_gross("A", "T1", 100000, "0.2")]
    shop = [
        ShopOrderSummary(
            reference=ref,
            order_id=ref,
            currency="GBP",
            gross=100000,
            vat=16667,
            lines=lines if ref == "R" else (),
            status="payment_reserved",
        )
        for ref in ("OK", "MISSING", "R", "<b>bold</b>")
    ]
    erp = [
        ErpOrderSummary(reference="OK", order_id="1", currency="GBP", gross=100000, vat=16667),
        ErpOrderSummary(
            reference="R",
            order_id="2",
            currency="GBP",
            gross=100000,
            vat=16666,
            lines=[LineSummary("A", "T1", 100000, 16666)],
        ),
        ErpOrderSummary(
            reference="<b>bold</b>", order_id="3", currency="GBP", gross=123456, vat=16667
        ),
    ]
    report = reconcile_orders(shop, erp, period="1 May 2026 – 31 May 2026 (Europe/London)")
    dom = dump_dom(to_html(report, generated_at=datetime(2026, 6, 1, 7, 30, tzinfo=UTC)), tmp_path)
    assert "<title>Order reconciliation</title>" in dom
    assert "Generated 1 June 2026, 07:30 UTC" in dom
    assert "Period: 1 May 2026 – 31 May 2026 (Europe/London)" in dom
    rows = _rows(dom, "exceptions")
    assert len(rows) == 3  # missing, total mismatch, rounding (inside the folded details)
    assert all(row[6] and row[7] for row in rows)  # a difference and a gross difference on each
    assert any(row[0] == "&lt;b&gt;bold&lt;/b&gt;" for row in rows)  # the reference as text
    assert "<b>bold</b>" not in dom  # escaped text, never markup
    assert any(
        row[4:8] == ["1,000.00 GBP", "1,234.56 GBP", "+234.56 GBP", "+234.56 GBP"] for row in rows
    )
    assert "<details" in dom and 'id="explained"' in dom


def test_the_stock_report_renders_in_chromium(tmp_path: Path) -> None:
    stock = reconcile_stock_levels([("SKU-1", "WH", 1200)], [("SKU-1", "WH", 3500)])
    dom = dump_dom(to_html(stock), tmp_path)
    assert "<title>Stock reconciliation</title>" in dom
    assert "1 stock figure(s) differ." in dom
    assert "SCAYLE minus OrderWise" in dom
    page = dom.replace("<table>", '<table class="rows">')
    assert _rows(page, "rows") == [["SKU-1", "WH", "1,200", "3,500", "+2,300"]]
