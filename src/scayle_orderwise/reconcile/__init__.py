"""Reconciliation: SCAYLE orders × OrderWise orders, stock levels, and the period's postings.

* :func:`reconcile_orders` joins :class:`ShopOrderSummary` and :class:`ErpOrderSummary` streams by
  reference and returns a :class:`ReconciliationReport` of :class:`Discrepancy` entries, each with a
  :class:`Reason`, a :class:`Tier` and the next action. Memory stays bounded however many orders.
* :func:`reconcile_stock_levels` compares expected and actual stock into a :class:`StockReport`.
* :func:`build_postings` / :func:`postings_csv` produce the batched journal of a :class:`Period`.
* :class:`ReportingPeriod` is the one period rule of reconciliation and postings: instants
  ``[since, until)``, dates and naive times read in the books' time zone.
* :mod:`scayle_orderwise.reconcile.report` renders reports as JSON, CSV and self-contained HTML.
"""

from __future__ import annotations

from ._streams import UnsortedInputError
from .orders import (
    CurrencyTotals,
    Discrepancy,
    ReconciliationException,
    ReconciliationReport,
    ReconciliationSummary,
    StatusCheck,
    Tolerance,
    default_status_check,
    reconcile_orders,
)
from .periods import ReportingPeriod
from .postings import (
    Period,
    PostingKind,
    PostingLine,
    PostingRow,
    PostingSource,
    batch_id,
    build_postings,
    postings_csv,
)
from .reasons import REASONS, Measure, Reason, ReasonInfo, StockReason, Tier
from .stock import StockReport, StockRow, StockSummary, reconcile_stock_levels
from .summaries import ErpOrderSummary, LineSummary, ShopOrderSummary

__all__ = [
    "REASONS",
    "CurrencyTotals",
    "Discrepancy",
    "ErpOrderSummary",
    "LineSummary",
    "Measure",
    "Period",
    "PostingKind",
    "PostingLine",
    "PostingRow",
    "PostingSource",
    "Reason",
    "ReasonInfo",
    "ReconciliationException",
    "ReconciliationReport",
    "ReconciliationSummary",
    "ReportingPeriod",
    "ShopOrderSummary",
    "StatusCheck",
    "StockReason",
    "StockReport",
    "StockRow",
    "StockSummary",
    "Tier",
    "Tolerance",
    "UnsortedInputError",
    "batch_id",
    "build_postings",
    "default_status_check",
    "postings_csv",
    "reconcile_orders",
    "reconcile_stock_levels",
]
