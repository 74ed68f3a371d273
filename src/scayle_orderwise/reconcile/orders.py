"""Reconcile SCAYLE orders against OrderWise orders, streaming, and explain small variances.

Orders are joined by reference. Each matched pair is compared (status, currency, lines, gross,
shipping, discount, VAT); every difference becomes a :class:`Discrepancy` with a :class:`Reason`,
a :class:`Tier` and the next action. Variances that a rounding mechanism of money-policy §3 explains
within its derived bound are reported with tier ``auto_accept``, not as errors.

Memory: both inputs are consumed as streams. With ``presorted=True`` (both sorted by reference,
checked as they are read) the join holds only the current reference of each side. Otherwise each
input is sorted externally (chunks of ``chunk_size`` sorted in memory, spilled to one temporary
SQLite file when there is more than one chunk, merged lazily; see :mod:`._streams`), so memory stays
O(chunk_size) whatever the month holds, at the cost of one write and one read of each summary.
The comparison of one pair is :mod:`.explain`; statuses are :mod:`.statuses`. The report keeps counts and the
exceptions only, never the clean orders; pass ``sink=`` (and ``keep_exceptions=False``) to stream
the exceptions out of huge runs too.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import attrs

from ..money import Money
from ._streams import UnsortedInputError, group_sorted, merge_join, sorted_by_reference
from .discrepancy import Discrepancy, ReconciliationException, Tolerance
from .explain import PairComparison
from .reasons import Reason, Tier
from .statuses import StatusCheck, default_status_check, is_erp_cancelled, is_shop_cancelled
from .summaries import ErpOrderSummary, ShopOrderSummary

__all__ = [
    "CurrencyTotals",
    "Discrepancy",
    "ReconciliationException",
    "ReconciliationReport",
    "ReconciliationSummary",
    "StatusCheck",
    "Tolerance",
    "UnsortedInputError",
    "default_status_check",
    "reconcile_orders",
]


@attrs.define
class CurrencyTotals:
    """Gross totals of one currency over the orders compared.

    Per reference: the (first) SCAYLE order and the live OrderWise orders (all of them when none
    is live); a SCAYLE order cancelled before it reached OrderWise and a pair in two currencies are
    left out. So the ``gross_difference`` of a report's exceptions adds up to :attr:`difference`.
    """

    shop_gross: int = 0
    erp_gross: int = 0

    @property
    def difference(self) -> int:
        """``erp_gross - shop_gross``."""
        return self.erp_gross - self.shop_gross


@attrs.define
class ReconciliationSummary:
    """Counts and totals of one reconciliation run.

    ``matched`` counts references present on both sides; ``clean`` those with no exception at
    all; ``explained`` those whose only exceptions are auto-accepted rounding variances;
    ``cancelled_not_in_erp`` shop orders cancelled before they reached OrderWise (not exceptions);
    ``not_comparable`` pairs in two currencies, left out of ``totals``. ``by_reason`` and
    ``by_tier`` count exceptions, kept or not.
    """

    shop_orders: int = 0
    erp_orders: int = 0
    matched: int = 0
    clean: int = 0
    explained: int = 0
    cancelled_not_in_erp: int = 0
    not_comparable: int = 0
    by_reason: dict[str, int] = attrs.Factory(dict)
    by_tier: dict[str, int] = attrs.Factory(dict)
    totals: dict[str, CurrencyTotals] = attrs.Factory(dict)

    @property
    def exceptions(self) -> int:
        """Number of exceptions of every tier."""
        return sum(self.by_tier.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (amounts in minor units)."""
        return {
            "shop_orders": self.shop_orders,
            "erp_orders": self.erp_orders,
            "matched": self.matched,
            "clean": self.clean,
            "explained": self.explained,
            "cancelled_not_in_erp": self.cancelled_not_in_erp,
            "not_comparable": self.not_comparable,
            "exceptions": self.exceptions,
            "by_reason": dict(sorted(self.by_reason.items())),
            "by_tier": {t.value: self.by_tier.get(t.value, 0) for t in Tier},
            "totals": {
                cur: {
                    "shop_gross": t.shop_gross,
                    "erp_gross": t.erp_gross,
                    "difference": t.difference,
                }
                for cur, t in sorted(self.totals.items())
            },
        }


