"""The per-order hold: shipments and cancellations of one SCAYLE order choose item ids under it.

The hold is a ledger claim on ``fulfilment_lock:<SCAYLE order id>``, so two workers never pick
the same unit for two packages. It also answers which units other packages of the order have
reserved (item ids a package may have sent, or is sending, that SCAYLE may not show yet) without
walking the ledger: its payload lists the package records of the order that went through the
sender (``packages``), and :meth:`OrderHold.reservations` reads just those. A pass therefore
costs the same per order however many packages the ledger holds.

The list is written when the hold is released. When it cannot be trusted, the hold rebuilds it
once from a walk over the open package records: a hold taken over from a worker that never
released it (it died, or its lease ran out, possibly after sending), and a hold written before
the list existed (a ledger from 0.1.0).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from ..store import Record, State, StoreError
from .context import FlowContext
from .order_units import OPEN_SHIPMENT_STATES, SHIPMENT_KIND, reserved_item_ids

__all__ = ["LOCK_KIND", "OrderHold", "hold_key", "hold_order"]

LOCK_KIND = "fulfilment_lock"
"""Ledger kind of the per-order hold."""

_PACKAGES = "packages"


def hold_key(order_id: int | str) -> str:
    """The ledger key of the hold of one SCAYLE order: ``fulfilment_lock:<order id>``."""
    return f"{LOCK_KIND}:{order_id}"


class OrderHold:
    """A held per-order lock and the package records that may reserve units of the order."""

    def __init__(self, ctx: FlowContext, order_id: int | str, claimed: Record) -> None:
        self.ctx = ctx
        self.order_id = str(order_id)
        self.key = claimed.key
        listed = (claimed.payload or {}).get(_PACKAGES)
        trusted = isinstance(listed, list) and claimed.claimed_from is not State.IN_FLIGHT
        self.rebuilt = not trusted
        self._packages: set[str] = (
            {str(k) for k in listed} if trusted and isinstance(listed, list) else self._walk()
        )

    def _walk(self) -> set[str]:
        """The open (and quarantined) package records of this order, found by one walk over
        every open package in the ledger. Records without item ids yet are listed too: another
        worker may be about to write them."""
        states = (*OPEN_SHIPMENT_STATES, State.QUARANTINED)
        return {
            record.key
            for record in self.ctx.store.records(states=states, kind=SHIPMENT_KIND)
            if record.subject == self.order_id
        }

    def note(self, package_key: str) -> None:
        """Remember that ``package_key`` (a package record of this order) may carry item ids."""
        self._packages.add(package_key)

    @property
    def packages(self) -> frozenset[str]:
        """The package records the hold lists."""
        return frozenset(self._packages)

    def reservations(self) -> set[int]:
        """Item ids held by packages of the order that may have been (or are being) sent."""
        taken: set[int] = set()
        for key in sorted(self._packages):
            record = self.ctx.store.get(key)
            if record is None or record.state is State.CANCELLED:
                self._packages.discard(key)  # gone for good: nothing to reserve ever again
                continue
            if record.state in OPEN_SHIPMENT_STATES:
                taken.update(reserved_item_ids(record))
        return taken

    def payload(self) -> dict[str, Any]:
        """What the hold record keeps when released."""
        return {_PACKAGES: sorted(self._packages)}


@contextmanager
def hold_order(ctx: FlowContext, order_id: int | str) -> Iterator[OrderHold | None]:
    """Hold the per-order lock (a ledger claim); yields ``None`` if another worker has it."""
    key = hold_key(order_id)
    ctx.store.ensure(key, kind=LOCK_KIND, subject=str(order_id), payload={_PACKAGES: []})
    claimed = ctx.store.claim(key, owner=ctx.worker_id, lease=ctx.lease)
    if claimed is None:
        yield None
        return
    hold = OrderHold(ctx, order_id, claimed)
    try:
        yield hold
    finally:
        # If the lease ran out and another worker took the lock, there is nothing to release:
        # that worker rebuilt the list from the ledger when it took the hold over.
        with suppress(StoreError):
            ctx.store.transition(
                key, State.PENDING, owner=ctx.worker_id, reason="released", payload=hold.payload()
            )
