"""OrderWise order statuses mapped to one canonical model (``reference/orderwise-api.md`` §9.4).

OrderWise status texts are installation-specific free text (``order_status.os_description``), so
the connector maps the exact texts of an installation to :class:`CanonicalStatus` through a
configurable table. :data:`DEFAULT_STATUS_MAP` holds the texts seen in public integrations plus a
few plausible warehouse-flow texts; pass your own table as ``status_map`` (it *replaces* the
default; merge with ``{**DEFAULT_STATUS_MAP, ...}`` to extend it). Matching ignores case,
surrounding spaces and repeated inner spaces; an unknown text maps to ``UNKNOWN``.

Independent rule (not handled here): an order-change row with a consignment number means
"shipped" for SCAYLE, whatever its status text says.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

__all__ = [
    "DEFAULT_STATUS_MAP",
    "CanonicalStatus",
    "canonical_status",
    "is_cancellable",
    "is_final",
    "is_partially_shipped",
    "is_shipped",
    "normalise_status_text",
]


class CanonicalStatus(StrEnum):
    """The connector's own order status vocabulary."""

    RECEIVED = "received"
    """Queued in the e-commerce session, not yet a sales order."""
    OPEN = "open"
    ON_HOLD = "on_hold"
    AWAITING_PICKING = "awaiting_picking"
    PICKING = "picking"
    AWAITING_DESPATCH = "awaiting_despatch"
    PARTIALLY_DESPATCHED = "partially_despatched"
    DESPATCHED = "despatched"
    INVOICED = "invoiced"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


DEFAULT_STATUS_MAP: Mapping[str, CanonicalStatus] = {
    # Seen in public integrations (reference §3.2, §9.4):
    "Awaiting despatch": CanonicalStatus.AWAITING_DESPATCH,
    "Partially despatched": CanonicalStatus.PARTIALLY_DESPATCHED,
    "On hold": CanonicalStatus.ON_HOLD,
    "Completed": CanonicalStatus.COMPLETED,
    "Invoice Waiting to be Printed": CanonicalStatus.DESPATCHED,
    "Dispatched": CanonicalStatus.DESPATCHED,
    "Despatched": CanonicalStatus.DESPATCHED,
    "Cancelled": CanonicalStatus.CANCELLED,
    "Void": CanonicalStatus.CANCELLED,
    # Plausible texts, not evidenced publicly (override per installation):
    "Open": CanonicalStatus.OPEN,
    "Awaiting picking": CanonicalStatus.AWAITING_PICKING,
    "Picking": CanonicalStatus.PICKING,
    "Picking in progress": CanonicalStatus.PICKING,
    "Invoiced": CanonicalStatus.INVOICED,
}
"""Exact OrderWise status texts → canonical status (matched case-insensitively)."""


def normalise_status_text(text: str) -> str:
    """The matching key of a status text: trimmed, inner whitespace collapsed, case-folded."""
    return " ".join(text.split()).casefold()


def canonical_status(
    text: str | None, status_map: Mapping[str, CanonicalStatus | str] | None = None
) -> CanonicalStatus:
    """Map an OrderWise status text to :class:`CanonicalStatus` (``UNKNOWN`` if not in the map).

    ``status_map`` replaces :data:`DEFAULT_STATUS_MAP`; its values may be ``CanonicalStatus``
    members or their string values (``"despatched"``).
    """
    if text is None:
        return CanonicalStatus.UNKNOWN
    table = DEFAULT_STATUS_MAP if status_map is None else status_map
    wanted = normalise_status_text(text)
    if not wanted:
        return CanonicalStatus.UNKNOWN
    for known, status in table.items():
        if normalise_status_text(known) == wanted:
            return CanonicalStatus(status)
    return CanonicalStatus.UNKNOWN


def _as_canonical(
    status: CanonicalStatus | str | None, status_map: Mapping[str, CanonicalStatus | str] | None
) -> CanonicalStatus:
    if isinstance(status, CanonicalStatus):
        return status
    return canonical_status(status, status_map)


_CANCELLABLE = frozenset(
    {
        CanonicalStatus.RECEIVED,
        CanonicalStatus.OPEN,
        CanonicalStatus.ON_HOLD,
        CanonicalStatus.AWAITING_PICKING,
    }
)
_SHIPPED = frozenset(
    {CanonicalStatus.DESPATCHED, CanonicalStatus.INVOICED, CanonicalStatus.COMPLETED}
)
_FINAL = _SHIPPED | {CanonicalStatus.CANCELLED}


def is_cancellable(
    status: CanonicalStatus | str | None,
    status_map: Mapping[str, CanonicalStatus | str] | None = None,
) -> bool:
    """True while the order may still be cancelled automatically (nothing picked or despatched).

    ``UNKNOWN`` is not cancellable (a person must look). A plain string is mapped first.
    """
    return _as_canonical(status, status_map) in _CANCELLABLE


def is_shipped(
    status: CanonicalStatus | str | None,
    status_map: Mapping[str, CanonicalStatus | str] | None = None,
) -> bool:
    """True when the whole order has left the warehouse (despatched, invoiced or completed)."""
    return _as_canonical(status, status_map) in _SHIPPED


def is_partially_shipped(
    status: CanonicalStatus | str | None,
    status_map: Mapping[str, CanonicalStatus | str] | None = None,
) -> bool:
    """True for ``PARTIALLY_DESPATCHED``."""
    return _as_canonical(status, status_map) is CanonicalStatus.PARTIALLY_DESPATCHED


def is_final(
    status: CanonicalStatus | str | None,
    status_map: Mapping[str, CanonicalStatus | str] | None = None,
) -> bool:
    """True when nothing more will happen to the order (shipped in full or cancelled)."""
    return _as_canonical(status, status_map) in _FINAL
