"""Order reconciliation: planted discrepancies, explained rounding, streaming and bounded memory."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Iterator, Sequence
from decimal import Decimal
from fractions import Fraction

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scayle_orderwise.mapping import OrderMapper
from scayle_orderwise.money import Money, round_half_up, split_gross
from scayle_orderwise.reconcile import (
    REASONS,
    Discrepancy,
    ErpOrderSummary,
    LineSummary,
    Reason,
    ReconciliationException,
    ShopOrderSummary,
    Tier,
    Tolerance,
    UnsortedInputError,
    reconcile_orders,
)
from scayle_orderwise.scayle.models import Order
from scayle_orderwise.testing.strategies import scayle_orders, strategy_mapping_config

RATES = {"T1": Decimal("0.20"), "T5": Decimal("0.05"), "T0": Decimal("0")}

Spec = tuple[str, str, int, int]  # key, tax code, gross, quantity


def lines_of(specs: Sequence[Spec]) -> list[LineSummary]:
    return [LineSummary.from_gross(k, code, g, RATES[code], q) for k, code, g, q in specs]


def shop_order(
    ref: str,
    specs: Sequence[Spec] = (("SKU-A", "T1", 2400, 1),),
    *,
    shipping: Sequence[Spec] = (),
    discount: int = 0,
    gift_card: int = 0,
    unused_voucher: int = 0,
    status: str = "payment_reserved",
    currency: str = "GBP",
    with_lines: bool = True,
) -> ShopOrderSummary:
    goods = lines_of(specs)
    ship = lines_of([(f"shipping|{code}", code, g, q) for _k, code, g, q in shipping])
    everything = goods + ship
    return ShopOrderSummary(
        reference=ref,
        order_id=f"S{ref}",
        currency=currency,
        gross=sum(x.gross for x in everything),
        vat=sum(x.vat for x in everything),
        shipping_gross=sum(x.gross for x in ship),
        shipping_vat=sum(x.vat for x in ship),
        discount=discount,
        gift_card=gift_card,
        unused_voucher=unused_voucher,
        status=status,
        lines=everything if with_lines else (),
    )


def erp_of(
    shop: ShopOrderSummary, *, with_lines: bool = True, **changes: object
) -> ErpOrderSummary:
    """The OrderWise order that books ``shop`` faithfully, then ``changes`` applied."""
    erp = ErpOrderSummary(
        reference=shop.reference,
        order_id=f"OW-{shop.reference}",
        order_number=f"SO{shop.reference}",
        currency=shop.currency,
        gross=shop.gross,
        vat=shop.vat,
        net=shop.gross - shop.vat,
        shipping_gross=shop.shipping_gross,
        shipping_vat=shop.shipping_vat,
        discount=shop.discount,
        status="awaiting_despatch",
        lines=shop.lines if with_lines else (),
    )
    if "gross" in changes or "vat" in changes:
        g = int(changes.get("gross", erp.gross))  # type: ignore[call-overload]
        v = int(changes.get("vat", erp.vat))  # type: ignore[call-overload]
        changes.setdefault("net", g - v)
    return attrs.evolve(erp, **changes)  # type: ignore[arg-type]


def only(report_exceptions: Sequence[Discrepancy], ref: str) -> list[Discrepancy]:
    return [e for e in report_exceptions if e.reference == ref]


def reasons_of(exceptions: Sequence[Discrepancy], ref: str) -> list[Reason]:
    return [e.reason for e in only(exceptions, ref)]


# --------------------------------------------------------------------------- clean and round trip


def test_identical_orders_give_no_exception_and_count_as_clean() -> None:
    shops = [
        shop_order("A"),
        shop_order("B", [("X", "T1", 999, 1), ("Y", "T0", 1250, 1)], shipping=[("", "T1", 495, 1)]),
    ]
    report = reconcile_orders(shops, [erp_of(s) for s in reversed(shops)])
    assert report.exceptions == []
    assert report.summary.clean == 2
    assert report.summary.matched == 2
    assert report.ok


line_specs = st.lists(
    st.tuples(
        st.sampled_from(["T1", "T5", "T0"]),
        st.integers(min_value=0, max_value=200_000),
        st.integers(min_value=1, max_value=9),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(
    specs=line_specs,
    ship=st.integers(min_value=0, max_value=2_000),
    discount=st.integers(min_value=0, max_value=5_000),
    gift_card=st.integers(min_value=0, max_value=5_000),
    with_lines=st.booleans(),
    status=st.sampled_from(["payment_reserved", "invoice_completed", "cancellation_completed"]),
)
def test_round_trip_identical_figures_report_zero_variance(
    specs: list[tuple[str, int, int]],
    ship: int,
    discount: int,
    gift_card: int,
    with_lines: bool,
    status: str,
) -> None:
    """money-policy §4.2 item 10: a shop order against its own booking has no reason codes."""
    goods = [(f"SKU{i}", code, g, q) for i, (code, g, q) in enumerate(specs)]
    shop = shop_order(
        "R1",
        goods,
        shipping=[("", "T1", ship, 1)] if ship else [],
        discount=discount,
        gift_card=gift_card,
        status=status,
        with_lines=with_lines,
    )
    erp_status = "cancelled" if status == "cancellation_completed" else "awaiting_despatch"
    report = reconcile_orders([shop], [erp_of(shop, with_lines=with_lines, status=erp_status)])
    assert report.exceptions == []
    assert report.summary.by_reason == {}
    assert report.summary.clean == 1
    assert report.summary.totals["GBP"].difference == 0


@settings(max_examples=200, deadline=None)
@given(specs=line_specs, erp_lines=st.booleans())
def test_document_level_vat_is_explained_within_derived_bound(
    specs: list[tuple[str, int, int]], erp_lines: bool
) -> None:
    """OrderWise rounding VAT once per tax code (not per line) is auto-accepted, never an error."""
    goods = [(f"SKU{i}", code, g, q) for i, (code, g, q) in enumerate(specs)]
    shop = shop_order("D1", goods)
    per_code: dict[str, int] = {}
    for line in shop.lines:
        per_code[line.tax_code] = per_code.get(line.tax_code, 0) + line.gross
    doc_vat = sum(
        round_half_up(Fraction(g) * Fraction(RATES[c]) / (1 + Fraction(RATES[c])))
        for c, g in per_code.items()
    )
    report = reconcile_orders([shop], [erp_of(shop, vat=doc_vat, with_lines=erp_lines)])
    if doc_vat == shop.vat:
        assert report.exceptions == []
    else:
        [exc] = report.exceptions
        assert exc.reason is Reason.ROUNDING_LINE_VS_DOC
        assert exc.tier is Tier.AUTO_ACCEPT
        assert exc.difference == doc_vat - shop.vat
        assert report.ok
        assert report.summary.explained == 1


# --------------------------------------------------------------------------- planted discrepancies


def test_vat_beyond_the_rounding_bound_is_a_blocking_tax_mismatch() -> None:
    shop = shop_order("V", [("A", "T1", 999, 1), ("B", "T1", 1999, 1)])  # bound ⌊3/2⌋ = 1
    within = reconcile_orders([shop], [erp_of(shop, vat=shop.vat - 1, with_lines=False)])
    assert [e.reason for e in within.exceptions] == [Reason.ROUNDING_LINE_VS_DOC]
    beyond = reconcile_orders([shop], [erp_of(shop, vat=shop.vat - 2, with_lines=False)])
    [exc] = beyond.exceptions
    assert exc.reason is Reason.TAX_MISMATCH
    assert exc.tier is Tier.BLOCK
    assert "bound of 1" in exc.detail
    assert not beyond.ok


def test_vat_difference_without_line_detail_cannot_be_explained() -> None:
    shop = shop_order("N", with_lines=False)
    report = reconcile_orders([shop], [erp_of(shop, vat=shop.vat + 1, with_lines=False)])
    assert [e.reason for e in report.exceptions] == [Reason.TAX_MISMATCH]


def test_erp_vat_from_net_lowers_gross_on_tie_lines_only() -> None:
    # 999 ≡ 3 (mod 6): a 2-dp net (832) re-grossed gives 998. 2400 is not a tie. The mechanism
    # is named only when the tolerance allows it (an OrderWise fed 2-dp nets by something else),
    # and money moved, so it is for review, never accepted automatically.
    fed_nets = Tolerance(erp_vat_from_net=True)
    shop = shop_order("F", [("A", "T1", 999, 1), ("B", "T1", 2400, 1)])
    a, b = shop.lines
    erp_lines = (attrs.evolve(a, gross=998, vat=166), b)
    erp = erp_of(shop, gross=shop.gross - 1, vat=shop.vat - 1, lines=erp_lines)
    [exc] = reconcile_orders([shop], [erp], tolerance=fed_nets).exceptions
    assert exc.reason is Reason.ERP_VAT_FROM_NET
    assert exc.tier is Tier.REVIEW
    assert exc.difference == -1
    # Without OrderWise line detail the bound is one minor unit per tie line.
    [exc2] = reconcile_orders(
        [shop], [erp_of(shop, gross=shop.gross - 1, with_lines=False)], tolerance=fed_nets
    ).exceptions
    assert exc2.reason is Reason.ERP_VAT_FROM_NET
    # Two units lower with a single tie line is beyond the bound: a real difference.
    [exc3] = reconcile_orders(
        [shop], [erp_of(shop, gross=shop.gross - 2, with_lines=False)], tolerance=fed_nets
    ).exceptions
    assert exc3.reason is Reason.TOTAL_MISMATCH
    assert exc3.tier is Tier.BLOCK
    # The lowered line must be the tie one: lowering the 24.00 line is not this mechanism.
    bad_lines = (a, attrs.evolve(b, gross=2399, vat=400))
    [exc4] = reconcile_orders(
        [shop], [erp_of(shop, gross=shop.gross - 1, lines=bad_lines)], tolerance=fed_nets
    ).exceptions
    assert exc4.reason is Reason.TOTAL_MISMATCH
    # By default (OrderWise fed by this library: gross tolerance 0) it is money that moved.
    report = reconcile_orders([shop], [erp])
    assert [(e.reason, e.tier) for e in report.exceptions] == [(Reason.TOTAL_MISMATCH, Tier.BLOCK)]


def test_tie_rounded_the_other_way_is_tie_rounding_mode() -> None:
    shop = shop_order("T", [("A", "T1", 999, 1), ("B", "T1", 495, 1)])
    a, b = shop.lines
    assert (a.vat, b.vat) == (167, 83)  # half-up (E03, E10)
    erp_lines = (attrs.evolve(a, vat=166), attrs.evolve(b, vat=82))
    [exc] = reconcile_orders([shop], [erp_of(shop, vat=shop.vat - 2, lines=erp_lines)]).exceptions
    assert exc.reason is Reason.TIE_ROUNDING_MODE
    assert exc.tier is Tier.AUTO_ACCEPT
    # A one-penny VAT gap on a line that is not a tie is not this mechanism.
    plain = shop_order("T2", [("A", "T1", 1000, 1), ("B", "T1", 2000, 1)])
    c, d = plain.lines
    off_lines = (attrs.evolve(c, vat=c.vat - 1), d)
    [exc2] = reconcile_orders(
        [plain], [erp_of(plain, vat=plain.vat - 1, lines=off_lines)]
    ).exceptions
    assert exc2.reason is Reason.ROUNDING_LINE_VS_DOC


def test_unit_versus_line_tax_within_quantity_bound() -> None:
    # 5 × 10.00 at 20%: per line 5000/6 = 833.33 → 833; per unit 166.67 → 167, × 5 = 835.
    shop = shop_order("U", [("A", "T1", 5000, 5)])
    [a] = shop.lines
    erp = erp_of(shop, vat=835, lines=(attrs.evolve(a, vat=835),))
    [exc] = reconcile_orders([shop], [erp]).exceptions
    assert exc.reason is Reason.UNIT_VS_LINE_TAX
    assert exc.tier is Tier.AUTO_ACCEPT
    # Beyond ⌊(q+1)/2⌋ = 3 (and beyond the document bound of 1): a tax mismatch.
    erp_far = erp_of(shop, vat=837, lines=(attrs.evolve(a, vat=837),))
    [far] = reconcile_orders([shop], [erp_far]).exceptions
    assert far.reason is Reason.TAX_MISMATCH


def test_shipping_vat_treatment_is_review_only_when_configured() -> None:
    # E04: 4.95 shipping apportioned over 20% and 0% goods; OrderWise taxed it all at 20%.
    shop = shop_order(
        "SV",
        [("TSHIRT", "T1", 2400, 1), ("BOOK", "T0", 2249, 1)],
        shipping=[("", "T1", 256, 1), ("", "T0", 239, 1)],
    )
    flat_vat = split_gross(495, "0.20")[1]
    erp = erp_of(
        shop,
        vat=shop.vat - shop.shipping_vat + flat_vat,  # type: ignore[operator]
        shipping_vat=flat_vat,
        with_lines=False,
    )
    # Unless the delivery is booked in the header under one code, this is wrong VAT.
    [wrong] = reconcile_orders([shop], [erp]).exceptions
    assert (wrong.reason, wrong.tier, wrong.difference) == (
        Reason.TAX_MISMATCH,
        Tier.BLOCK,
        flat_vat - 43,
    )
    assert "over-declared" in wrong.detail
    # With delivery_booking = "header", exactly the header's VAT is the configured treatment.
    header = attrs.evolve(shop, header_shipping_vat=flat_vat)
    [exc] = reconcile_orders([header], [erp]).exceptions
    assert exc.reason is Reason.SHIPPING_VAT_TREATMENT
    assert exc.tier is Tier.REVIEW
    assert exc.difference == flat_vat - 43
    assert "delivery_booking = 'header'" in exc.detail
    # Any other delivery VAT is still wrong.
    other = attrs.evolve(erp, vat=erp.vat - 1, shipping_vat=flat_vat - 1, net=erp.net + 1)  # type: ignore[operator]
    assert reconcile_orders([header], [other]).exceptions[0].reason is Reason.TAX_MISMATCH


def test_half_penny_delivery_rounded_the_other_way_is_tie_rounding() -> None:
    # 4.95 at 20 % is a tie: VAT 0.825 -> 0.83; an OrderWise rounding the net books 0.82.
    shop = shop_order("ST2", [("A", "T1", 2400, 1)], shipping=[("", "T1", 495, 1)])
    shop = attrs.evolve(shop, shipping_lines=[x for x in shop.lines if x.key.startswith("ship")])
    erp = erp_of(shop, vat=shop.vat - 1, shipping_vat=82, with_lines=False)
    [exc] = reconcile_orders([shop], [erp]).exceptions
    assert (exc.reason, exc.tier, exc.difference) == (
        Reason.TIE_ROUNDING_MODE,
        Tier.AUTO_ACCEPT,
        -1,
    )
    assert "at most 1 minor unit per part" in exc.detail


def test_gift_card_booked_as_discount() -> None:
    # E15: £60 coat, £20 paid by gift card. Booked as a discount, OrderWise shows £40 and £6.67 VAT.
    shop = shop_order("GC", [("COAT", "T1", 6000, 1)], gift_card=2000)
    erp = erp_of(shop, gross=4000, vat=667, discount=2000, with_lines=False)
    [exc] = reconcile_orders([shop], [erp]).exceptions
    assert exc.reason is Reason.GIFT_CARD_AS_DISCOUNT
    assert exc.tier is Tier.REVIEW
    assert (exc.shop_amount, exc.erp_amount, exc.difference) == (6000, 4000, -2000)


def test_voucher_excess_pushed_onto_shipping() -> None:
    # E10: £30 item, £4.95 delivery, £50 goods-only voucher: applied 30.00, unused 20.00.
    shop = shop_order(
        "VX",
        [("ITEM", "T1", 0, 1)],
        shipping=[("", "T1", 495, 1)],
        discount=3000,
        unused_voucher=2000,
    )
    erp = erp_of(shop, gross=0, vat=0, discount=3495, with_lines=False)
    [exc] = reconcile_orders([shop], [erp]).exceptions
    assert exc.reason is Reason.VOUCHER_EXCESS
    assert exc.tier is Tier.REVIEW


def test_shipping_discount_and_total_mismatches() -> None:
    shop = shop_order("M", [("A", "T1", 2400, 1)], shipping=[("", "T1", 495, 1)], discount=500)
    ship = erp_of(shop, gross=shop.gross + 100, shipping_gross=595, with_lines=False)
    disc = erp_of(shop, gross=shop.gross - 100, discount=600, with_lines=False)
    total = erp_of(shop, gross=shop.gross + 7, with_lines=False)
    got = {
        name: reconcile_orders([shop], [erp]).exceptions
        for name, erp in {"ship": ship, "disc": disc, "total": total}.items()
    }
    assert [e.reason for e in got["ship"]] == [Reason.SHIPPING_MISMATCH]
    assert (got["ship"][0].shop_amount, got["ship"][0].erp_amount) == (495, 595)
    assert got["ship"][0].tier is Tier.BLOCK
    assert [e.reason for e in got["disc"]] == [Reason.DISCOUNT_MISMATCH]
    assert got["disc"][0].difference == 100
    assert [e.reason for e in got["total"]] == [Reason.TOTAL_MISMATCH]
    assert got["total"][0].difference == 7


def test_components_moved_with_equal_total_are_review() -> None:
    shop = shop_order("EQ", [("A", "T1", 2400, 1)], shipping=[("", "T1", 495, 1)])
    erp = erp_of(shop, shipping_gross=395, with_lines=False)
    [exc] = reconcile_orders([shop], [erp]).exceptions
    assert exc.reason is Reason.SHIPPING_MISMATCH
    assert exc.tier is Tier.REVIEW


def test_voucher_spread_over_other_rates_and_price_source() -> None:
    shop = shop_order("VA", [("A", "T1", 1000, 1), ("B", "T0", 1000, 1)], discount=400)
    a, _b = shop.lines
    moved = (
        LineSummary.from_gross("A", "T1", 1200, "0.2"),
        LineSummary.from_gross("B", "T0", 800, "0"),
    )
    erp = erp_of(shop, vat=sum(x.vat for x in moved), lines=moved)
    [exc] = reconcile_orders([shop], [erp]).exceptions
    assert exc.reason is Reason.VOUCHER_ALLOCATION_DIFFERS
    assert exc.tier is Tier.REVIEW
    no_voucher = attrs.evolve(shop, discount=0)
    [exc2] = reconcile_orders([no_voucher], [attrs.evolve(erp, discount=0)]).exceptions
    assert exc2.reason is Reason.PRICE_SOURCE
    assert exc2.tier is Tier.BLOCK
    assert a.key in exc2.detail


def test_line_set_mismatch_blocks() -> None:
    shop = shop_order("LS", [("A", "T1", 1000, 1), ("B", "T1", 500, 2)])
    a, b = shop.lines
    missing = erp_of(shop, gross=1000, lines=(a,))
    [exc] = reconcile_orders([shop], [missing]).exceptions
    assert exc.reason is Reason.LINE_SET_MISMATCH
    assert exc.tier is Tier.BLOCK
    assert "not in OrderWise: B" in exc.detail
    qty = erp_of(shop, lines=(a, attrs.evolve(b, quantity=3)))
    [exc2] = reconcile_orders([shop], [qty]).exceptions
    assert exc2.reason is Reason.LINE_SET_MISMATCH
    assert "B 2→3" in exc2.detail


def test_currency_mismatch_blocks_and_amounts_are_not_netted() -> None:
    shop = shop_order("C")
    erp = erp_of(shop, currency="EUR")
    report = reconcile_orders([shop], [erp])
    [exc] = report.exceptions
    assert exc.reason is Reason.CURRENCY_MISMATCH
    assert exc.tier is Tier.BLOCK
    # the amounts are shown, each in its own currency, never netted
    assert (exc.shop_money, exc.erp_money) == (Money(2400, "GBP"), Money(2400, "EUR"))
    assert exc.difference is None and exc.gross_difference == 0
    assert report.summary.totals == {} and report.summary.not_comparable == 1


@pytest.mark.parametrize(
    ("shop_status", "erp_status", "mismatch"),
    [
        ("cancellation_completed", "awaiting_despatch", True),
        ("cancellation_completed", "DESPATCHED", "cancelled_after_despatch"),
        ("payment_reserved", "cancelled", True),
        ("cancellation_pending", "Cancelled", False),
        ("cancellation_completed", "cancelled", False),
        ("payment_reserved", "awaiting_despatch", False),
        ("invoice_completed", "despatched", False),
    ],
)
def test_status_mismatch(shop_status: str, erp_status: str, mismatch: bool | str) -> None:
    shop = shop_order("ST", status=shop_status)
    report = reconcile_orders([shop], [erp_of(shop, status=erp_status)])
    if mismatch == "cancelled_after_despatch":
        # the customer may be refunded for goods that left the warehouse: its own reason, block
        [exc] = report.exceptions
        assert (exc.reason, exc.tier) == (Reason.CANCELLED_AFTER_DESPATCH, Tier.BLOCK)
        assert (exc.shop_amount, exc.erp_amount) == (shop.gross, shop.gross)
    else:
        expected = [Reason.STATUS_MISMATCH] if mismatch else []
        assert [e.reason for e in report.exceptions] == expected
    if mismatch is True:
        assert report.exceptions[0].tier is Tier.REVIEW
    # A custom check replaces the default; None switches status comparison off.
    off = reconcile_orders([shop], [erp_of(shop, status=erp_status)], status_check=None)
    assert off.exceptions == []


def test_status_mismatch_is_reported_alongside_amount_differences() -> None:
    shop = shop_order("SA", status="cancellation_completed")
    report = reconcile_orders([shop], [erp_of(shop, gross=shop.gross + 50, with_lines=False)])
    assert sorted(e.reason for e in report.exceptions) == sorted(
        [Reason.STATUS_MISMATCH, Reason.TOTAL_MISMATCH]
    )


def test_missing_unknown_and_duplicates() -> None:
    a, b, c, d = (shop_order(r) for r in ("A", "B", "C", "D"))
    cancelled = shop_order("E", status="cancellation_completed")
    erps = [
        erp_of(a),
        erp_of(b),
        erp_of(b, order_id="OW-B2", order_number="SOB2"),  # duplicate
        erp_of(c),
        erp_of(c, order_id="OW-C2", status="cancelled"),  # duplicate already cancelled: resolved
        erp_of(shop_order("Z")),  # unknown in shop
    ]
    report = reconcile_orders([a, b, c, d, cancelled], erps)
    exc = report.exceptions
    assert reasons_of(exc, "A") == []
    assert reasons_of(exc, "B") == [Reason.DUPLICATE_IN_ERP]
    assert only(exc, "B")[0].erp_amount == 2 * b.gross
    assert "SOB2" in only(exc, "B")[0].detail
    assert reasons_of(exc, "C") == []
    assert reasons_of(exc, "D") == [Reason.MISSING_IN_ERP]
    assert only(exc, "D")[0].tier is Tier.BLOCK
    assert reasons_of(exc, "E") == []  # cancelled before it reached OrderWise
    assert reasons_of(exc, "Z") == [Reason.UNKNOWN_IN_SHOP]
    s = report.summary
    assert (s.shop_orders, s.erp_orders, s.matched, s.clean) == (5, 6, 3, 2)
    assert s.cancelled_not_in_erp == 1
    assert s.by_reason == {"duplicate_in_erp": 1, "missing_in_erp": 1, "unknown_in_shop": 1}
    assert s.by_tier == {"block": 2, "review": 1}


def test_duplicate_shop_reference_is_flagged() -> None:
    a = shop_order("A")
    report = reconcile_orders([a, attrs.evolve(a, order_id="other")], [erp_of(a)])
    assert [e.reason for e in report.exceptions] == [Reason.DUPLICATE_IN_SHOP]


def test_unexplained_allowance_and_percent_discount_basis_are_opt_in() -> None:
    shop = shop_order("P", [("A", "T1", 1000, 1), ("B", "T1", 1000, 1)], discount=300)
    erp = erp_of(shop, gross=shop.gross - 1, discount=301, with_lines=False)
    assert [e.reason for e in reconcile_orders([shop], [erp]).exceptions] == [
        Reason.DISCOUNT_MISMATCH
    ]
    pct = reconcile_orders([shop], [erp], tolerance=Tolerance(percent_discount_basis=True))
    assert [(e.reason, e.tier) for e in pct.exceptions] == [
        (Reason.PERCENT_DISCOUNT_BASIS, Tier.REVIEW)  # money moved: never accepted automatically
    ]
    odd = erp_of(shop, gross=shop.gross + 1, with_lines=False)
    assert reconcile_orders([shop], [odd]).exceptions[0].reason is Reason.TOTAL_MISMATCH
    allowed = reconcile_orders([shop], [odd], tolerance=Tolerance(unexplained_allowance=1))
    assert [(e.reason, e.tier) for e in allowed.exceptions] == [(Reason.UNEXPLAINED, Tier.REVIEW)]


def test_erp_figures_that_do_not_add_up_are_a_tax_mismatch() -> None:
    shop = shop_order("I")
    erp = attrs.evolve(erp_of(shop), net=shop.gross - shop.vat + 5)
    assert [e.reason for e in reconcile_orders([shop], [erp]).exceptions] == [Reason.TAX_MISMATCH]


def test_every_reason_has_a_title_tier_and_action() -> None:
    assert set(REASONS) == set(Reason)
    for reason in Reason:
        assert reason.label and reason.action.endswith(".")
        exc = Discrepancy(reference="x", reason=reason, shop_amount=5, erp_amount=3)
        assert exc.tier is reason.tier and exc.action == reason.action
        assert exc.difference == -2
    assert ReconciliationException is Discrepancy
    assert Reason("rounding_line_vs_doc").tier is Tier.AUTO_ACCEPT


# --------------------------------------------------------------------------- a planted month


def planted_month(
    n: int, seed: int
) -> tuple[list[ShopOrderSummary], list[ErpOrderSummary], dict[str, Reason | None]]:
    rng = random.Random(seed)
    shops: list[ShopOrderSummary] = []
    erps: list[ErpOrderSummary] = []
    expected: dict[str, Reason | None] = {}
    plants = [
        None,
        None,
        None,
        Reason.MISSING_IN_ERP,
        Reason.UNKNOWN_IN_SHOP,
        Reason.DUPLICATE_IN_ERP,
        Reason.TOTAL_MISMATCH,
        Reason.TAX_MISMATCH,
        Reason.DISCOUNT_MISMATCH,
        Reason.SHIPPING_MISMATCH,
        Reason.CURRENCY_MISMATCH,
        Reason.STATUS_MISMATCH,
        Reason.GIFT_CARD_AS_DISCOUNT,
        Reason.ROUNDING_LINE_VS_DOC,
    ]
    for i in range(n):
        ref = f"ORD-{i:06d}"
        plant = plants[i % len(plants)]
        shop = shop_order(
            ref,
            [("A", "T1", rng.randrange(100, 9000), 1), ("B", "T1", rng.randrange(100, 9000), 1)],
            shipping=[("", "T1", 495, 1)],
            discount=100,
            gift_card=500 if plant is Reason.GIFT_CARD_AS_DISCOUNT else 0,
        )
        expected[ref] = plant
        if plant is Reason.UNKNOWN_IN_SHOP:
            erps.append(erp_of(shop))
            continue
        shops.append(shop)
        if plant is Reason.MISSING_IN_ERP:
            continue
        erp = erp_of(shop, with_lines=False)
        if plant is Reason.DUPLICATE_IN_ERP:
            erps.append(attrs.evolve(erp, order_id=f"{erp.order_id}-2"))
        elif plant is Reason.TOTAL_MISMATCH:
            erp = erp_of(shop, gross=shop.gross + 250, with_lines=False)
        elif plant is Reason.TAX_MISMATCH:
            erp = erp_of(shop, vat=shop.vat + 40, with_lines=False)
        elif plant is Reason.DISCOUNT_MISMATCH:
            erp = erp_of(shop, gross=shop.gross - 50, discount=150, with_lines=False)
        elif plant is Reason.SHIPPING_MISMATCH:
            erp = erp_of(shop, gross=shop.gross - 495, shipping_gross=0, with_lines=False)
        elif plant is Reason.CURRENCY_MISMATCH:
            erp = attrs.evolve(erp, currency="EUR")
        elif plant is Reason.STATUS_MISMATCH:
            erp = attrs.evolve(erp, status="cancelled")
        elif plant is Reason.GIFT_CARD_AS_DISCOUNT:
            erp = erp_of(
                shop, gross=shop.gross - 500, vat=shop.vat - 83, discount=600, with_lines=False
            )
        elif plant is Reason.ROUNDING_LINE_VS_DOC:
            erp = erp_of(shop, vat=shop.vat + 1, with_lines=False)
        erps.append(erp)
    return shops, erps, expected


@pytest.mark.parametrize("presorted", [True, False])
def test_planted_month_finds_every_plant_and_leaves_clean_orders_alone(presorted: bool) -> None:
    shops, erps, expected = planted_month(280, seed=7)
    if not presorted:
        random.Random(1).shuffle(shops)
        random.Random(2).shuffle(erps)
    report = reconcile_orders(shops, erps, presorted=presorted, chunk_size=37)
    found: dict[str, list[Reason]] = {}
    for exc in report.exceptions:
        found.setdefault(exc.reference, []).append(exc.reason)
    for ref, plant in expected.items():
        assert found.get(ref, []) == ([plant] if plant else []), ref
    assert report.summary.clean == sum(1 for p in expected.values() if p is None)


def test_unsorted_input_declared_presorted_raises_clearly() -> None:
    shops = [shop_order("B"), shop_order("A")]
    with pytest.raises(UnsortedInputError, match="not sorted by reference"):
        reconcile_orders(shops, [], presorted=True)


def test_external_sort_spills_and_matches_in_memory_result() -> None:
    shops, erps, _ = planted_month(150, seed=3)
    random.Random(5).shuffle(shops)
    random.Random(6).shuffle(erps)
    small = reconcile_orders(shops, erps, chunk_size=10)  # 15 spilled runs per side
    big = reconcile_orders(shops, erps, chunk_size=10_000)  # one chunk, no spill
    assert small.exceptions == big.exceptions
    assert small.summary == big.summary


class TaggedLine(LineSummary):
    """A user's subclass of ``LineSummary`` (travels through the external sort as is)."""


