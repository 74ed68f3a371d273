"""The money policy's steps one by one: product lines (P5), payments that add up (P12)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from fixture_paths import sdk_fixtures
from scayle_orderwise import Connector
from scayle_orderwise.errors import MappingError
from scayle_orderwise.mapping import MappingConfig, OrderMapper, PaymentMismatchError
from scayle_orderwise.sandbox import Sandbox, make_order
from scayle_orderwise.testing.strategies import build_order_json

# --------------------------------------------------------------------------- P5 product lines


def test_p5_units_of_one_sku_at_different_prices_are_separate_product_lines() -> None:
    # Two T-shirts at 24.00 and one on sale at 18.00: the sale unit is its own line, so its own
    # price reaches OrderWise's per-unit price, and VAT is worked out per line (quantity folded in).
    order = build_order_json(
        1, [("TEE", 2400, "0.2"), ("TEE", 2400, "0.2"), ("TEE", 1800, "0.2", 2400)], delivery=0
    )
    mapped = OrderMapper().map(order)
    assert [(x.sku, x.quantity, x.unit_gross, x.gross, x.vat) for x in mapped.lines] == [
        ("TEE", 2, 2400, 4800, 800),
        ("TEE", 1, 1800, 1800, 300),
    ]
    assert mapped.total_vat == sum(x.vat for x in mapped.lines)  # document VAT = Σ line VAT
    body = mapped.to_orderwise()
    assert [(x.quantity, x.item_gross) for x in body.order_lines] == [
        (Decimal(2), Decimal("24.00")),
        (Decimal(1), Decimal("18.00")),
    ]


def test_p5_vat_is_per_line_with_the_quantity_folded_in_not_per_unit() -> None:
    # 3 x 0.99 at 20 %: per line VAT(2.97) = 0.495 -> 0.50; per unit 3 x VAT(0.99) = 3 x 0.17 = 0.51
    mapped = OrderMapper().map(build_order_json(2, [("PEN", 99, "0.2")] * 3, delivery=0))
    (line,) = mapped.lines
    assert (line.quantity, line.gross, line.vat) == (3, 297, 50)


def test_p5_one_sku_under_two_tax_codes_makes_two_lines() -> None:
    # The same SKU at two rates (a rate change mid-basket): one product line per rate and code.
    order = build_order_json(3, [("GIFT", 1000, "0.2"), ("GIFT", 1000, "0")], delivery=0)
    mapped = OrderMapper().map(order)
    assert [(x.tax_code, x.quantity, x.vat) for x in mapped.lines] == [("T1", 1, 167), ("T0", 1, 0)]


# --------------------------------------------------------------------------- payments add up


def _paid(order: dict[str, Any], *amounts: int, gift: bool = False) -> dict[str, Any]:
    order["payment"] = [
        {"amount": a, "key": "giftcard" if gift else "card", "isGiftCard": gift} for a in amounts
    ]
    return order


def test_a_gift_card_larger_than_the_order_is_refused() -> None:
    order = _paid(build_order_json(10, [("TEE", 1000, "0.2")], delivery=0), 99999, gift=True)
    with pytest.raises(PaymentMismatchError, match="add up to 99999, the order total is 1000"):
        OrderMapper().map(order)


def test_a_payment_listed_twice_is_refused_with_its_own_reason_code() -> None:
    order = _paid(build_order_json(11, [("TEE", 1000, "0.2")], delivery=0), 1000, 1000)
    with pytest.raises(PaymentMismatchError) as info:
        OrderMapper().map(order)
    assert isinstance(info.value, MappingError)  # the orders flow quarantines it
    assert info.value.reason_code == "payments_mismatch"
    assert (info.value.paid, info.value.total) == (2000, 1000)


def test_payments_that_add_up_pass_and_reach_orderwise() -> None:
    order = _paid(build_order_json(12, [("TEE", 1000, "0.2")], delivery=495), 500, 995)
    mapped = OrderMapper().map(order)
    assert mapped.to_orderwise().order_header.amount_paid == Decimal("14.95")


def test_an_order_without_payments_is_sent_without_an_amount_paid() -> None:
    order = _paid(build_order_json(13, [("TEE", 1000, "0.2")], delivery=0))
    body = OrderMapper().map(order).to_orderwise()
    assert body.order_header.amount_paid is None and body.payments is None


def test_a_membership_discount_paid_with_points_counts() -> None:
    order = _paid(build_order_json(14, [("TEE", 1000, "0.2")], delivery=0), 873)
    order["membershipDiscount"] = {"membershipCardId": 1, "pointsUsed": 1270, "reductionValue": 127}
    assert OrderMapper().map(order).to_orderwise().order_header.amount_paid == Decimal("8.73")
    order["payment"][0]["amount"] = 900
    with pytest.raises(PaymentMismatchError, match=r"\(873 after the membership discount\)"):
        OrderMapper().map(order)


def test_scayles_own_example_order_passes_the_payment_check() -> None:
    # SCAYLE's SDK example lists the payment without the service costs (1190 of 1390).
    order = json.loads((sdk_fixtures() / "OrderGetResponse.json").read_text())
    assert sum(p["amount"] for p in order["payment"]) != order["cost"]["withTax"]
    german = MappingConfig(tax_codes={"0.19": "T1", "0.07": "T5", "0": "T0"})  # a DE shop
    mapped = OrderMapper(german).map(order)
    assert mapped.total_gross == order["cost"]["withTax"]


def test_the_orders_flow_quarantines_payments_that_do_not_add_up() -> None:
    sandbox = Sandbox(seed=2)
    sandbox.orderwise.add_variant("TEE")
    order = make_order(15, [("TEE", 1000, 1, "0.20")], shipping=395)
    order["payment"].append(dict(order["payment"][0]))  # the same payment listed twice
    sandbox.scayle.add_order(order)
    connector = Connector.for_sandbox(sandbox)
    assert connector.sync_orders().counts["quarantined"] == 1
    record = connector.store.get("order:15")
    assert record is not None and record.state == "quarantined"
    assert record.reason is not None and record.reason.startswith("payments_mismatch: ")
    assert sandbox.orderwise.sales_orders == []
