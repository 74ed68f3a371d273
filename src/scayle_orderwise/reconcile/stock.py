"""Compare the sellable stock OrderWise says SCAYLE should show with what SCAYLE shows.

``expected`` rows come from OrderWise (free stock after buffers, per SKU and warehouse); ``actual``
rows from SCAYLE (``None`` when SCAYLE holds no stock record). Memory is O(expected rows): the
expected side is indexed, the actual side streamed. A catalogue, unlike a month of orders, fits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from .reasons import StockReason

__all__ = ["StockReport", "StockRow", "StockSummary", "reconcile_stock_levels"]

StockKey = tuple[str, "str | None"]


@attrs.frozen(kw_only=True)
class StockRow:
    """One stock figure that does not agree. ``difference`` is ``actual - expected``."""

    sku: str
    warehouse: str | None
    expected: int | None
    actual: int | None
    reason: StockReason = attrs.field(converter=StockReason)

    @property
    def difference(self) -> int | None:
        """``actual - expected`` (``actual`` missing counts as 0); ``None`` without ``expected``."""
        if self.expected is None:
            return None
        return (self.actual or 0) - self.expected

    @property
    def action(self) -> str:
        """What operations should do next."""
        return STOCK_ACTIONS[self.reason]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "sku": self.sku,
            "warehouse": self.warehouse,
            "expected": self.expected,
            "actual": self.actual,
            "difference": self.difference,
            "reason": str(self.reason),
            "action": self.action,
        }


STOCK_ACTIONS: dict[StockReason, str] = {
    StockReason.DRIFT: (
        "Look for stock changed directly in SCAYLE, another system writing stock, or a stalled "
        "stock flow. Running the stock sync again does not repair it (only changes of OrderWise's "
        "figure are sent); the difference goes when OrderWise's stock for the product changes. If "
        "it must be corrected now, ask the integration team."
    ),
    StockReason.MISSING_IN_SHOP: (
        "Check that the product exists in SCAYLE with the same SKU and that the warehouse is "
        "attached to the shop; the figure is then sent the next time OrderWise's stock for the "
        "product changes."
    ),
    StockReason.UNKNOWN_IN_ERP: (
        "Check the warehouse mapping with the integration team, or set the SCAYLE stock to zero "
        "at once: otherwise the shop can sell what the warehouse cannot ship."
    ),
}
STOCK_TITLES: dict[StockReason, str] = {
    StockReason.DRIFT: "Stock differs",
    StockReason.MISSING_IN_SHOP: "No stock record in SCAYLE",
    StockReason.UNKNOWN_IN_ERP: "Stock in SCAYLE for a SKU unknown to OrderWise",
}


@attrs.define
class StockSummary:
    """Counts of one stock comparison."""

    expected_rows: int = 0
    actual_rows: int = 0
    in_sync: int = 0
    by_reason: dict[str, int] = attrs.Factory(dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "expected_rows": self.expected_rows,
            "actual_rows": self.actual_rows,
            "in_sync": self.in_sync,
            "by_reason": {r.value: self.by_reason.get(r.value, 0) for r in StockReason},
        }


@attrs.define
class StockReport:
    """The outcome of :func:`reconcile_stock_levels`: rows sorted by SKU, warehouse and reason."""

    summary: StockSummary = attrs.Factory(StockSummary)
    rows: list[StockRow] = attrs.Factory(list)

    @property
    def ok(self) -> bool:
        """True when every figure agrees."""
        return not self.rows

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "kind": "stock",
            "summary": self.summary.to_dict(),
            "rows": [row.to_dict() for row in self.rows],
        }


def _check(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {value!r}")


def reconcile_stock_levels(
    expected: Iterable[tuple[str, str | None, int]],
    actual: Iterable[tuple[str, str | None, int | None]],
    *,
    tolerance: int = 0,
) -> StockReport:
    """Compare ``(sku, warehouse, expected_sellable)`` with ``(sku, warehouse, actual)`` rows.

    Reasons: ``drift`` (both present, ``|actual - expected| > tolerance``), ``missing_in_shop``
    (expected but SCAYLE has no row or ``None``), ``unknown_in_erp`` (SCAYLE shows a non-zero
    figure for a SKU and warehouse OrderWise does not list; a zero or missing figure there is
    harmless and not reported). SKUs are compared after trimming spaces; a repeated key on the
    expected side raises ``ValueError``.
    """
    summary = StockSummary()
    index: dict[StockKey, int] = {}
    for sku, warehouse, qty in expected:
        _check(qty, f"expected stock of {sku!r}")
        key = (sku.strip(), warehouse)
        if key in index:
            raise ValueError(f"expected stock lists {key[0]!r} in warehouse {warehouse!r} twice")
        index[key] = qty
        summary.expected_rows += 1
    rows: list[StockRow] = []
    seen: set[StockKey] = set()
    for sku, warehouse, have in actual:
        summary.actual_rows += 1
        if have is not None:
            _check(have, f"actual stock of {sku!r}")
        key = (sku.strip(), warehouse)
        if key in seen:
            continue
        seen.add(key)
        want = index.pop(key, None)
        if want is None:
            if have:
                rows.append(StockRow(**_kw(key, None, have, StockReason.UNKNOWN_IN_ERP)))
        elif have is None:
            rows.append(StockRow(**_kw(key, want, None, StockReason.MISSING_IN_SHOP)))
        elif abs(have - want) > tolerance:
            rows.append(StockRow(**_kw(key, want, have, StockReason.DRIFT)))
        else:
            summary.in_sync += 1
    for key, want in index.items():
        rows.append(StockRow(**_kw(key, want, None, StockReason.MISSING_IN_SHOP)))
    rows.sort(key=lambda r: (r.sku, r.warehouse or "", r.reason.value))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.reason.value] = counts.get(row.reason.value, 0) + 1
    summary.by_reason = counts
    return StockReport(summary=summary, rows=rows)


def _kw(key: StockKey, expected: int | None, actual: int | None, reason: StockReason) -> Any:
    return {
        "sku": key[0],
        "warehouse": key[1],
        "expected": expected,
        "actual": actual,
        "reason": reason,
    }