def test_external_sort_round_trips_summaries_with_lines_exactly() -> None:
    from scayle_orderwise.reconcile._streams import sorted_by_reference

    made = [
        ShopOrderSummary(
            reference=f"R{(i * 7) % 40:03d}",
            order_id=i,
            currency="GBP",
            gross=100 * i,
            vat=0,
            lines=[
                LineSummary("A", "T1", 100 * i, 0, 1 + i % 3, Fraction(1, 5) if i % 2 else None),
                *([TaggedLine("B", "T0", 0, 0, 1, "0")] if i % 5 == 0 else []),
            ],
        )
        for i in range(40)
    ]
    for chunk_size in (3, 1000):  # spilled runs, and one chunk in memory
        back = list(sorted_by_reference(made, ShopOrderSummary, chunk_size=chunk_size))
        assert back == sorted(made, key=lambda s: s.reference)
        assert [type(line) for s in back for line in s.lines] == [
            type(line) for s in sorted(made, key=lambda s: s.reference) for line in s.lines
        ]


def test_sink_receives_exceptions_and_report_keeps_counts_only() -> None:
    shops, erps, expected = planted_month(56, seed=1)
    seen: list[Discrepancy] = []
    report = reconcile_orders(shops, erps, sink=seen.append, keep_exceptions=False)
    assert report.exceptions == []
    assert len(seen) == report.summary.exceptions == sum(1 for p in expected.values() if p)
    dropped = reconcile_orders(shops, erps, keep_auto_accepted=False)
    assert all(e.tier is not Tier.AUTO_ACCEPT for e in dropped.exceptions)
    assert dropped.summary.by_tier["auto_accept"] == 4