@attrs.define
class ReconciliationReport:
    """The outcome of :func:`reconcile_orders`: ``summary`` plus the kept ``exceptions``.

    ``period`` describes the period covered, for people (``"1 May 2026 – 31 May 2026
    (Europe/London)"``); ``generated_at`` is when the report was made (aware).
    """

    summary: ReconciliationSummary = attrs.Factory(ReconciliationSummary)
    exceptions: list[Discrepancy] = attrs.Factory(list)
    tolerance: Tolerance = attrs.Factory(Tolerance)
    period: str | None = None
    generated_at: datetime | None = None

    def by_tier(self, tier: Tier | str) -> list[Discrepancy]:
        """Kept exceptions of one tier."""
        return [e for e in self.exceptions if e.tier == tier]

    def by_reason(self) -> dict[Reason, list[Discrepancy]]:
        """Kept exceptions grouped by reason, most urgent tier first, then reason order."""
        groups: dict[Reason, list[Discrepancy]] = defaultdict(list)
        for exc in self.exceptions:
            groups[exc.reason].append(exc)
        order = list(Reason)
        return dict(
            sorted(
                groups.items(),
                key=lambda kv: (min(e.tier.rank for e in kv[1]), order.index(kv[0])),
            )
        )

    @property
    def blocking(self) -> list[Discrepancy]:
        """Kept exceptions of tier ``block``."""
        return self.by_tier(Tier.BLOCK)

    @property
    def ok(self) -> bool:
        """True when nothing needs review or blocks (auto-accepted variances are fine)."""
        tiers = self.summary.by_tier
        return not tiers.get(Tier.BLOCK.value) and not tiers.get(Tier.REVIEW.value)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "kind": "orders",
            "period": self.period,
            "generated_at": self.generated_at.isoformat() if self.generated_at else None,
            "summary": self.summary.to_dict(),
            "exceptions": [e.to_dict() for e in self.exceptions],
        }


# --------------------------------------------------------------------------- the run


def _ref(item: ShopOrderSummary | ErpOrderSummary) -> str:
    return item.reference


def _fmt(amount: int, currency: str) -> str:
    return str(Money(amount, currency))


# Rows that describe a state rather than money; the order's gross difference goes on another row.
_STATE_REASONS = frozenset(
    {Reason.STATUS_MISMATCH, Reason.CANCELLED_AFTER_DESPATCH, Reason.DUPLICATE_IN_SHOP}
)


class _Run:
    def __init__(
        self,
        tolerance: Tolerance,
        status_check: StatusCheck | None,
        sink: Callable[[Discrepancy], None] | None,
        keep: bool,
        keep_auto: bool,
        period: str | None,
        generated_at: datetime | None,
    ) -> None:
        self.tol = tolerance
        self.status_check = status_check
        self.sink = sink
        self.keep = keep
        self.keep_auto = keep_auto
        self.report = ReconciliationReport(
            tolerance=tolerance, period=period, generated_at=generated_at
        )
        self.by_reason: Counter[str] = Counter()
        self.by_tier: Counter[str] = Counter()

    def emit(self, exc: Discrepancy) -> None:
        self.by_reason[exc.reason.value] += 1
        self.by_tier[exc.tier.value] += 1
        if self.sink is not None:
            self.sink(exc)
        if self.keep and (self.keep_auto or exc.tier is not Tier.AUTO_ACCEPT):
            self.report.exceptions.append(exc)

    def totals(self, currency: str) -> CurrencyTotals:
        t = self.report.summary.totals.get(currency)
        if t is None:
            t = self.report.summary.totals[currency] = CurrencyTotals()
        return t

    def handle(self, ref: str, shops: list[ShopOrderSummary], erps: list[ErpOrderSummary]) -> None:
        summary = self.report.summary
        summary.shop_orders += len(shops)
        summary.erp_orders += len(erps)
        if not erps:
            self._missing(ref, shops)
            return
        if not shops:
            self._unknown(ref, erps)
            return
        summary.matched += 1
        shop = shops[0]
        found: list[Discrepancy] = []
        live = [e for e in erps if not is_erp_cancelled(e.status)]
        compared = live or erps[:1]  # cancelled duplicates are resolved ones
        comparable = all(e.currency == shop.currency for e in compared)
        if len(shops) > 1:
            found.append(
                Discrepancy(
                    reference=ref,
                    reason=Reason.DUPLICATE_IN_SHOP,
                    currency=shop.currency,
                    shop_amount=shop.gross,
                    erp_amount=sum(e.gross for e in compared) if comparable else None,
                    detail=(
                        f"{len(shops)} SCAYLE orders carry this reference (ids "
                        f"{', '.join(s.order_id for s in shops[:5])}); compared the first."
                    ),
                    shop_order_id=shop.order_id,
                )
            )
        if len(live) > 1:
            found.append(
                Discrepancy(
                    reference=ref,
                    reason=Reason.DUPLICATE_IN_ERP,
                    currency=shop.currency if comparable else None,
                    shop_amount=shop.gross if comparable else None,
                    erp_amount=sum(e.gross for e in live) if comparable else None,
                    detail=(
                        f"{len(live)} live OrderWise orders for one SCAYLE order: "
                        + ", ".join(e.order_number or e.order_id for e in live[:5])
                        + "."
                    ),
                    shop_order_id=shop.order_id,
                    erp_order_id=live[0].order_id,
                    erp_order_number=live[0].order_number,
                )
            )
        else:
            found.extend(PairComparison(shop, compared[0], self.tol).compare(self.status_check))
        if comparable:
            erp_gross = sum(e.gross for e in compared)
            totals = self.totals(shop.currency)
            totals.shop_gross += shop.gross
            totals.erp_gross += erp_gross
            found = _carry_gross_difference(found, erp_gross - shop.gross)
        else:
            summary.not_comparable += 1
        if not found:
            summary.clean += 1
        elif all(e.tier is Tier.AUTO_ACCEPT for e in found):
            summary.explained += 1
        for exc in found:
            self.emit(exc)

    def _missing(self, ref: str, shops: list[ShopOrderSummary]) -> None:
        for shop in shops:
            if is_shop_cancelled(shop.status):
                self.report.summary.cancelled_not_in_erp += 1
                continue
            self.totals(shop.currency).shop_gross += shop.gross
            self.emit(
                Discrepancy(
                    reference=ref,
                    reason=Reason.MISSING_IN_ERP,
                    currency=shop.currency,
                    shop_amount=shop.gross,
                    difference=-shop.gross,
                    gross_difference=-shop.gross,
                    detail=(
                        f"SCAYLE order {shop.order_id} ({_fmt(shop.gross, shop.currency)}, "
                        f"{shop.status or 'no status'}) has no OrderWise order."
                    ),
                    shop_order_id=shop.order_id,
                )
            )

    def _unknown(self, ref: str, erps: list[ErpOrderSummary]) -> None:
        for e in erps:
            self.totals(e.currency).erp_gross += e.gross
            self.emit(
                Discrepancy(
                    reference=ref,
                    reason=Reason.UNKNOWN_IN_SHOP,
                    currency=e.currency,
                    erp_amount=e.gross,
                    difference=e.gross,
                    gross_difference=e.gross,
                    detail=(
                        f"OrderWise order {e.order_number or e.order_id} "
                        f"({_fmt(e.gross, e.currency)}, {e.status or 'no status'}) has no "
                        "SCAYLE order with this reference."
                    ),
                    erp_order_id=e.order_id,
                    erp_order_number=e.order_number,
                )
            )

    def finish(self) -> ReconciliationReport:
        summary = self.report.summary
        summary.by_reason = dict(self.by_reason)
        summary.by_tier = dict(self.by_tier)
        return self.report


