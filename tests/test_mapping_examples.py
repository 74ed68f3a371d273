"""Worked examples of reference/money-policy.md §5 (E01, E03, E04, E10, E11, E13) and the §2.5 order."""

from __future__ import annotations

import random
from decimal import Decimal

from scayle_orderwise.mapping import MappedOrder, MappingConfig, OrderMapper, credit_for_items
from scayle_orderwise.sandbox import make_order
from scayle_orderwise.testing.strategies import ItemSpec, build_order_json


def _map(order: dict[str, object], config: MappingConfig | None = None) -> MappedOrder:
    return OrderMapper(config).map(order)


def _by_sku(mapped: MappedOrder) -> dict[str, tuple[int, int, int]]:
    return {line.sku: (line.gross, line.vat, line.net) for line in mapped.lines}


def test_e01_voucher_over_three_equal_lines() -> None:
    order = build_order_json(
        1, [("A", 999, "0.2"), ("B", 999, "0.2"), ("C", 999, "0.2")], reductions=[1000]
    )
    mapped = _map(order)
    assert [line.discount for line in mapped.lines] == [334, 333, 333]
    assert _by_sku(mapped) == {"A": (665, 111, 554), "B": (666, 111, 555), "C": (666, 111, 555)}
    assert (mapped.total_gross, mapped.total_vat, mapped.total_net) == (1997, 333, 1664)
    assert (mapped.voucher_requested, mapped.voucher_applied, mapped.unused_voucher) == (
        1000,
        1000,
        0,
    )
    assert mapped.voucher_in_item_prices is False


def test_e01_same_answer_per_key_in_another_order() -> None:
    items = [
        {"sku": "C", "gross": 999, "rate": "0.2", "id": 3},
        {"sku": "A", "gross": 999, "rate": "0.2", "id": 1},
        {"sku": "B", "gross": 999, "rate": "0.2", "id": 2},
    ]
    mapped = _map(build_order_json(1, items, reductions=[1000]))
    assert _by_sku(mapped)["A"] == (665, 111, 554)  # smallest key gets the odd penny
    assert [line.key for line in mapped.lines] == [1, 2, 3]


def test_e03_tie_rounds_half_up() -> None:
    mapped = _map(build_order_json(3, [("BOOKMARK", 999, "0.2")]))
    (line,) = mapped.lines
    assert (line.gross, line.vat, line.net) == (999, 167, 832)


def test_e04_shipping_apportioned_over_codes() -> None:
    order = build_order_json(
        4, [("TSHIRT", 2400, "0.2"), ("BOOK", 1250, "0"), ("SHOES", 999, "0")], delivery=495
    )
    mapped = _map(order)
    assert _by_sku(mapped)["TSHIRT"] == (2400, 400, 2000)
    parts = {p.tax_code: (p.gross, p.vat, p.net) for p in mapped.shipping}
    assert parts == {"T1": (256, 43, 213), "T0": (239, 0, 239)}
    assert (mapped.total_gross, mapped.total_vat, mapped.total_net) == (5144, 443, 4701)


def test_e10_voucher_bigger_than_the_basket() -> None:
    order = build_order_json(10, [("COAT", 3000, "0.2")], delivery=495, reductions=[5000])
    mapped = _map(order)
    assert (mapped.voucher_applied, mapped.unused_voucher) == (3000, 2000)
    (line,) = mapped.lines
    assert (line.gross, line.vat, line.discount) == (0, 0, 3000)
    (part,) = mapped.shipping  # goods worth 0: falls back to the pre-discount codes
    assert (part.tax_code, part.gross, part.vat, part.net) == ("T1", 495, 83, 412)
    assert mapped.total_gross == 495
    body = mapped.to_orderwise()
    assert body.order_lines[0].item_gross == Decimal("0.00")  # the unit still ships


def test_e11_refund_after_an_order_discount() -> None:
    order = build_order_json(
        11, [("A", 999, "0.2"), ("B", 999, "0.2"), ("C", 999, "0.2")], reductions=[1000]
    )
    mapped = _map(order)
    line_b = next(line for line in mapped.lines if line.sku == "B")
    credit = credit_for_items(mapped, line_b.item_ids)
    assert (credit.total_gross, credit.total_vat, credit.total_net) == (-666, -111, -555)
    assert mapped.total_gross + credit.total_gross == 1331
    assert mapped.total_vat + credit.total_vat == 222