def test_totals_per_currency() -> None:
    gbp = shop_order("G", [("A", "T1", 1000, 1)])
    eur = shop_order("H", [("A", "T1", 2000, 1)], currency="EUR")
    report = reconcile_orders([gbp, eur], [erp_of(gbp, gross=1100, with_lines=False), erp_of(eur)])
    totals = report.summary.totals
    assert (totals["GBP"].shop_gross, totals["GBP"].erp_gross, totals["GBP"].difference) == (
        1000,
        1100,
        100,
    )
    assert totals["EUR"].difference == 0


# --------------------------------------------------------------------------- bounded memory


def _pairs(n: int, every: int) -> tuple[Iterator[ShopOrderSummary], Iterator[ErpOrderSummary]]:
    def shops() -> Iterator[ShopOrderSummary]:
        for i in range(n):
            yield ShopOrderSummary(
                reference=f"R{i:08d}",
                order_id=str(i),
                currency="GBP",
                gross=2400 + i % 97,
                vat=400,
                status="payment_reserved",
            )

    def erps() -> Iterator[ErpOrderSummary]:
        for i in range(n):
            gross = 2400 + i % 97 + (1 if i % every == 0 else 0)
            yield ErpOrderSummary(
                reference=f"R{i:08d}",
                order_id=f"OW{i}",
                currency="GBP",
                gross=gross,
                vat=400,
                status="awaiting_despatch",
            )

    return shops(), erps()


