"""Connector.reconcile() and export_postings() over the sandbox: what a controller sees."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

from scayle_orderwise import Connector
from scayle_orderwise.reconcile import Reason, Tier
from scayle_orderwise.sandbox import Sandbox, make_order

CATALOGUE = {"TEE": ("0.20", 2400), "BOOK": ("0", 1250), "SEAT": ("0.05", 12000)}


def _sandbox() -> Sandbox:
    sandbox = Sandbox(seed=3)
    for sku in CATALOGUE:
        sandbox.orderwise.add_variant(sku)
        sandbox.scayle.add_variant(sku)
    return sandbox


def _order(order_id: int, skus: list[str], **kwargs: object) -> dict[str, object]:
    lines = [(sku, CATALOGUE[sku][1], 1, CATALOGUE[sku][0]) for sku in skus]
    kwargs.setdefault("shipping", 495)
    return make_order(order_id, lines, **kwargs)  # type: ignore[arg-type]


def test_a_voucher_dropped_in_orderwise_is_named_as_a_discount_mismatch() -> None:
    sandbox = _sandbox()
    sandbox.scayle.add_order(_order(1, ["TEE", "BOOK"], voucher=1000, voucher_code="SAVE10"))
    sandbox.scayle.add_order(_order(2, ["TEE"]))
    connector = Connector.for_sandbox(sandbox)
    assert connector.sync_orders().counts["pushed"] == 2
    assert connector.reconcile().exceptions == []
    # Someone in OrderWise puts the lines back to their prices before the voucher.
    sandbox.orderwise.amend_line("SCAYLE-1", "TEE", item_gross="24.00")
    sandbox.orderwise.amend_line("SCAYLE-1", "BOOK", item_gross="12.50")
    [exc] = connector.reconcile().exceptions
    assert (exc.reason, exc.tier) == (Reason.DISCOUNT_MISMATCH, Tier.BLOCK)
    assert (exc.shop_amount, exc.erp_amount, exc.difference) == (1000, 0, -1000)
    assert "SAVE10" in exc.detail


def _total_orders(postings: str) -> str:
    rows = list(csv.DictReader(io.StringIO(postings)))
    return next((r["orders"] for r in rows if r["kind"] == "total"), "0")


def test_postings_and_reconciliation_share_one_period_rule() -> None:
    sandbox = _sandbox()
    # confirmedAt is 2 minutes after createdAt: 08:02, 11:02 and 15:02 UTC on 4 May (BST = UTC+1)
    for order_id, hour in ((11, 8), (12, 11), (13, 15)):
        created = datetime(2026, 5, 4, hour, 0, tzinfo=UTC)
        sandbox.scayle.add_order(_order(order_id, ["TEE"], created_at=created))
    connector = Connector.for_sandbox(sandbox)
    connector.sync_orders()
    since = datetime(2026, 4, 30, 23, 0, tzinfo=UTC)  # 1 May 00:00 in London
    until = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)  # not midnight: orders 11 and 12 are in
    report = connector.reconcile(since, until)
    assert report.summary.shop_orders == report.summary.erp_orders == 2
    postings = connector.export_postings(since=since, until=until)
    assert _total_orders(postings) == "2"  # 0.1.0 dropped the whole of 4 May here
    # Naive datetimes and dates are read in the books' time zone (Europe/London by default).
    naive = connector.export_postings(since=datetime(2026, 5, 1), until=datetime(2026, 5, 4, 13))
    assert naive == postings
    whole_days = connector.reconcile(date(2026, 5, 1), date(2026, 5, 5))
    assert whole_days.summary.shop_orders == 3


def _rows(postings: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(postings)))


MAY = (date(2026, 5, 1), date(2026, 6, 1))


def _month_with_a_late_order() -> tuple[Sandbox, Connector]:
    sandbox = _sandbox()
    for order_id in (21, 22):
        sandbox.scayle.add_order(_order(order_id, ["TEE", "BOOK"]))
    sandbox.scayle.add_order(make_order(23, [("NEW-SKU", 1000, 1, "0.20")], shipping=395))
    connector = Connector.for_sandbox(sandbox)
    counts = connector.sync_orders().counts
    assert (counts["pushed"], counts["quarantined"]) == (2, 1)  # NEW-SKU unknown to OrderWise
    return sandbox, connector


def _book_the_late_order(sandbox: Sandbox, connector: Connector) -> None:
    sandbox.clock.advance(3600)  # type: ignore[attr-defined]
    sandbox.orderwise.add_variant("NEW-SKU")
    connector.release_quarantined(23)
    assert connector.sync_orders().counts["pushed"] == 1


def test_a_late_order_makes_the_new_journal_say_it_replaces_the_earlier_one() -> None:
    sandbox, connector = _month_with_a_late_order()
    first = connector.postings(since=MAY[0], until=MAY[1])
    assert (first.orders, first.journal, first.previous_batches, first.warnings) == (
        2,
        "full",
        (),
        (),
    )
    assert connector.postings(since=MAY[0], until=MAY[1]).csv == first.csv  # same bytes again
    _book_the_late_order(sandbox, connector)
    second = connector.postings(since=MAY[0], until=MAY[1])
    assert (second.orders, second.late_orders) == (3, 1)
    assert second.previous_batches == (first.batch_id,)
    assert {(r["journal"], r["previous_batch"]) for r in _rows(second.csv)} == {
        ("full", first.batch_id)
    }
    [warning] = second.warnings
    assert f"replaces batch {first.batch_id}" in warning and "1 order(s)" in warning
    assert connector.postings(since=MAY[0], until=MAY[1]).csv == second.csv


def test_a_late_order_can_be_exported_as_additions_to_the_earlier_journal() -> None:
    sandbox, connector = _month_with_a_late_order()
    first = connector.postings(since=MAY[0], until=MAY[1])
    _book_the_late_order(sandbox, connector)
    extra = connector.postings(since=MAY[0], until=MAY[1], journal="additions")
    assert (extra.orders, extra.journal, extra.previous_batches) == (
        1,
        "additions",
        (first.batch_id,),
    )
    total = next(r for r in _rows(extra.csv) if r["kind"] == "total")
    assert (total["orders"], total["gross"], total["previous_batch"]) == (
        "1",
        "13.95",
        first.batch_id,
    )
    assert f"adds 1 late order(s) to batch {first.batch_id}" in extra.warnings[0]
    # A full journal now replaces both.
    full = connector.postings(since=MAY[0], until=MAY[1])
    assert full.previous_batches == (first.batch_id, extra.batch_id)


def test_an_empty_ledger_exports_with_a_warning() -> None:
    sandbox = _sandbox()
    sandbox.scayle.add_order(_order(31, ["TEE"]))
    connector = Connector.for_sandbox(sandbox)  # nothing synced: a fresh (or wrong) ledger
    export = connector.postings(since=MAY[0], until=MAY[1])
    assert export.orders == 0 and _rows(export.csv) == []
    [warning] = export.warnings
    assert "the ledger holds no order acknowledged by OrderWise" in warning
    connector.sync_orders()
    june = connector.postings(since=date(2026, 6, 1), until=date(2026, 7, 1))
    assert june.warnings == (
        "no order acknowledged by OrderWise was booked in 1 June 2026 – "
        "30 June 2026 (Europe/London).",
    )
