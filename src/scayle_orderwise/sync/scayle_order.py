"""A SCAYLE order as every flow sees it: its ledger key and whether SCAYLE confirmed or cancelled it.

The orders flow creates the ``order:<id>`` records; fulfilment, cancellations and reconciliation
read them and ask the same two questions of a SCAYLE order. Keeping the answers here lets those
flows depend on what they share rather than on the orders flow itself.
"""

from __future__ import annotations

from ..scayle.models import Order

__all__ = [
    "CANCELLED_ORDER_CODES",
    "CANCELLED_STATUSES",
    "IMPORTABLE_ORDER_CODES",
    "IMPORTABLE_STATUSES",
    "ORDER_KIND",
    "is_cancelled",
    "is_importable",
    "order_key",
]

ORDER_KIND = "order"
"""Ledger kind of a SCAYLE order on its way to OrderWise (key :func:`order_key`)."""

IMPORTABLE_ORDER_CODES = frozenset(
    {"order_confirmed", "order_delegated", "order_shipped", "order_invoiced"}
)
"""``detailedStatus.order.code`` values of orders SCAYLE has confirmed (payment authorised)."""

IMPORTABLE_STATUSES = frozenset(
    {"payment_reserved", "invoice_completed", "invoice_partially_completed"}
)
"""Coarse ``status`` values that also mean confirmed, for orders without a detailed status."""

CANCELLED_ORDER_CODES = frozenset({"order_cancelled", "order_canceled", "order_aborted"})
CANCELLED_STATUSES = frozenset({"cancellation_pending", "cancellation_completed"})


def order_key(order_id: int | str) -> str:
    """The ledger key of a SCAYLE order."""
    return f"order:{order_id}"


def _order_code(order: Order) -> str | None:
    detailed = order.detailed_status
    if detailed is not None and detailed.order is not None:
        return detailed.order.code
    return None


def is_cancelled(order: Order) -> bool:
    """True when the whole order is cancelled in SCAYLE (status, or every item cancelled)."""
    if _order_code(order) in CANCELLED_ORDER_CODES or str(order.status) in CANCELLED_STATUSES:
        return True
    items = order.items or []
    return bool(items) and all(
        str(item.status) == "cancelled" or item.cancelled_at is not None for item in items
    )


def is_importable(order: Order) -> bool:
    """True when SCAYLE has confirmed the order (abandoned or unpaid checkouts are never imported)."""
    code = _order_code(order)
    if code is not None:
        return code in IMPORTABLE_ORDER_CODES
    return str(order.status) in IMPORTABLE_STATUSES