@pytest.mark.parametrize(
    ("n", "presorted", "chunk_size", "limit_mb"),
    [
        # Loading 50k pairs of summaries would take ~35 MB; the merge join holds one pair.
        (50_000, True, 20_000, 10),
        # Unsorted input is sorted externally: ten spilled runs a side, never the whole month
        # (loading these 20k pairs would take ~14 MB).
        (20_000, False, 2_000, 8),
    ],
)
def test_pairs_stream_in_bounded_memory(
    n: int, presorted: bool, chunk_size: int, limit_mb: int
) -> None:
    every = 1_000
    shops, erps = _pairs(n, every)
    tracemalloc.start()
    try:
        report = reconcile_orders(shops, erps, presorted=presorted, chunk_size=chunk_size)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.summary.matched == n
    assert report.summary.by_reason == {"total_mismatch": n // every}
    assert report.summary.clean == n - n // every
    assert peak < limit_mb * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


# --------------------------------------------------------------------------- with the real mapper


@settings(max_examples=60, deadline=None)
@given(order_json=scayle_orders())
def test_round_trip_through_the_real_mapper_reports_zero_variance(
    order_json: dict[str, object],
) -> None:
    """money-policy §4.2.10: reconcile(shop order, map(shop order)) has no reason codes."""
    mapped = OrderMapper(strategy_mapping_config()).map(Order.model_validate(order_json))
    shop = ShopOrderSummary.from_mapped(mapped, order_id=mapped.order_id, status="payment_reserved")
    erp = ErpOrderSummary.from_mapped(mapped, order_id="OW1", status="awaiting_despatch")
    assert shop.gross == mapped.total_gross and shop.gift_card == mapped.gift_card_total
    report = reconcile_orders([shop], [erp])
    assert report.exceptions == []
    assert report.summary.clean == 1


@settings(max_examples=60, deadline=None)
@given(order_json=scayle_orders(currencies=("GBP",), rates=("0.2",), services=False))
def test_erp_deriving_gross_from_net_is_explained_on_real_orders(
    order_json: dict[str, object],
) -> None:
    """Simulate OrderWise re-grossing 2-dp nets (E17): only ERP_VAT_FROM_NET when the tolerance
    allows it, for review (money moved); VAT-only effects stay within the rounding bounds."""
    mapped = OrderMapper(strategy_mapping_config()).map(Order.model_validate(order_json))
    shop = ShopOrderSummary.from_mapped(mapped, order_id=mapped.order_id)
    regrossed = []
    for line in shop.lines:
        if line.rate is None:  # several mapped lines merged under one key: leave as booked
            regrossed.append(line)
            continue
        net = line.gross - line.vat
        vat = round_half_up(net * line.rate)
        regrossed.append(attrs.evolve(line, gross=net + vat, vat=vat))
    gross = sum(x.gross for x in regrossed)
    erp = attrs.evolve(
        ErpOrderSummary.from_mapped(mapped, order_id="OW1", status=""),
        gross=gross,
        vat=sum(x.vat for x in regrossed),
        net=None,
        shipping_gross=sum(x.gross for x in regrossed if x.key.startswith("shipping|")),
        shipping_vat=None,
        lines=tuple(regrossed),
    )
    report = reconcile_orders([shop], [erp], tolerance=Tolerance(erp_vat_from_net=True))
    if gross == shop.gross:
        assert all(e.tier is Tier.AUTO_ACCEPT for e in report.exceptions)
    else:
        assert [(e.reason, e.tier) for e in report.exceptions] == [
            (Reason.ERP_VAT_FROM_NET, Tier.REVIEW)
        ]


# --------------------------------------------------------------------------- review fixes


def test_one_penny_delivery_or_discount_gap_is_never_taken_for_vat_from_net() -> None:
    # 9.99 at 20 % is a half-penny tie, so VAT-from-net could explain -1; but the delivery
    # charge (or the discount) itself differs by that penny: a real difference, not rounding.
    fed_nets = Tolerance(erp_vat_from_net=True)
    shop = shop_order("P1", [("A", "T1", 999, 1)], shipping=[("", "T1", 500, 1)])
    lower_ship = erp_of(shop, gross=shop.gross - 1, shipping_gross=499, with_lines=False)
    [ship] = reconcile_orders([shop], [lower_ship], tolerance=fed_nets).exceptions
    assert (ship.reason, ship.tier, ship.difference) == (Reason.SHIPPING_MISMATCH, Tier.BLOCK, -1)
    discounted = shop_order(
        "P2", [("A", "T1", 999, 1)], shipping=[("", "T1", 500, 1)], discount=100
    )
    more_disc = erp_of(discounted, gross=discounted.gross - 1, discount=101, with_lines=False)
    [disc] = reconcile_orders([discounted], [more_disc], tolerance=fed_nets).exceptions
    assert (disc.reason, disc.tier, disc.difference) == (Reason.DISCOUNT_MISMATCH, Tier.BLOCK, 1)
    # The same gap with delivery and discount equal is still the named mechanism.
    same = erp_of(shop, gross=shop.gross - 1, with_lines=False)
    [ok] = reconcile_orders([shop], [same], tolerance=fed_nets).exceptions
    assert (ok.reason, ok.tier) == (Reason.ERP_VAT_FROM_NET, Tier.REVIEW)


def test_vat_from_net_with_lines_must_account_for_a_lower_delivery_charge() -> None:
    # 4.95 delivery at 20 % is a tie: re-grossed from its 2-dp net 4.12 it becomes 4.94.
    shop = shop_order("P3", [("A", "T1", 2400, 1)], shipping=[("", "T1", 495, 1)])
    goods, ship = shop.lines
    regrossed = (goods, attrs.evolve(ship, gross=494, vat=82))
    erp = erp_of(shop, gross=shop.gross - 1, vat=shop.vat - 1, shipping_gross=494, lines=regrossed)
    fed_nets = Tolerance(erp_vat_from_net=True)
    [exc] = reconcile_orders([shop], [erp], tolerance=fed_nets).exceptions
    assert (exc.reason, exc.tier) == (Reason.ERP_VAT_FROM_NET, Tier.REVIEW)
    # A goods tie line lowered, but the header says the delivery charge fell: not this mechanism.
    tie_shop = shop_order("P4", [("A", "T1", 999, 1)], shipping=[("", "T1", 500, 1)])
    a, s = tie_shop.lines
    lines = (attrs.evolve(a, gross=998, vat=166), s)
    odd = erp_of(tie_shop, gross=tie_shop.gross - 1, shipping_gross=499, lines=lines)
    [exc2] = reconcile_orders([tie_shop], [odd], tolerance=fed_nets).exceptions
    assert exc2.reason is Reason.SHIPPING_MISMATCH
    assert exc2.tier is Tier.BLOCK


def _moved(shop: ShopOrderSummary, moves: dict[str, int]) -> ErpOrderSummary:
    """``shop`` booked with each keyed line's VAT shifted (totals kept when the moves sum to 0)."""
    lines = tuple(attrs.evolve(x, vat=x.vat + moves.get(x.key, 0)) for x in shop.lines)
    return erp_of(shop, vat=sum(x.vat for x in lines), lines=lines)


def test_vat_moved_between_tax_codes_with_equal_totals_is_a_tax_mismatch() -> None:
    shop = shop_order("MV", [("A", "T1", 1200, 1), ("B", "T5", 2100, 1)])
    erp = _moved(shop, {"A": 10, "B": -10})
    assert erp.vat == shop.vat and erp.gross == shop.gross
    [exc] = reconcile_orders([shop], [erp]).exceptions
    assert (exc.reason, exc.tier) == (Reason.TAX_MISMATCH, Tier.BLOCK)
    assert (exc.shop_amount, exc.erp_amount, exc.difference) == (200, 210, 10)  # code T1
    assert "T1 +0.10 GBP" in exc.detail and "T5 -0.10 GBP" in exc.detail
    # Within an allowance it is unexplained (review), never silently clean.
    loose = reconcile_orders([shop], [erp], tolerance=Tolerance(unexplained_allowance=10))
    assert [(e.reason, e.tier) for e in loose.exceptions] == [(Reason.UNEXPLAINED, Tier.REVIEW)]
    # Without OrderWise lines nothing shows where the VAT sits: equal totals are clean.
    bare = erp_of(shop, with_lines=False)
    assert reconcile_orders([shop], [bare]).exceptions == []


def test_vat_moved_between_codes_within_the_per_code_bound_is_rounding() -> None:
    # One line per code: ⌊(1+1)/2⌋ = 1 per code, so a penny each way is line-vs-document rounding.
    shop = shop_order("MR", [("A", "T1", 1000, 1), ("B", "T5", 2000, 1)])
    [exc] = reconcile_orders([shop], [_moved(shop, {"A": 1, "B": -1})]).exceptions
    assert (exc.reason, exc.tier) == (Reason.ROUNDING_LINE_VS_DOC, Tier.AUTO_ACCEPT)
    assert exc.difference in (1, -1)
    # Two pennies each way is beyond it; so is one code beyond while another is within.
    [far] = reconcile_orders([shop], [_moved(shop, {"A": 2, "B": -2})]).exceptions
    assert (far.reason, far.tier) == (Reason.TAX_MISMATCH, Tier.BLOCK)
    three = shop_order("M3", [("A", "T1", 1000, 1), ("B", "T5", 2000, 1), ("C", "T5", 2000, 1)])
    [mixed] = reconcile_orders([three], [_moved(three, {"A": -2, "B": 1, "C": 1})]).exceptions
    assert mixed.reason is Reason.TAX_MISMATCH
    assert mixed.difference == -2 and "bound of 1 minor units for T1" in mixed.detail
    # Switched off in the tolerance: a penny moved is no longer explained.
    off = Tolerance(line_vs_doc=False)
    [strict] = reconcile_orders([shop], [_moved(shop, {"A": 1, "B": -1})], tolerance=off).exceptions
    assert strict.reason is Reason.TAX_MISMATCH


def test_vat_moved_within_one_tax_code_is_not_reported() -> None:
    # The VAT return is per code: lines of one code trading VAT leave every code's total equal.
    shop = shop_order("MS", [("A", "T1", 1200, 1), ("B", "T1", 2400, 1)])
    assert reconcile_orders([shop], [_moved(shop, {"A": 5, "B": -5})]).exceptions == []


def test_unit_vs_line_vat_moved_between_codes_is_explained() -> None:
    # 5 × 10.00 at 20 %: 833 per line, 835 per unit (+2 ≤ ⌊6/2⌋); 3 × 7.00 at 5 %: -2 is within
    # ⌊4/2⌋ = 2 of a three-unit line. Both lines hold several units: VAT per unit vs per line.
    shop = shop_order("MU", [("A", "T1", 5000, 5), ("B", "T5", 2100, 3)])
    [exc] = reconcile_orders([shop], [_moved(shop, {"A": 2, "B": -2})]).exceptions
    assert (exc.reason, exc.tier) == (Reason.UNIT_VS_LINE_TAX, Tier.AUTO_ACCEPT)


# --------------------------------------------------------------------------- answers a controller trusts


def test_a_line_booked_under_another_vat_code_is_a_vat_difference_for_finance() -> None:
    # T-shirt 24.00 booked at T0 instead of T1, same gross: 4.00 of VAT is at stake.
    shop = shop_order("C1", [("TEE|T1", "T1", 2400, 1), ("BOOK|T0", "T0", 1250, 1)])
    tee, book = shop.lines
    for key in ("TEE|T0", "TEE|T1"):  # keyed with the code (the connector) or without it
        moved = attrs.evolve(tee, key=key, tax_code="T0", vat=0)
        erp = erp_of(shop, vat=shop.vat - tee.vat, lines=(moved, book))
        [exc] = reconcile_orders([shop], [erp]).exceptions
        assert (exc.reason, exc.tier) == (Reason.TAX_MISMATCH, Tier.BLOCK)
        assert (exc.shop_amount, exc.erp_amount, exc.difference) == (400, 0, -400)
        assert exc.measure == "vat"
        assert "TEE" in exc.detail and "T1" in exc.detail and "T0" in exc.detail
        assert exc.action.startswith("Finance")


def test_standard_rated_delivery_booked_at_zero_blocks_as_under_declared_vat() -> None:
    shop = shop_order("C2", [("TEE", "T1", 2400, 1)], shipping=[("", "T1", 495, 1)])
    erp = erp_of(shop, vat=shop.vat - 83, shipping_vat=0, with_lines=False)
    [exc] = reconcile_orders([shop], [erp]).exceptions
    assert (exc.reason, exc.tier) == (Reason.TAX_MISMATCH, Tier.BLOCK)
    assert (exc.shop_amount, exc.erp_amount, exc.difference) == (83, 0, -83)
    assert exc.measure == "delivery_vat"
    assert "under-declared" in exc.detail


def test_a_penny_cut_on_a_half_penny_price_is_money_that_moved() -> None:
    # 19.95 at 20 % has an exact VAT of 3.325; 19.94 is what re-grossing a 2-dp net would give,
    # but with OrderWise fed by this library (gross tolerance 0) it is a real price cut.
    shop = shop_order("C3", [("A", "T1", 1995, 1)])
    (line,) = shop.lines
    cut = attrs.evolve(line, gross=1994, vat=332)
    erp = erp_of(shop, gross=1994, vat=332, lines=(cut,))
    [exc] = reconcile_orders([shop], [erp]).exceptions
    assert (exc.reason, exc.tier, exc.difference) == (Reason.TOTAL_MISMATCH, Tier.BLOCK, -1)
    assert "A" in exc.detail
    # Opting in to OrderWise re-deriving gross from 2-dp nets names the mechanism, for review.
    opted = reconcile_orders([shop], [erp], tolerance=Tolerance(erp_vat_from_net=True))
    [named] = opted.exceptions
    assert (named.reason, named.tier) == (Reason.ERP_VAT_FROM_NET, Tier.REVIEW)