def test_e11b_partial_refunds_cumulative_rule() -> None:
    order = build_order_json(12, [("A", 999, "0.2")] * 3, reductions=[1000])
    mapped = _map(order)
    (line,) = mapped.lines
    assert (line.quantity, line.gross, line.vat) == (3, 1997, 333)
    ids = line.item_ids
    first = credit_for_items(mapped, ids[:1])
    second = credit_for_items(mapped, ids[1:2], already_credited=ids[:1])
    third = credit_for_items(mapped, ids[2:], already_credited=ids[:2])
    got = [(c.total_gross, c.total_vat, c.total_net) for c in (first, second, third)]
    assert got == [(-666, -111, -555), (-665, -111, -554), (-666, -111, -555)]
    together = credit_for_items(mapped, ids[:2])  # E11c
    assert (together.total_gross, together.total_vat, together.total_net) == (-1331, -222, -1109)


def test_e13_mixed_rates_voucher_and_shipping() -> None:
    order = build_order_json(
        13,
        [("PRAM-ACC", 8999, "0.2"), ("CAR-SEAT", 12000, "0.05")],
        reductions=[1500],
        delivery=599,
    )
    mapped = _map(order)
    assert {line.sku: line.discount for line in mapped.lines} == {"PRAM-ACC": 643, "CAR-SEAT": 857}
    assert _by_sku(mapped) == {"PRAM-ACC": (8356, 1393, 6963), "CAR-SEAT": (11143, 531, 10612)}
    parts = {p.tax_code: (p.gross, p.vat) for p in mapped.shipping}
    assert parts == {"T5": (342, 16), "T1": (257, 43)}
    assert (mapped.total_gross, mapped.total_vat, mapped.total_net) == (20098, 1983, 18115)


def test_reference_example_order_2_5() -> None:
    order = build_order_json(
        40015,
        [
            ("SKU-TSHIRT-BLK-M", 2400, "0.2"),
            ("SKU-TSHIRT-BLK-M", 2400, "0.2"),
            ("SKU-CAP-NAVY", 1350, "0.2", 1500),
        ],
        delivery=499,
    )
    mapped = _map(order)
    assert [(x.sku, x.quantity, x.gross, x.vat) for x in mapped.lines] == [
        ("SKU-TSHIRT-BLK-M", 2, 4800, 800),
        ("SKU-CAP-NAVY", 1, 1350, 225),
    ]
    assert mapped.lines[0].item_ids == (4001500, 4001501)
    (part,) = mapped.shipping
    assert (part.gross, part.vat, part.net) == (499, 83, 416)
    assert (mapped.total_gross, mapped.total_vat, mapped.total_net) == (6649, 1108, 5541)


def test_voucher_already_inside_item_prices() -> None:
    # SCAYLE's own fixture shape: a reduction listed at order level, item price already reduced.
    order = build_order_json(
        20, [("M00012", 1190, "0.2")], delivery=200, reductions=[100], reductions_in_prices=True
    )
    mapped = _map(order)
    assert mapped.voucher_in_item_prices is True
    assert (mapped.voucher_applied, mapped.unused_voucher) == (100, 0)
    assert mapped.lines[0].discount == 0 and mapped.lines[0].gross == 1190
    assert mapped.total_gross == 1390


def test_gift_card_is_a_payment_not_a_discount() -> None:
    # E15: a £60 coat paid partly with a £20 gift card keeps its full VAT.
    order = build_order_json(15, [("COAT", 6000, "0.2")], gift_card=2000)
    mapped = _map(order)
    assert (mapped.total_gross, mapped.total_vat) == (6000, 1000)
    assert mapped.gift_card_total == 2000
    assert sorted((p.amount, p.is_gift_card) for p in mapped.payments) == [
        (2000, True),
        (4000, False),
    ]


def test_zero_value_gift_line_is_kept() -> None:
    order = build_order_json(16, [("TOTE", 0, "0.2", 1500), ("TEE", 2000, "0.2")])
    mapped = _map(order)
    assert _by_sku(mapped)["TOTE"] == (0, 0, 0)
    assert len(mapped.to_orderwise().order_lines) == 2


