"""Claiming the due records of one kind in batches, each once per pass (shared by the flows)."""

from __future__ import annotations

from collections.abc import Iterator

from ..store import Record, State
from .context import FlowContext

__all__ = ["claim_due"]


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
