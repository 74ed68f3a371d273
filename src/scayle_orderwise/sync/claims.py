"""Ledger claims the flows share: due records in batches, and the per-order hold.

:func:`claim_due` walks the due records of one kind once per pass; :func:`hold_order` is the
per-order lock under which shipments and cancellations of one SCAYLE order choose item ids, so two
workers never pick the same unit twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from ..store import Record, State, StoreError
from .context import FlowContext

__all__ = ["LOCK_KIND", "claim_due", "hold_order"]

LOCK_KIND = "fulfilment_lock"
"""Ledger kind of the per-order hold (``fulfilment_lock:<SCAYLE order id>``)."""


def claim_due(ctx: FlowContext, kind: str) -> Iterator[list[Record]]:
    """Claim due records of ``kind`` in batches; each record is yielded once per pass.

    A record claimed again in the same pass (it became due again, e.g. ``sent`` after an unclear
    outcome) is released at once for the next pass.
    """
    seen: set[str] = set()
    while True:
        batch = ctx.store.claim_next(
            kind, owner=ctx.worker_id, lease=ctx.lease, limit=ctx.flows.batch_size
        )
        fresh = [r for r in batch if r.key not in seen]
        for record in batch:
            if record.key in seen:
                ctx.store.transition(
                    record.key,
                    State.SENT if record.may_have_been_sent else State.PENDING,
                    owner=ctx.worker_id,
                    reason="left for the next pass",
                )
        if not fresh:
            return
        seen.update(r.key for r in fresh)
        yield fresh


@contextmanager
def hold_order(ctx: FlowContext, order_id: int | str) -> Iterator[bool]:
    """Hold the per-order fulfilment lock (a ledger claim); yields ``False`` if another worker has it.

    Shipments and cancellations of one SCAYLE order choose item ids under this lock, so two workers
    never pick the same unit for two packages.
    """
    key = f"{LOCK_KIND}:{order_id}"
    ctx.store.ensure(key, kind=LOCK_KIND, subject=str(order_id))
    claimed = ctx.store.claim(key, owner=ctx.worker_id, lease=ctx.lease)
    if claimed is None:
        yield False
        return
    try:
        yield True
    finally:
        # If the lease ran out and another worker took the lock, there is nothing to release.
        with suppress(StoreError):
            ctx.store.transition(key, State.PENDING, owner=ctx.worker_id, reason="released")