def test_units_with_different_item_reductions_make_separate_lines() -> None:
    items: list[ItemSpec] = [
        ("TEE", 2000, "0.2"),
        ("TEE", 1500, "0.2", 2000),
        ("TEE", 2000, "0.2"),
    ]
    mapped = _map(build_order_json(17, items))
    assert [(x.sku, x.unit_gross, x.quantity, x.key) for x in mapped.lines] == [
        ("TEE", 2000, 2, 1700),
        ("TEE", 1500, 1, 1701),
    ]


def test_exempt_service_takes_no_delivery_share() -> None:
    cfg = MappingConfig(tax_code_overrides={"WARRANTY": "T2"}, non_deliverable_skus=["WARRANTY"])
    order = build_order_json(18, [("TV", 50000, "0.2"), ("WARRANTY", 9900, "0")], delivery=999)
    mapped = OrderMapper(cfg).map(order)
    assert {x.sku: x.tax_code for x in mapped.lines} == {"TV": "T1", "WARRANTY": "T2"}
    assert [(p.tax_code, p.gross) for p in mapped.shipping] == [("T1", 999)]


def test_only_services_delivery_keeps_its_own_rate() -> None:
    cfg = MappingConfig(non_deliverable_skus=["GIFTWRAP"])
    order = build_order_json(19, [("GIFTWRAP", 300, "0.2")], delivery=500, delivery_rate="0.05")
    mapped = OrderMapper(cfg).map(order)
    assert [(p.tax_code, p.gross, p.vat) for p in mapped.shipping] == [("T5", 500, 24)]


def test_free_goods_with_shipping_fall_back_to_highest_rate() -> None:
    order = build_order_json(
        21, [("FREE-A", 0, "0.05", 500), ("FREE-B", 0, "0.2", 500)], delivery=300
    )
    mapped = _map(order)
    assert [(p.tax_code, p.gross, p.vat) for p in mapped.shipping] == [("T1", 300, 50)]


def test_shuffled_items_map_identically() -> None:
    items = [("A", 1234, "0.2"), ("B", 777, "0.05"), ("A", 1234, "0.2"), ("C", 50, "0")]
    order = build_order_json(22, items, reductions=[999], delivery=395)
    expected = _map(order)
    rng = random.Random(7)
    for _ in range(5):
        shuffled = dict(order, items=rng.sample(order["items"], len(order["items"])))
        assert _map(shuffled) == expected


def test_the_worked_example_of_the_mapping_guide() -> None:
    """docs/guides/mapping.md: a 20 %/0 % basket, a voucher and delivery, to the VAT return."""
    order = make_order(
        40100,
        [("TEE-ADULT-M", 2400, 1, "0.20"), ("KIDS-COAT-8Y", 2450, 1, "0")],
        shipping=495,
        voucher=500,
        voucher_code="SPRING5",
    )
    assert order["cost"]["withTax"] == 4845
    mapped = OrderMapper().map(order)
    assert [(x.sku, x.discount, x.gross, x.net, x.vat) for x in mapped.lines] == [
        ("TEE-ADULT-M", 247, 2153, 1794, 359),
        ("KIDS-COAT-8Y", 253, 2197, 2197, 0),
    ]
    assert [(p.tax_code, p.gross, p.net, p.vat) for p in mapped.shipping] == [
        ("T0", 250, 250, 0),
        ("T1", 245, 204, 41),
    ]
    assert (mapped.total_gross, mapped.total_net, mapped.total_vat) == (4845, 4445, 400)
    wire = mapped.to_orderwise().to_wire()
    assert [(x["variantCode"], x["itemGross"], x["taxCode"]) for x in wire["orderLines"]] == [
        ("TEE-ADULT-M", 21.53, "T1"),
        ("KIDS-COAT-8Y", 21.97, "T0"),
        ("CARRIAGE", 2.5, "T0"),
        ("CARRIAGE", 2.45, "T1"),
    ]
    header = wire["orderHeader"]
    assert (header["deliveryGross"], header["orderGross"], header["orderNet"]) == (0, 48.45, 44.45)
    assert header["orderTax"] == 4 and header["amountPaid"] == 48.45
    # booked the 0.1.0 way: the whole delivery under the larger part's code, T0
    old = OrderMapper(MappingConfig(delivery_booking="header")).map(order).to_orderwise()
    assert old.order_header.delivery_tax_code == "T0"
