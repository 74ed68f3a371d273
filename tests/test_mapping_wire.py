"""MappedOrder.to_orderwise(): the POST sales/order body, P11 split lines, major units, header."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from scayle_orderwise.mapping import MappingConfig, OrderMapper, split_line
from scayle_orderwise.mapping.wire import unit_price
from scayle_orderwise.money import round_half_up, to_fraction
from scayle_orderwise.orderwise.models import SalesOrderCreate
from scayle_orderwise.testing.strategies import PAYMENT_FEE_KEY, build_order_json


def test_wire_body_of_the_reference_order() -> None:
    order = build_order_json(
        40015,
        [("TEE", 2400, "0.2"), ("TEE", 2400, "0.2"), ("CAP", 1350, "0.2", 1500)],
        delivery=499,
    )
    cfg = MappingConfig(
        delivery_methods={"DPD": 7},
        stock_location_id=3,
        tax_rate_ids={"T0": 1, "T1": 2, "T5": 3},
        payment_methods={"adyen_creditcard": 11},
    )
    wire = OrderMapper(cfg).map(order).to_orderwise().to_wire()
    assert wire["customer"] == {"accountNumber": "WEB001"}
    header = wire["orderHeader"]
    assert header["eCommerceOrderNumber"] == "SCAYLE-40015"
    assert header["orderDate"] == "2026-05-04T10:10:02"  # 09:10 UTC is 10:10 BST
    assert header["systemOrderType"] == 1
    assert header["deliveryMethodId"] == 7
    # delivery is booked as a carriage line (P10: as booked), so the header's charge is 0
    assert (header["deliveryGross"], header["deliveryNet"], header["deliveryTax"]) == (0, 0, 0)
    assert "deliveryTaxCode" not in header
    assert (header["orderGross"], header["orderNet"], header["orderTax"]) == (66.49, 55.41, 11.08)
    assert header["customerOrderRef"] == "AC-40015"
    assert wire["orderLines"] == [
        {
            "itemNumber": 1,
            "variantCode": "TEE",
            "quantity": 2,
            "itemGross": 24,
            "taxRateId": 2,
            "taxCode": "T1",
            "stockLocationId": 3,
            "calculateLineSystemPrice": False,
            "eCommerceItemId": "4001500",
            "eCommerceCode": "TEE",
        },
        {
            "itemNumber": 2,
            "variantCode": "CAP",
            "quantity": 1,
            "itemGross": 13.5,
            "taxRateId": 2,
            "taxCode": "T1",
            "stockLocationId": 3,
            "calculateLineSystemPrice": False,
            "eCommerceItemId": "4001502",
            "eCommerceCode": "CAP",
        },
        {
            "itemNumber": 3,
            "variantCode": "CARRIAGE",
            "quantity": 1,
            "itemGross": 4.99,
            "taxRateId": 2,
            "taxCode": "T1",
            "calculateLineSystemPrice": False,
            "eCommerceCode": "delivery",
        },
    ]
    address = wire["customerDeliveryAddress"]
    assert address["countryCode"] == "GB"
    assert address["address1"] == "12 High Street"
    assert address["deliveryMethodId"] == 7
    assert wire["payments"] == [
        {
            "paymentMethodId": 11,
            "amount": 66.49,
            "reference": "tx-40015",
            "description": "adyen_creditcard",
        }
    ]


def test_p11_line_that_does_not_divide_goes_as_one_line_with_a_4_decimal_unit_price() -> None:
    order = build_order_json(2, [("A", 999, "0.2")] * 3, reductions=[1000])
    mapped = OrderMapper().map(order)
    (line,) = mapped.lines
    assert (line.gross, line.vat) == (1997, 333)
    body = mapped.to_orderwise()
    assert [(x.quantity, x.item_gross) for x in body.order_lines] == [
        (Decimal(3), Decimal("6.6567"))  # 6.6567 x 3 = 19.9701 -> 19.97: OrderWise's VAT is 3.33
    ]
    assert mapped.item_ids_by_item_number() == {1: (200, 201, 202)}


@pytest.mark.parametrize(
    ("gross", "quantity", "decimals", "price"),
    [
        (1997, 3, 4, "6.6567"),
        (1000, 3, 4, "3.3333"),
        (100, 7, 4, "0.1429"),
        (1, 99, 4, "0.0001"),
        (10001, 150, 4, "0.6667"),  # 0.6667 x 150 = 100.005 -> 100.01: exact beyond 99 units
        (1, 3, 2, None),  # the currency's own decimals leave no room
        (500, 3, 0, None),
    ],
)
def test_unit_price_times_quantity_rounds_back_to_the_gross(
    gross: int, quantity: int, decimals: int, price: str | None
) -> None:
    found = unit_price(gross, quantity, "GBP", decimals)
    assert found == (Decimal(price) if price is not None else None)
    if found is not None:
        assert round_half_up(to_fraction(found * quantity) * 100) == gross


def test_unit_price_gives_up_when_no_price_carries_the_gross() -> None:
    # 150 units of 1p total 1.51: no 4-decimal unit price rounds back to 1.51, so P11 splits
    assert unit_price(151, 150, "GBP", 4) is None
    order = build_order_json(3, [("A", 2, "0.2")] * 150, reductions=[149], delivery=None)
    mapped = OrderMapper().map(order)
    (line,) = mapped.lines
    assert (line.quantity, line.gross) == (150, 151)
    body = mapped.to_orderwise()
    assert [(x.quantity, x.item_gross) for x in body.order_lines] == [
        (Decimal(1), Decimal("0.02")),
        (Decimal(149), Decimal("0.01")),
    ]


def test_p11_split_line_in_the_wire_body_with_whole_penny_unit_prices() -> None:
    order = build_order_json(2, [("A", 999, "0.2")] * 3, reductions=[1000])
    mapped = OrderMapper(MappingConfig(unit_price_decimals=2)).map(order)
    (line,) = mapped.lines
    subs = line.sub_lines()
    assert [(s.quantity, s.unit_gross, s.gross, s.vat) for s in subs] == [
        (2, 666, 1332, 222),
        (1, 665, 665, 111),
    ]
    assert [s.item_ids for s in subs] == [(200, 201), (202,)]
    body = mapped.to_orderwise()
    assert [(x.quantity, x.item_gross) for x in body.order_lines] == [
        (Decimal(2), Decimal("6.66")),
        (Decimal(1), Decimal("6.65")),
    ]
    assert mapped.item_ids_by_item_number() == {1: (200, 201), 2: (202,)}


@pytest.mark.parametrize(
    ("gross", "vat", "qty"), [(1997, 333, 3), (10, 2, 7), (5, 1, 9), (0, 0, 4), (1000, 167, 8)]
)
def test_split_line_invariants(gross: int, vat: int, qty: int) -> None:
    subs = split_line(gross, vat, qty)
    assert 1 <= len(subs) <= 2
    assert sum(s.quantity for s in subs) == qty
    assert sum(s.quantity * s.unit_gross for s in subs) == gross
    assert sum(s.gross for s in subs) == gross
    assert sum(s.vat for s in subs) == vat
    assert max(s.unit_gross for s in subs) - min(s.unit_gross for s in subs) <= 1


@pytest.mark.parametrize(
    ("currency", "amount", "expected"),
    [
        ("JPY", 1500, Decimal("1500")),
        ("KWD", 12345, Decimal("12.345")),
        ("GBP", 185, Decimal("1.85")),
    ],
)
def test_major_units_follow_the_currency(currency: str, amount: int, expected: Decimal) -> None:
    order = build_order_json(3, [("X", amount, "0.2")], currency=currency, delivery=None)
    body = OrderMapper(MappingConfig(currency_ids={currency: 9})).map(order).to_orderwise()
    assert body.order_lines[0].item_gross == expected
    assert body.order_header.order_gross == expected
    assert body.order_header.currency_id == 9


def test_winter_order_date_is_gmt() -> None:
    order = build_order_json(4, [("X", 100, "0.2")], created_at="2026-01-10T23:30:00+00:00")
    wire = OrderMapper().map(order).to_orderwise().to_wire()
    assert wire["orderHeader"]["orderDate"] == "2026-01-10T23:30:00"


def test_delivery_method_default_and_fallbacks() -> None:
    order = build_order_json(5, [("X", 100, "0.2")], carrier="HERMES")
    assert OrderMapper().map(order).to_orderwise().order_header.delivery_method_id is None
    cfg = MappingConfig(default_delivery_method_id=1)
    assert OrderMapper(cfg).map(order).to_orderwise().order_header.delivery_method_id == 1
    cfg = MappingConfig(delivery_methods={"least_packages": 4}, default_delivery_method_id=1)
    assert OrderMapper(cfg).map(order).to_orderwise().order_header.delivery_method_id == 4
    cfg = MappingConfig(delivery_methods={"least_packages": 4, "HERMES": 5})
    assert OrderMapper(cfg).map(order).to_orderwise().order_header.delivery_method_id == 5


def test_split_delivery_goes_to_the_header_when_chosen() -> None:
    order = build_order_json(6, [("T", 2400, "0.2"), ("B", 1250, "0")], delivery=495)
    mapped = OrderMapper(MappingConfig(delivery_booking="header")).map(order)
    assert [(p.tax_code, p.gross, p.vat) for p in mapped.shipping] == [
        ("T0", 170, 0),  # 495·1250/3650 = 169.52 takes the leftover penny
        ("T1", 325, 54),
    ]
    body = mapped.to_orderwise()
    header = body.order_header
    assert header.delivery_gross == Decimal("4.95")
    assert header.delivery_tax_code == "T1"  # the larger part
    assert (header.delivery_net, header.delivery_tax) == (Decimal("4.41"), Decimal("0.54"))
    assert len(body.order_lines) == 2


def test_split_delivery_as_carriage_lines_by_default() -> None:
    order = build_order_json(7, [("T", 2400, "0.2"), ("B", 1250, "0")], delivery=495)
    body = OrderMapper().map(order).to_orderwise()
    assert body.order_header.delivery_gross == Decimal(0)
    assert body.order_header.delivery_tax_code is None
    carriage = [x for x in body.order_lines if x.variant_code == "CARRIAGE"]
    assert [(x.tax_code, x.item_gross) for x in carriage] == [
        ("T0", Decimal("1.70")),
        ("T1", Decimal("3.25")),
    ]
    assert body.order_header.order_gross == Decimal("41.45")


def test_fee_becomes_a_service_line() -> None:
    order = build_order_json(8, [("T", 2400, "0.2")], delivery=0, payment_fee=150)
    cfg = MappingConfig(fee_variant_codes={PAYMENT_FEE_KEY: "COD-FEE"})
    mapped = OrderMapper(cfg).map(order)
    (fee,) = mapped.fees
    assert (fee.gross, fee.vat, fee.net, fee.tax_code) == (150, 25, 125, "T1")
    assert mapped.total_gross == 2550
    lines = mapped.to_orderwise().order_lines
    assert [(x.item_number, x.variant_code, x.item_gross) for x in lines] == [
        (1, "T", Decimal("24.00")),
        (2, "COD-FEE", Decimal("1.50")),
    ]
    assert mapped.item_ids_by_item_number() == {1: (800,)}


def test_fee_variant_code_by_category() -> None:
    order = build_order_json(9, [("T", 2400, "0.2")], payment_fee=150)
    cfg = MappingConfig(fee_variant_codes={"payment": "PAYFEE"})
    lines = OrderMapper(cfg).map(order).to_orderwise().order_lines
    assert lines[-1].variant_code == "PAYFEE"


def test_unmapped_payments_stay_out_of_the_wire() -> None:
    order = build_order_json(10, [("T", 2400, "0.2")], gift_card=400)
    mapped = OrderMapper(MappingConfig(payment_methods={"giftcard": 5})).map(order)
    assert len(mapped.payments) == 2
    body = mapped.to_orderwise()
    assert body.payments is not None
    assert [(p.payment_method_id, p.amount) for p in body.payments] == [(5, Decimal("4.00"))]
    assert body.order_header.amount_paid == Decimal("24.00")


def test_body_is_a_valid_sales_order() -> None:
    order = build_order_json(11, [("T", 2400, "0.2"), ("B", 1250, "0")], delivery=495)
    body = OrderMapper().map(order).to_orderwise()
    assert SalesOrderCreate.model_validate(body.to_wire()) == body


def test_mapped_order_without_context_cannot_be_sent() -> None:
    mapped = OrderMapper().map(build_order_json(12, [("T", 100, "0.2")]))
    bare = attrs.evolve(mapped, wire=None)
    assert bare == mapped  # the context is not part of the value
    with pytest.raises(ValueError, match="wire context"):
        bare.to_orderwise()


FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _subset(expected: Any, got: Any, where: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(got, dict), where
        for key, value in expected.items():
            assert key in got, f"{where}.{key} missing"
            _subset(value, got[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for n, (e, g) in enumerate(zip(expected, got, strict=True)):
            _subset(e, g, f"{where}[{n}]")
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"


def test_reference_order_fixture_maps_to_the_orderwise_fixture() -> None:
    order = json.loads((FIXTURES / "scayle_order_example.json").read_text())
    expected = json.loads((FIXTURES / "orderwise_sales_order_example.json").read_text())
    # The reference body books delivery in the header (one tax code): the "header" booking.
    cfg = MappingConfig(
        delivery_methods={"DPD": 3},
        stock_location_id=1,
        payment_methods={"adyen_creditcard": 7},
        delivery_booking="header",
    )
    wire = OrderMapper(cfg).map(order).to_orderwise().to_wire()
    _subset(expected, wire)
    assert wire["orderHeader"]["orderTax"] == 11.08
