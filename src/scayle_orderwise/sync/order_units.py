"""The units of one SCAYLE order as the flows see them: which item ids each pushed line holds,
and which ones packages have reserved.

SCAYLE items are single units; OrderWise lines carry quantities. Shipments and cancellations both
turn OrderWise quantities per variant code back into SCAYLE item ids through the lines the ledger
kept at push time (:func:`ledger_lines`), skipping units that open packages hold
(:func:`open_reservations`).
"""

from __future__ import annotations

import attrs

from ..errors import MappingError
from ..mapping.sku import variant_code_for
from ..scayle.models import Order
from ..store import Record, State
from .context import FlowContext

__all__ = [
    "OPEN_SHIPMENT_STATES",
    "SHIPMENT_KIND",
    "LedgerLine",
    "ledger_lines",
    "open_reservations",
    "pushed_item_ids",
    "removed_item_ids",
    "reserved_item_ids",
    "service_codes",
]

SHIPMENT_KIND = "shipment"
"""Ledger kind of a package (``shipment:<SCAYLE order id>:<consignment>``)."""

OPEN_SHIPMENT_STATES = (State.PENDING, State.SENT, State.FAILED, State.IN_FLIGHT)
"""States of a package that may still be (or may have been) sent to SCAYLE."""


@attrs.frozen
class LedgerLine:
    """A line as pushed to OrderWise: SCAYLE SKU, OrderWise variant code and SCAYLE item ids."""

    sku: str
    variant_code: str
    item_ids: tuple[int, ...]


def _code_for(ctx: FlowContext, sku: str) -> str:
    try:
        return variant_code_for(sku, ctx.mapper.config)
    except MappingError:
        return sku


def _remap(ctx: FlowContext, order: Order) -> list[LedgerLine]:
    try:
        mapped = ctx.mapper.map(order)
        body = mapped.to_orderwise()
    except (MappingError, ValueError, TypeError):
        return []
    codes = {ol.e_commerce_item_id: ol.variant_code for ol in body.order_lines}
    return [
        LedgerLine(line.sku, codes.get(str(line.key)) or _code_for(ctx, line.sku), line.item_ids)
        for line in mapped.lines
    ]


def ledger_lines(ctx: FlowContext, order_record: Record | None, order: Order) -> list[LedgerLine]:
    """The lines of an order as pushed: from the order record's payload (``lines``), else by
    mapping the SCAYLE order again (the mapping is deterministic), else grouped by SKU."""
    raw = (order_record.payload or {}).get("lines") if order_record is not None else None
    entries = [
        e for e in (raw if isinstance(raw, list) else []) if isinstance(e, dict) and e.get("sku")
    ]
    if entries:
        remapped: dict[str, str] | None = None
        lines: list[LedgerLine] = []
        for entry in entries:
            sku = str(entry["sku"])
            code = entry.get("variant_code")
            if not isinstance(code, str) or not code:
                if remapped is None:
                    remapped = {ln.sku: ln.variant_code for ln in _remap(ctx, order)}
                code = remapped.get(sku) or _code_for(ctx, sku)
            ids = tuple(int(i) for i in entry.get("item_ids") or ())
            lines.append(LedgerLine(sku, code, ids))
        return lines
    mapped_lines = _remap(ctx, order)
    if mapped_lines:
        return mapped_lines
    groups: dict[str, list[int]] = {}
    for item in order.items or []:
        sku = (item.sku or "").strip()
        if sku:
            groups.setdefault(sku, []).append(item.id)
    return [LedgerLine(sku, _code_for(ctx, sku), tuple(sorted(ids))) for sku, ids in groups.items()]


def pushed_item_ids(order_record: Record | None) -> set[int]:
    """The SCAYLE item ids the order push sent to OrderWise (from the order record's ``lines``;
    empty when the record has none)."""
    raw = (order_record.payload or {}).get("lines") if order_record is not None else None
    return {
        int(i)
        for entry in (raw if isinstance(raw, list) else [])
        if isinstance(entry, dict)
        for i in entry.get("item_ids") or ()
    }


def removed_item_ids(order_record: Record | None, order: Order) -> set[int]:
    """Units OrderWise holds that SCAYLE no longer lists: SCAYLE removes a unit that is out of
    stock at delegation from the order (and sends ``order-item-out-of-stock``)."""
    return pushed_item_ids(order_record) - {item.id for item in order.items}


def service_codes(ctx: FlowContext) -> frozenset[str]:
    """OrderWise codes of the service lines the mapper adds (delivery parts and fees)."""
    config = ctx.mapper.config
    codes = set(config.fee_variant_codes.values())
    if config.delivery_variant_code is not None:
        codes.add(config.delivery_variant_code)
    return frozenset(codes)


def reserved_item_ids(record: Record) -> list[int]:
    """The SCAYLE item ids a package record holds (chosen for it, sent or acknowledged)."""
    return [int(i) for i in (record.payload or {}).get("item_ids") or ()]


def open_reservations(ctx: FlowContext, order_id: int, exclude: str | None = None) -> set[int]:
    """Item ids held by packages of ``order_id`` that may have been (or are being) sent.

    Walks every open package record in the ledger: the flows ask the order's hold instead
    (:meth:`~scayle_orderwise.sync.order_hold.OrderHold.reservations`), which reads only the
    order's own packages.
    """
    taken: set[int] = set()
    for record in ctx.store.records(states=OPEN_SHIPMENT_STATES, kind=SHIPMENT_KIND):
        if record.subject != str(order_id) or record.key == exclude:
            continue
        taken.update(reserved_item_ids(record))
    return taken
