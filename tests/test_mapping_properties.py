"""Invariants of reference/money-policy.md §4.2 as hypothesis properties over drawn SCAYLE orders."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scayle_orderwise.mapping import (
    MappedOrder,
    OrderMapper,
    credit_for_items,
    full_credit,
    split_line,
)
from scayle_orderwise.mapping.tax import parse_rate, split_line_gross
from scayle_orderwise.money import Money, exponent, round_half_up, split_gross, to_fraction
from scayle_orderwise.testing.strategies import scayle_orders, strategy_mapping_config

MAPPER = OrderMapper(strategy_mapping_config())
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fees(order: dict[str, Any], delivery: bool) -> int:
    return sum(
        f["amount"]["withTax"]
        for f in order["cost"]["appliedFees"]
        if (f["category"] == "delivery") == delivery
    )


def check_to_the_penny(order: dict[str, Any], mapped: MappedOrder) -> None:
    goods = sum(line.gross for line in mapped.lines)
    total = goods + mapped.shipping_gross + sum(f.gross for f in mapped.fees)
    assert total == mapped.total_gross == order["cost"]["withTax"]
    bases = sum(line.base for line in mapped.lines)
    allocated = sum(line.discount for line in mapped.lines)
    assert goods == bases - allocated
    assert mapped.shipping_gross == _fees(order, delivery=True)
    assert sum(f.gross for f in mapped.fees) == _fees(order, delivery=False)
    assert bases == sum(i["price"]["withTax"] for i in order["items"])
    assert mapped.total_gross == mapped.total_net + mapped.total_vat
    assert mapped.currency == order["currencyCode"]
    assert mapped.gift_card_total == sum(p["amount"] for p in order["payment"] if p["isGiftCard"])


def check_voucher_bookkeeping(order: dict[str, Any], mapped: MappedOrder) -> None:
    requested = sum(r["amount"]["absoluteWithTax"] for r in order["cost"]["appliedReductions"])
    assert mapped.voucher_requested == requested
    allocated = sum(line.discount for line in mapped.lines)
    if mapped.voucher_in_item_prices:
        assert (mapped.voucher_applied, mapped.unused_voucher, allocated) == (requested, 0, 0)
    else:
        eligible = sum(line.base for line in mapped.lines)
        assert mapped.voucher_applied == min(requested, eligible) == allocated
        assert mapped.unused_voucher == requested - mapped.voucher_applied >= 0


def check_amounts_split_and_bounds(order: dict[str, Any], mapped: MappedOrder) -> None:
    parts: list[Any] = [*mapped.lines, *mapped.shipping, *mapped.fees]
    for part in parts:
        assert part.gross == part.net + part.vat
        assert part.gross >= 0 and part.net >= 0 and part.vat >= 0
        for value in (part.gross, part.net, part.vat):
            assert type(value) is int
    for line in mapped.lines:
        assert 0 <= line.discount <= line.base == line.unit_gross * line.quantity


def check_vat_closeness(order: dict[str, Any], mapped: MappedOrder) -> None:
    parts: list[Any] = [*mapped.lines, *mapped.shipping, *mapped.fees]
    for part in parts:
        r = Fraction(part.rate)
        assert abs(part.vat - r * part.gross / (1 + r)) <= Fraction(1, 2)
        assert abs(part.vat - r * part.net) <= (1 + r) / 2


def check_document_vat_close_to_line_vat(order: dict[str, Any], mapped: MappedOrder) -> None:
    groups: dict[tuple[str, Decimal], list[Any]] = {}
    parts: list[Any] = [*mapped.lines, *mapped.shipping, *mapped.fees]
    for part in parts:
        groups.setdefault((part.tax_code, part.rate), []).append(part)
    for (_, rate), members in groups.items():
        r = Fraction(rate)
        gross = sum(p.gross for p in members)
        doc_vat = round_half_up(r / (1 + r) * gross)
        n = len(members)
        assert abs(sum(p.vat for p in members) - doc_vat) <= (n + 1) // 2


def check_shipping_parts(order: dict[str, Any], mapped: MappedOrder) -> None:
    assert sum(p.gross for p in mapped.shipping) == _fees(order, delivery=True)
    deliverable = {(x.tax_code, x.rate) for x in mapped.lines if x.deliverable}
    if deliverable:
        assert {(p.tax_code, p.rate) for p in mapped.shipping} <= deliverable
    assert len({(p.tax_code, p.rate) for p in mapped.shipping}) == len(mapped.shipping)
    assert all(p.gross > 0 for p in mapped.shipping)


def check_lines_cover_every_unit_once(order: dict[str, Any], mapped: MappedOrder) -> None:
    ids = [i for line in mapped.lines for i in line.item_ids]
    assert sorted(ids) == sorted(item["id"] for item in order["items"])
    for line in mapped.lines:
        assert line.key == min(line.item_ids) and line.quantity == len(line.item_ids)
    assert [line.key for line in mapped.lines] == sorted(line.key for line in mapped.lines)
    identities = {(x.sku, x.unit_gross, x.rate, x.tax_code) for x in mapped.lines}
    assert len(identities) == len(mapped.lines)


def check_wire_body_matches_the_mapped_order(order: dict[str, Any], mapped: MappedOrder) -> None:
    body = mapped.to_orderwise()
    cur = mapped.currency
    # OrderWise rounds each line's itemGross x quantity to minor units (4-decimal prices, P11)
    scale = 10 ** exponent(cur)
    lines_total = sum(
        round_half_up(to_fraction(x.quantity * (x.item_gross or 0)) * scale)
        for x in body.order_lines
    )
    header = body.order_header
    delivery = round_half_up(to_fraction(header.delivery_gross or 0) * scale)
    assert lines_total + delivery == mapped.total_gross
    assert header.order_gross == Money(mapped.total_gross, cur).to_decimal()
    assert header.order_tax == Money(mapped.total_vat, cur).to_decimal()
    units = sum(x.quantity for x in body.order_lines if x.e_commerce_item_id is not None)
    assert units == len(order["items"])
    by_number = mapped.item_ids_by_item_number()
    assert sorted(i for ids in by_number.values() for i in ids) == sorted(
        item["id"] for item in order["items"]
    )
    for number, ids in by_number.items():
        assert body.order_lines[number - 1].quantity == len(ids)


@SETTINGS
@given(scayle_orders())
def test_mapping_invariants(order: dict[str, Any]) -> None:
    """§4.2.1-7, 9 and 13 on one drawn order each (one draw feeds every check: drawing is slow)."""
    mapped = MAPPER.map(order)
    check_to_the_penny(order, mapped)
    check_voucher_bookkeeping(order, mapped)
    check_amounts_split_and_bounds(order, mapped)
    check_vat_closeness(order, mapped)
    check_document_vat_close_to_line_vat(order, mapped)
    check_shipping_parts(order, mapped)
    check_lines_cover_every_unit_once(order, mapped)
    check_wire_body_matches_the_mapped_order(order, mapped)


@SETTINGS
@given(scayle_orders(), st.randoms(use_true_random=False))
def test_order_independence(order: dict[str, Any], rnd: random.Random) -> None:
    expected = MAPPER.map(order)
    items = list(order["items"])
    rnd.shuffle(items)
    fees = list(order["cost"]["appliedFees"])
    rnd.shuffle(fees)
    shuffled = {**order, "items": items, "cost": {**order["cost"], "appliedFees": fees}}
    got = MAPPER.map(shuffled)
    assert got == expected
    assert got.to_orderwise() == expected.to_orderwise()


@SETTINGS
@given(
    st.integers(0, 10**7),
    st.integers(1, 150),
    st.sampled_from(["0.2", "0.05", "0"]),
)
def test_split_lines(gross: int, quantity: int, rate: str) -> None:
    r = Fraction(rate)
    vat = round_half_up(gross * r / (1 + r))
    subs = split_line(gross, vat, quantity, tuple(range(quantity)))
    assert 1 <= len(subs) <= 2
    assert sum(s.quantity for s in subs) == quantity
    assert sum(s.unit_gross * s.quantity for s in subs) == gross == sum(s.gross for s in subs)
    assert max(s.unit_gross for s in subs) - min(s.unit_gross for s in subs) <= 1
    assert sum(s.vat for s in subs) == vat
    assert all(s.gross == s.net + s.vat and s.vat >= 0 for s in subs)
    assert [i for s in subs for i in s.item_ids] == list(range(quantity))


def _line_with_units(mapped: MappedOrder, rnd: random.Random) -> Any:
    return rnd.choice(sorted(mapped.lines, key=lambda x: (-x.quantity, x.key)))


@SETTINGS
@given(scayle_orders(max_units=6), st.randoms(use_true_random=False))
def test_refund_path_independence(order: dict[str, Any], rnd: random.Random) -> None:
    mapped = MAPPER.map(order)
    line = _line_with_units(mapped, rnd)
    units = list(line.item_ids)
    rnd.shuffle(units)
    cuts = sorted(rnd.sample(range(1, len(units)), rnd.randint(0, len(units) - 1)))
    batches = [units[a:b] for a, b in zip([0, *cuts], [*cuts, len(units)], strict=True)]
    done: list[int] = []
    gross = vat = 0
    for batch in batches:
        note = credit_for_items(mapped, batch, already_credited=done)
        (credit,) = note.lines
        assert credit.gross == credit.net + credit.vat
        share = Fraction(line.gross * len(batch), line.quantity)
        assert abs(-credit.gross - share) < 1
        assert abs(-credit.vat - Fraction(line.vat * len(batch), line.quantity)) < 1
        gross += credit.gross
        vat += credit.vat
        done += batch
    assert (gross, vat) == (-line.gross, -line.vat)


@SETTINGS
@given(scayle_orders())
def test_full_refund_symmetry(order: dict[str, Any]) -> None:
    mapped = MAPPER.map(order)
    note = full_credit(mapped)
    assert (note.total_gross, note.total_net, note.total_vat) == (
        -mapped.total_gross,
        -mapped.total_net,
        -mapped.total_vat,
    )
    for credit, line in zip(note.lines, mapped.lines, strict=True):
        assert (credit.line_key, credit.quantity) == (line.key, line.quantity)
        assert (credit.gross, credit.net, credit.vat) == (-line.gross, -line.net, -line.vat)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-(10**9), 10**9),
    st.sampled_from(["0.2", "0.05", "0", "0.19", "0.07", "0.255", "1", "0.125"]),
)
def test_fast_vat_split_equals_money_split_gross(gross: int, rate: str) -> None:
    value = parse_rate(rate)
    assert split_line_gross(gross, value) == split_gross(gross, rate)
