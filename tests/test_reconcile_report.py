"""Report formats: JSON, CSV and a self-contained, valid, finance-readable HTML page."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest

from scayle_orderwise import __version__
from scayle_orderwise.money import Money
from scayle_orderwise.reconcile import (
    ErpOrderSummary,
    LineSummary,
    Reason,
    ReconciliationReport,
    ShopOrderSummary,
    reconcile_orders,
    reconcile_stock_levels,
)
from scayle_orderwise.reconcile.periods import ReportingPeriod
from scayle_orderwise.reconcile.report import to_csv, to_html, to_json

EVIL = '<script>alert("x")</script>&'


def shop(ref: str, gross: int = 2400, vat: int = 400, **kw: object) -> ShopOrderSummary:
    fields: dict[str, object] = {
        "reference": ref,
        "order_id": f"S-{ref}",
        "currency": "GBP",
        "gross": gross,
        "vat": vat,
        "status": "payment_reserved",
    }
    fields.update(kw)
    return ShopOrderSummary(**fields)  # type: ignore[arg-type]


def erp(ref: str, gross: int = 2400, vat: int = 400, **kw: object) -> ErpOrderSummary:
    fields: dict[str, object] = {
        "reference": ref,
        "order_id": f"OW-{ref}",
        "order_number": f"SO-{ref}",
        "currency": "GBP",
        "gross": gross,
        "vat": vat,
        "status": "awaiting_despatch",
    }
    fields.update(kw)
    return ErpOrderSummary(**fields)  # type: ignore[arg-type]


@pytest.fixture
def report() -> ReconciliationReport:
    lines = [
        LineSummary.from_gross("A", "T1", 1000, "0.2"),
        LineSummary.from_gross("B", "T1", 1400, "0.2"),
    ]
    shops = [
        shop("CLEAN"),
        shop("MISSING"),
        shop(EVIL, gross=1000),
        shop("ROUND", lines=lines, vat=sum(x.vat for x in lines)),
        shop("CANCEL", status="cancellation_completed"),
    ]
    erps = [
        erp("CLEAN"),
        erp(EVIL, gross=1200),
        erp("ROUND", vat=sum(x.vat for x in lines) - 1),
        erp("CANCEL"),
        erp("=HYPERLINK(1)"),
    ]
    return reconcile_orders(shops, erps, period="2024-05")


def test_json_round_trips_summary_and_exceptions(report: ReconciliationReport) -> None:
    data = json.loads(to_json(report))
    assert data["kind"] == "orders" and data["period"] == "2024-05"
    assert data["summary"]["shop_orders"] == 5 and data["summary"]["clean"] == 1
    assert data["summary"]["by_tier"] == {"auto_accept": 1, "review": 2, "block": 2}
    assert data["summary"]["totals"]["GBP"] == {
        "shop_gross": report.summary.totals["GBP"].shop_gross,
        "erp_gross": report.summary.totals["GBP"].erp_gross,
        "difference": report.summary.totals["GBP"].difference,
    }
    by_ref = {e["reference"]: e for e in data["exceptions"]}
    assert by_ref[EVIL]["reason"] == "total_mismatch"
    assert by_ref[EVIL]["difference"] == 200  # minor units in JSON
    assert by_ref["ROUND"]["tier"] == "auto_accept"
    assert all(e["action"] for e in data["exceptions"])


def test_csv_rows_most_urgent_first_major_units_and_defused(report: ReconciliationReport) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert len(rows) == len(report.exceptions) == 5
    tiers = [r["tier"] for r in rows]
    assert tiers == sorted(tiers, key=["block", "review", "auto_accept"].index)
    evil = next(r for r in rows if r["reason"] == "total_mismatch")
    assert (evil["shop_amount"], evil["erp_amount"], evil["difference"]) == (
        "10.00",
        "12.00",
        "2.00",
    )
    assert evil["reference"] == EVIL
    unknown = next(r for r in rows if r["reason"] == "unknown_in_shop")
    assert unknown["reference"] == "'=HYPERLINK(1)"  # no formula for spreadsheets


class TagChecker(HTMLParser):
    VOID: ClassVar[set[str]] = {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_html(page: str) -> TagChecker:
    checker = TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.doctype.lower() == "doctype html"
    assert checker.errors == [] and checker.stack == []
    tags = [t for t, _ in checker.tags]
    assert (
        tags.count("html") == tags.count("head") == tags.count("body") == tags.count("title") == 1
    )
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(tags)
    for _tag, attrs in checker.tags:
        for name, value in attrs.items():
            assert not (value and re.search(r"(https?:)?//", value)), (name, value)
    assert not re.search(r"https?://|url\(|@import", page)
    return checker


def test_html_is_valid_self_contained_and_escapes_everything(report: ReconciliationReport) -> None:
    page = to_html(report, generated_at=datetime(2024, 6, 1, 9, 0, tzinfo=UTC))
    checker = check_html(page)
    text = "".join(checker.text)
    assert EVIL in text  # shown as text ...
    assert "<script>" not in page  # ... never as markup
    assert "Period: 2024-05" in text
    assert f"Generated 1 June 2024, 09:00 UTC by scayle-orderwise {__version__}" in text


def test_html_orders_summary_then_blocking_then_review_then_folded_rounding(
    report: ReconciliationReport,
) -> None:
    page = to_html(report)
    pos = {
        "summary": page.index('id="summary"'),
        "block": page.index("Blocking ("),
        "missing": page.index(f"<h4>{Reason.MISSING_IN_ERP.label}"),
        "review": page.index("To review ("),
        "status": page.index(f"<h4>{Reason.STATUS_MISMATCH.label}"),
        "details": page.index("<details"),
        "rounding": page.index(f"<h4>{Reason.ROUNDING_LINE_VS_DOC.label}"),
    }
    assert pos["summary"] < pos["block"] < pos["missing"] < pos["review"] < pos["status"]
    assert pos["status"] < pos["details"] < pos["rounding"]
    for reason in (Reason.MISSING_IN_ERP, Reason.TOTAL_MISMATCH, Reason.STATUS_MISMATCH):
        action = reason.action.replace("'", "&#x27;").replace('"', "&quot;")
        assert action in page
    assert "2 exception(s) block the close" in page
    assert "1 rounding variance(s) were explained and accepted" in page


def test_html_for_a_clean_run_says_so() -> None:
    page = to_html(reconcile_orders([shop("A")], [erp("A")]))
    check_html(page)
    assert "Every order agrees" in page
    assert "<details" not in page
    assert "No exceptions need attention." in page


def test_stock_report_formats() -> None:
    stock = reconcile_stock_levels(
        [("SKU<1>", "WH", 5), ("B", "WH", 2)], [("SKU<1>", "WH", 7), ("C", "WH", 3)]
    )
    data = json.loads(to_json(stock))
    assert data["kind"] == "stock" and len(data["rows"]) == 3
    rows = list(csv.DictReader(io.StringIO(to_csv(stock))))
    assert [(r["sku"], r["reason"], r["difference"]) for r in rows] == [
        ("B", "missing_in_shop", "-2"),
        ("C", "unknown_in_erp", ""),
        ("SKU<1>", "drift", "2"),
    ]
    page = to_html(stock)
    checker = check_html(page)
    assert "SKU<1>" in "".join(checker.text) and "SKU<1>" not in page
    assert "3 stock figure(s) differ." in page


def test_other_objects_are_refused() -> None:
    with pytest.raises(TypeError):
        to_json({"not": "a report"})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- what people read


def _cells(page: str, table_class: str = "exceptions") -> list[list[str]]:
    """The text of every body row of the tables of one class."""
    rows: list[list[str]] = []
    for table in re.findall(rf'<table class="{table_class}">(.*?)</table>', page, re.S):
        for tr in re.findall(r"<tbody>(.*?)</tbody>", table, re.S)[0].split("</tr>")[:-1]:
            rows.append([re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)])
    return rows


def test_every_row_has_a_difference_and_the_gross_differences_add_up_to_the_headline(
    report: ReconciliationReport,
) -> None:
    data = json.loads(to_json(report))
    assert all(e["difference"] is not None for e in data["exceptions"])
    listed = sum(e["gross_difference"] for e in data["exceptions"])
    assert (
        listed == data["summary"]["totals"]["GBP"]["difference"] == 2400 - 2400 + 200 - 2400 + 2400
    )
    by_ref = {e["reference"]: e for e in data["exceptions"]}
    assert (by_ref["MISSING"]["difference"], by_ref["MISSING"]["gross_difference"]) == (
        -2400,
        -2400,
    )
    assert by_ref["=HYPERLINK(1)"]["difference"] == 2400  # unknown in SCAYLE
    assert (by_ref["ROUND"]["measure"], by_ref["ROUND"]["gross_difference"]) == ("vat", 0)
    page = to_html(report)
    rows = _cells(page)
    assert len(rows) == 5 and all(row[6] not in ("", "—") for row in rows)
    assert {row[3] for row in rows} == {"Order gross", "VAT"}
    totals = _cells(page.replace('class="figures" id="totals"', 'class="totals"'), "totals")
    assert totals == [["GBP", "106.00 GBP", "108.00 GBP", "+2.00 GBP", "+2.00 GBP"]]


def test_duplicate_and_two_currency_rows_have_amounts_too() -> None:
    twice = reconcile_orders([shop("D"), shop("D", order_id="S-D2")], [erp("D", gross=2500)])
    rows = {e.reason: e for e in twice.exceptions}
    dup = rows[Reason.DUPLICATE_IN_SHOP]
    assert (dup.shop_amount, dup.erp_amount, dup.difference, dup.gross_difference) == (
        2400,
        2500,
        100,
        0,  # counted once, on the money row
    )
    assert rows[Reason.TOTAL_MISMATCH].gross_difference == 100
    mixed = reconcile_orders(
        [shop("X", status="cancellation_completed")], [erp("X", currency="EUR")]
    )
    status = next(e for e in mixed.exceptions if e.reason is Reason.STATUS_MISMATCH)
    assert (status.shop_money, status.erp_money) == (Money(2400, "GBP"), Money(2400, "EUR"))


def test_amounts_have_thousands_separators_and_a_sign() -> None:
    big = reconcile_orders([shop("BIG", gross=123456789)], [erp("BIG", gross=123466789)])
    [row] = _cells(to_html(big))
    assert row[4:8] == [
        "1,234,567.89 GBP",
        "1,234,667.89 GBP",
        "+100.00 GBP",
        "+100.00 GBP",
    ]


def test_currency_mismatch_rows_show_both_amounts() -> None:
    mixed = reconcile_orders([shop("FX")], [erp("FX", currency="EUR", gross=2800)])
    [row] = _cells(to_html(mixed))
    assert row[4:8] == ["24.00 GBP", "28.00 EUR", "n/a (two currencies)", "0.00 GBP"]
    assert "left out of the totals" in to_html(mixed)


def test_the_period_is_shown_readably_with_its_inclusive_end() -> None:
    period = ReportingPeriod.of(date(2026, 5, 1), date(2026, 6, 1))
    done = reconcile_orders([shop("A")], [erp("A")], period=period.label)
    assert "Period: 1 May 2026 – 31 May 2026 (Europe/London)" in to_html(done)


def test_stock_report_footer_and_advice_follow_the_operations_manual() -> None:
    stock = reconcile_stock_levels([("A", "WH", 5000)], [("A", "WH", 7000)])
    page = to_html(stock)
    footer = re.search(r"<footer>(.*?)</footer>", page, re.S)
    assert footer is not None
    text = footer.group(1)
    assert "SCAYLE minus OrderWise" in text and "currency" not in text
    [row] = _cells(page.replace("<table>", '<table class="exceptions">'))
    assert row[2:] == ["5,000", "7,000", "+2,000"]
    manual = (Path(__file__).resolve().parent.parent / "docs/operations/stock.md").read_text()
    assert "Running the stock sync again does **not** repair it" in manual
    assert "does not repair it" in page and "Run the inventory sync" not in page
