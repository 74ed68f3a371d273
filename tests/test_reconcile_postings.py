"""Batched postings: totals per tax code, period filtering and byte-identical re-exports."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, date, datetime

import pytest

from scayle_orderwise.mapping import MappingConfig, OrderMapper
from scayle_orderwise.reconcile import (
    Period,
    PostingLine,
    PostingSource,
    batch_id,
    build_postings,
    postings_csv,
)
from scayle_orderwise.scayle.models import Order
from scayle_orderwise.testing.strategies import build_order_json


def e04(ref: str = "E04", booked: date = date(2024, 5, 3)) -> PostingSource:
    """money-policy E04: 20%/0% basket with 4.95 delivery apportioned (gross 51.44, VAT 4.43)."""
    return PostingSource(
        reference=ref,
        currency="GBP",
        booked_at=booked,
        lines=[
            PostingLine("T1", 2400, 2000, 400),
            PostingLine("T0", 1250, 1250, 0),
            PostingLine("T0", 999, 999, 0),
        ],
        shipping=[PostingLine("T1", 256, 213, 43), PostingLine("T0", 239, 239, 0)],
    )


def e13(ref: str = "E13", booked: date = date(2024, 5, 20)) -> PostingSource:
    """money-policy E13: 20% and 5% lines after a £15 voucher, 5.99 delivery (gross 200.98)."""
    return PostingSource(
        reference=ref,
        currency="GBP",
        booked_at=datetime(booked.year, booked.month, booked.day, 23, 59, tzinfo=UTC),
        lines=[PostingLine("T1", 8356, 6963, 1393), PostingLine("T5", 11143, 10612, 531)],
        shipping=[PostingLine("T5", 342, 326, 16), PostingLine("T1", 257, 214, 43)],
        discount=1500,
    )


def rows_as_dicts(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_totals_per_tax_code_shipping_discount_and_total() -> None:
    rows = build_postings([e04(), e13()], "2024-05")
    table = {(r.kind, r.tax_code): (r.orders, r.net, r.vat, r.gross) for r in rows}
    assert table == {
        ("goods", "T0"): (1, 2249, 0, 2249),
        ("goods", "T1"): (2, 2000 + 6963, 400 + 1393, 2400 + 8356),
        ("goods", "T5"): (1, 10612, 531, 11143),
        ("shipping", "T0"): (1, 239, 0, 239),
        ("shipping", "T1"): (2, 213 + 214, 43 + 43, 256 + 257),
        ("shipping", "T5"): (1, 326, 16, 342),
        ("discount_memo", ""): (1, None, None, 1500),
        ("total", ""): (2, 4701 + 18115, 443 + 1983, 5144 + 20098),
    }
    assert [r.period for r in rows] == ["2024-05"] * len(rows)
    assert [(r.kind, r.tax_code) for r in rows] == [
        ("goods", "T0"),
        ("goods", "T1"),
        ("goods", "T5"),
        ("shipping", "T0"),
        ("shipping", "T1"),
        ("shipping", "T5"),
        ("discount_memo", ""),
        ("total", ""),
    ]


def test_csv_is_byte_identical_for_any_input_order_and_carries_a_batch_id() -> None:
    sources = [e04(f"A{i}") for i in range(20)] + [e13(f"B{i}") for i in range(20)]
    first = postings_csv(build_postings(sources, Period.month(2024, 5)))
    random.Random(4).shuffle(sources)
    again = postings_csv(build_postings(sources + sources[:5], "2024-05"))  # re-fed orders too
    assert first == again
    parsed = rows_as_dicts(first)
    assert {r["batch_id"] for r in parsed} == {batch_id(build_postings(sources, "2024-05"))}
    assert parsed[0]["batch_id"].startswith("2024-05-")
    total = next(r for r in parsed if r["kind"] == "total")
    assert (total["net"], total["vat"], total["gross"]) == ("4563.20", "485.20", "5048.40")
    memo = next(r for r in parsed if r["kind"] == "discount_memo")
    assert (memo["net"], memo["gross"]) == ("", "300.00")
    changed = postings_csv(build_postings([*sources, e04("NEW")], "2024-05"))
    assert rows_as_dicts(changed)[0]["batch_id"] != parsed[0]["batch_id"]


def test_orders_outside_the_period_are_skipped() -> None:
    rows = build_postings(
        [e04("IN"), e04("BEFORE", date(2024, 4, 30)), e13("AFTER", date(2024, 6, 1))], "2024-05"
    )
    total = next(r for r in rows if r.kind == "total")
    assert (total.orders, total.gross) == (1, 5144)
    assert build_postings([e04()], "2024-06") == []
    empty = postings_csv([], "2024-06")
    assert empty.splitlines() == [
        "batch_id,period,currency,kind,tax_code,orders,net,vat,gross,journal,previous_batch"
    ]


def test_conflicting_duplicates_and_bad_lines_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        build_postings([e04("X"), e13("X")], "2024-05")
    with pytest.raises(ValueError, match="net"):
        PostingLine("T1", 1000, 800, 100)
    with pytest.raises(TypeError):
        PostingLine("T1", 10.0, 8, 2)  # type: ignore[arg-type]


def test_currencies_are_kept_apart() -> None:
    eur = PostingSource(
        reference="EU",
        currency="eur",
        booked_at=date(2024, 5, 9),
        lines=[PostingLine("T1", 1190, 1000, 190)],
    )
    rows = build_postings([e04(), eur], "2024-05")
    assert sorted({r.currency for r in rows}) == ["EUR", "GBP"]
    eur_total = next(r for r in rows if r.currency == "EUR" and r.kind == "total")
    assert eur_total.gross == 1190


def test_periods() -> None:
    assert Period.parse("2024-12") == Period(date(2024, 12, 1), date(2025, 1, 1))
    assert Period.parse("2024-12").id == "2024-12"
    custom = Period.parse("2024-05-01..2024-05-15")
    assert custom.end == date(2024, 5, 16)
    assert custom.id == "2024-05-01..2024-05-15"
    assert date(2024, 5, 15) in custom and date(2024, 5, 16) not in custom
    with pytest.raises(ValueError):
        Period.parse("May")
    with pytest.raises(ValueError):
        Period(date(2024, 5, 2), date(2024, 5, 1))


def test_from_a_real_mapped_order_e13() -> None:
    """E13 through the real mapper: the journal's total row equals the mapped totals."""
    order = build_order_json(
        1301,
        [("PRAM-ACC", 8999, "0.2"), ("CAR-SEAT", 12000, "0.05")],
        delivery=599,
        reductions=[1500],
    )
    mapped = OrderMapper(MappingConfig(tax_codes={"0.20": "T1", "0.05": "T5", "0": "T0"})).map(
        Order.model_validate(order)
    )
    source = PostingSource.from_mapped(mapped, booked_at=date(2024, 5, 2), discount=1500)
    rows = {(r.kind, r.tax_code): r for r in build_postings([source], "2024-05")}
    total = rows[("total", "")]
    assert (total.gross, total.vat, total.net) == (20098, 1983, 18115)
    assert (rows[("goods", "T1")].gross, rows[("goods", "T5")].gross) == (8356, 11143)
    assert (rows[("shipping", "T1")].gross, rows[("shipping", "T5")].gross) == (257, 342)
