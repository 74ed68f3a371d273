"""Issue 12's acceptance: under default settings OrderWise books the shop's VAT per tax code.

Orders go through ``Connector.for_sandbox`` unchanged; the sandbox's OrderWise books VAT as
OrderWise does (from the tax code of each line and of the header delivery), so these tests fail
when the body sent does not carry the mapped VAT split (as 0.1.0's header delivery did not).
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings

from scayle_orderwise import Connector
from scayle_orderwise.mapping import MappedOrder
from scayle_orderwise.money import round_half_up, to_fraction
from scayle_orderwise.reconcile import Tier
from scayle_orderwise.sandbox import Sandbox
from scayle_orderwise.testing.baskets import stock_sandbox, uk_baskets
from scayle_orderwise.testing.strategies import scayle_orders


def _pence(value: Decimal | None) -> int:
    return round_half_up(to_fraction(value or 0) * 100)


def booked_vat(sandbox: Sandbox) -> dict[str, Counter[str]]:
    """VAT per tax code of every order in the sandbox's OrderWise, as it booked it."""
    out: dict[str, Counter[str]] = {}
    for order in sandbox.orderwise_client().iter_order_details():
        per_code: Counter[str] = Counter()
        for line in order.lines or []:
            per_code[line.tax_code or "?"] += _pence(line.line_vat)
        if order.delivery_gross:  # a header delivery: booked under the header's tax code
            per_code["header delivery"] += _pence(order.delivery_vat)
        assert order.reference is not None
        out[order.reference] = per_code
    return out


def mapped_vat(mapped: MappedOrder) -> Counter[str]:
    per_code: Counter[str] = Counter()
    for part in (*mapped.lines, *mapped.shipping, *mapped.fees):
        per_code[part.tax_code] += part.vat
    return per_code


def _push(sandbox: Sandbox, orders: list[dict[str, Any]]) -> Connector:
    for order in orders:
        sandbox.scayle.add_order(order)
    connector = Connector.for_sandbox(sandbox)
    result = connector.sync_orders()
    assert result.counts["pushed"] == len(orders), result.counts
    return connector


def test_150_mixed_rate_uk_baskets_reconcile_with_nothing_to_review() -> None:
    orders = uk_baskets(150, seed=12)
    mixed = sum(
        1 for o in orders if len({i["price"]["tax"]["vat"]["rate"] for i in o["items"]}) > 1
    )
    assert mixed >= 75 and all(o["cost"]["appliedFees"] for o in orders)
    assert sum(1 for o in orders if o["cost"]["appliedReductions"]) >= 30
    sandbox = Sandbox(seed=12)
    stock_sandbox(sandbox)
    connector = _push(sandbox, orders)
    booked = booked_vat(sandbox)
    for order in orders:
        mapped = connector.mapper.map(order)
        assert +booked[mapped.external_reference] == +mapped_vat(mapped), order["id"]
    report = connector.reconcile()
    assert report.summary.matched == 150
    assert report.summary.by_tier.get(Tier.BLOCK.value, 0) == 0
    assert report.summary.by_tier.get(Tier.REVIEW.value, 0) == 0
    assert report.ok


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    order=scayle_orders(
        currencies=("GBP",),
        rates=("0.2", "0.2", "0.05", "0"),
        services=False,
        payment_fees=False,
    )
)
def test_orderwise_books_the_mapped_vat_per_code_for_any_order(order: dict[str, Any]) -> None:
    sandbox = Sandbox(seed=1)
    for item in order["items"]:
        sandbox.orderwise.add_variant(item["variant"]["referenceKey"])
    connector = _push(sandbox, [order])
    mapped = connector.mapper.map(order)
    [booked] = booked_vat(sandbox).values()
    assert +booked == +mapped_vat(mapped)
    report = connector.reconcile()
    assert [e for e in report.exceptions if e.tier is not Tier.AUTO_ACCEPT] == []
    assert report.summary.clean == 1
