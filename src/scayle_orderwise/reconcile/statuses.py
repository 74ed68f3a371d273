"""Statuses in reconciliation: which SCAYLE and OrderWise statuses mean cancelled or shipped, and
the default check of one pair's statuses (cancellations only one system knows about)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from .reasons import Reason
from .summaries import ErpOrderSummary, ShopOrderSummary

__all__ = [
    "StatusCheck",
    "StatusOutcome",
    "default_status_check",
    "is_erp_cancelled",
    "is_shop_cancelled",
    "norm_status",
]

StatusOutcome = str | tuple[Reason, str] | None
"""What a status check returns: ``None`` when the statuses agree, else a sentence (reported as
``status_mismatch``) or ``(reason, sentence)`` for a more specific reason."""

StatusCheck = Callable[[ShopOrderSummary, ErpOrderSummary], StatusOutcome]
"""``(shop, erp) -> None`` when the statuses agree, else the mismatch (see :data:`StatusOutcome`)."""

_SHOP_CANCELLED = frozenset(
    {
        "cancellation_completed",
        "cancelled",
        "canceled",
        "order_cancelled",
        "aborted",
        "order_aborted",
    }
)
_SHOP_CANCELLING = frozenset({"cancellation_pending"})
_ERP_CANCELLED = frozenset({"cancelled", "canceled"})
_ERP_SHIPPED = frozenset(
    {"despatched", "dispatched", "partially_despatched", "invoiced", "completed"}
)


@functools.lru_cache(maxsize=1024)
def norm_status(text: str) -> str:
    """A status compared loosely: lower case, words joined by ``_`` (``"Cancelled "`` → ``cancelled``)."""
    return "_".join(text.strip().lower().replace("-", " ").split())


def is_shop_cancelled(status: str) -> bool:
    """True for SCAYLE statuses meaning the order is cancelled (or aborted)."""
    return norm_status(status) in _SHOP_CANCELLED


def is_erp_cancelled(status: str) -> bool:
    """True for canonical OrderWise statuses meaning the order is cancelled."""
    return norm_status(status) in _ERP_CANCELLED


def default_status_check(shop: ShopOrderSummary, erp: ErpOrderSummary) -> StatusOutcome:
    """Flag cancellations that only one system knows about.

    Cancelled in SCAYLE while OrderWise already despatched it is ``cancelled_after_despatch``
    (block: the customer may be refunded for goods that left the warehouse); cancelled in SCAYLE
    but still live in OrderWise, or cancelled in OrderWise while SCAYLE neither cancelled nor is
    cancelling it, is ``status_mismatch``. Lags such as "despatched in OrderWise, not yet shipped
    in SCAYLE" are the monitor's business, not reconciliation's.
    """
    s, e = norm_status(shop.status), norm_status(erp.status)
    shop_cancelled = s in _SHOP_CANCELLED
    erp_cancelled = e in _ERP_CANCELLED
    if shop_cancelled and not erp_cancelled:
        if e in _ERP_SHIPPED:
            return (
                Reason.CANCELLED_AFTER_DESPATCH,
                f"Cancelled in SCAYLE ({s}) but OrderWise has already despatched it ({e}): "
                "the customer may be refunded for goods that left the warehouse.",
            )
        return f"Cancelled in SCAYLE ({s}) but still live in OrderWise ({e or 'no status'})."
    if erp_cancelled and not shop_cancelled and s not in _SHOP_CANCELLING:
        return f"Cancelled in OrderWise but not in SCAYLE ({s or 'no status'})."
    return None
