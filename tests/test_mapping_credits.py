"""Credits for returned or cancelled units (P13, cumulative-difference rule)."""

from __future__ import annotations

import pytest

from scayle_orderwise.mapping import (
    OrderMapper,
    credit_for_items,
    cumulative_share,
    full_credit,
    refund_share,
)
from scayle_orderwise.testing.strategies import build_order_json


def test_cumulative_share_rounds_half_up_both_signs() -> None:
    assert cumulative_share(1997, 3, 1) == 666  # 665.67
    assert cumulative_share(1997, 3, 2) == 1331  # 1331.33
    assert cumulative_share(5, 2, 1) == 3  # 2.5 -> 3
    assert cumulative_share(-5, 2, 1) == -3  # mirror
    assert cumulative_share(1997, 3, 3) == 1997
    assert cumulative_share(1997, 3, 0) == 0


def test_refund_share_sequence_adds_up() -> None:
    shares = [refund_share(1997, 3, j, 1) for j in range(3)]
    assert shares == [666, 665, 666]
    assert sum(shares) == 1997


@pytest.mark.parametrize(
    ("quantity", "already", "units"), [(3, 2, 2), (3, -1, 1), (3, 0, -1), (0, 0, 0)]
)
def test_refund_share_rejects_impossible_counts(quantity: int, already: int, units: int) -> None:
    with pytest.raises(ValueError):
        refund_share(100, quantity, already, units)


def test_credit_groups_units_by_line() -> None:
    mapped = OrderMapper().map(
        build_order_json(
            51, [("A", 999, "0.2"), ("B", 2000, "0.05"), ("A", 999, "0.2")], reductions=[500]
        )
    )
    note = credit_for_items(mapped, [5102, 5101, 5100])
    assert [(c.sku, c.quantity, c.item_ids) for c in note.lines] == [
        ("A", 2, (5100, 5102)),
        ("B", 1, (5101,)),
    ]
    for credit, line in zip(note.lines, mapped.lines, strict=True):
        assert (credit.gross, credit.vat, credit.net) == (-line.gross, -line.vat, -line.net)
    assert note.shipping == ()
    assert note.external_reference == "SCAYLE-51" and note.currency == "GBP"


def test_unknown_or_repeated_items_are_refused() -> None:
    mapped = OrderMapper().map(build_order_json(52, [("A", 999, "0.2")] * 2))
    with pytest.raises(ValueError, match="not part of order"):
        credit_for_items(mapped, [999])
    with pytest.raises(ValueError, match="twice"):
        credit_for_items(mapped, [5200, 5200])
    with pytest.raises(ValueError, match="twice"):
        credit_for_items(mapped, [5200], already_credited=[5200])


def test_full_credit_negates_the_order() -> None:
    mapped = OrderMapper().map(
        build_order_json(
            53,
            [("A", 999, "0.2"), ("A", 999, "0.2"), ("B", 1250, "0")],
            reductions=[700],
            delivery=495,
        )
    )
    note = full_credit(mapped)
    assert (note.total_gross, note.total_vat, note.total_net) == (
        -mapped.total_gross,
        -mapped.total_vat,
        -mapped.total_net,
    )
    assert [(p.tax_code, -p.gross, -p.vat) for p in note.shipping] == [
        (p.tax_code, p.gross, p.vat) for p in mapped.shipping
    ]
