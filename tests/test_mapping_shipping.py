"""P10: the delivery charge is never re-priced; its VAT follows the deliverable goods, as booked."""

from __future__ import annotations

from decimal import Decimal

from scayle_orderwise.mapping import (
    DeliveryGroup,
    MappingConfig,
    OrderMapper,
    ShippingPart,
    split_delivery,
)
from scayle_orderwise.testing.strategies import build_order_json

R20, R0 = Decimal("0.2"), Decimal(0)


def test_split_over_the_codes_of_the_goods_by_gross_after_discounts() -> None:
    # E04: 24.00 (T1) and 22.49 (T0) of goods, 4.95 delivery: T1 2.56 (VAT 0.43), T0 2.39.
    groups = [DeliveryGroup("T0", R0, 2249, 2249), DeliveryGroup("T1", R20, 2400, 2400)]
    assert split_delivery(495, groups) == (
        ShippingPart("T0", R0, 239, 239, 0),
        ShippingPart("T1", R20, 256, 213, 43),
    )


def test_goods_worth_nothing_after_the_voucher_fall_back_to_their_value_before_it() -> None:
    groups = [DeliveryGroup("T0", R0, 0, 1000), DeliveryGroup("T1", R20, 0, 3000)]
    assert [(p.tax_code, p.gross) for p in split_delivery(400, groups)] == [
        ("T0", 100),
        ("T1", 300),
    ]


def test_free_goods_fall_back_to_the_highest_rate_and_equal_top_rates_to_the_smaller_code() -> None:
    # Two codes share the top rate (20 %): the smaller code string takes the whole charge.
    groups = [
        DeliveryGroup("T0", R0, 0, 0),
        DeliveryGroup("T7", R20, 0, 0),
        DeliveryGroup("T1", R20, 0, 0),
    ]
    assert split_delivery(495, groups) == (ShippingPart("T1", R20, 495, 412, 83),)


def test_equal_top_rates_through_the_mapper() -> None:
    # A free gift at 20 % under an override code, the rest free too: T1 < T7 wins the tie.
    config = MappingConfig(tax_code_overrides={"GIFT": "T7"})
    order = build_order_json(5, [("GIFT", 0, "0.2"), ("TEE", 0, "0.2")], delivery=395)
    mapped = OrderMapper(config).map(order)
    assert [(p.tax_code, p.gross, p.vat) for p in mapped.shipping] == [("T1", 395, 66)]


def test_no_deliverable_goods_tax_the_fee_at_its_own_rate_and_code() -> None:
    # Only an exempt, non-deliverable service: the delivery keeps SCAYLE's rate for the fee (5 %).
    config = MappingConfig(non_deliverable_skus=["WARRANTY"], tax_code_overrides={"WARRANTY": "T2"})
    order = build_order_json(6, [("WARRANTY", 4900, "0")], delivery=420, delivery_rate="0.05")
    mapped = OrderMapper(config).map(order)
    assert [(p.tax_code, p.rate, p.gross, p.vat) for p in mapped.shipping] == [
        ("T5", Decimal("0.05"), 420, 20)
    ]


def test_the_split_reaches_orderwise_as_booked_one_carriage_line_per_code() -> None:
    order = build_order_json(
        7, [("TEE", 2400, "0.2"), ("KIDS", 1250, "0"), ("SEAT", 12000, "0.05")], delivery=599
    )
    mapped = OrderMapper().map(order)
    body = mapped.to_orderwise()
    carriage = {x.tax_code: x.item_gross for x in body.order_lines if x.variant_code == "CARRIAGE"}
    assert carriage == {p.tax_code: Decimal(p.gross) / 100 for p in mapped.shipping}
    assert len(carriage) == 3 and body.order_header.delivery_gross == 0