def _carry_gross_difference(found: list[Discrepancy], difference: int) -> list[Discrepancy]:
    """Put the pair's gross difference on one row: the first about money, else the first."""
    if not difference or not found:
        return found
    at = next((i for i, e in enumerate(found) if e.reason not in _STATE_REASONS), 0)
    found[at] = attrs.evolve(found[at], gross_difference=difference)
    return found


def reconcile_orders(
    shop_orders: Iterable[ShopOrderSummary],
    erp_orders: Iterable[ErpOrderSummary],
    *,
    tolerance: Tolerance | None = None,
    status_check: StatusCheck | None = default_status_check,
    presorted: bool = False,
    chunk_size: int = 20_000,
    sink: Callable[[Discrepancy], None] | None = None,
    keep_exceptions: bool = True,
    keep_auto_accepted: bool = True,
    period: str | None = None,
    generated_at: datetime | None = None,
) -> ReconciliationReport:
    """Join shop and OrderWise orders by reference and report every exception.

    ``presorted=True`` promises both inputs are sorted by ``reference`` (plain string order): the
    join then holds one reference at a time and raises :class:`UnsortedInputError` if a stream goes
    backwards. Otherwise inputs may come in any order and are sorted externally in chunks of
    ``chunk_size`` (spilled to a temporary SQLite file beyond one chunk), so memory stays bounded either
    way. ``sink`` receives every exception as it is found; ``keep_exceptions=False`` keeps only the
    counts in the report, ``keep_auto_accepted=False`` drops explained rounding variances from the
    list (they are still counted). ``status_check=None`` skips status comparison. ``period`` and
    ``generated_at`` are shown on the report.
    """
    run = _Run(
        tolerance or Tolerance(),
        status_check,
        sink,
        keep_exceptions,
        keep_auto_accepted,
        period,
        generated_at,
    )
    shops: Iterable[ShopOrderSummary] = shop_orders
    erps: Iterable[ErpOrderSummary] = erp_orders
    if not presorted:
        shops = sorted_by_reference(shop_orders, ShopOrderSummary, chunk_size=chunk_size)
        erps = sorted_by_reference(erp_orders, ErpOrderSummary, chunk_size=chunk_size)
    joined: Iterator[tuple[str, list[ShopOrderSummary], list[ErpOrderSummary]]] = merge_join(
        group_sorted(shops, _ref, side="SCAYLE"), group_sorted(erps, _ref, side="OrderWise")
    )
    for ref, shop_group, erp_group in joined:
        run.handle(ref, shop_group, erp_group)
    return run.finish()
