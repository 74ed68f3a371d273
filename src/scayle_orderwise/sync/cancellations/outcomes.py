"""How a cancellation record ends: done, too late (a return instead), or left to a person.

Each ending moves the claimed record to its state, counts the outcome and raises :class:`Done`,
so the direction modules read as a list of checks that stop at the first that decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from ...alerts import AlertKind
from ...orderwise.models import SalesOrderStatus
from ...store import Record, State
from ..context import FlowContext, SyncResult

__all__ = ["Done", "Outcomes"]


class Done(Exception):
    """The record was moved to its outcome; stop processing it."""


class Outcomes:
    """The endings of a claimed cancellation record (see the module docstring)."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx

    def finish(
        self,
        record: Record,
        reason: str,
        payload: Mapping[str, Any],
        result: SyncResult,
        outcome: str = "already_cancelled",
    ) -> NoReturn:
        """Acknowledge the record: nothing more to do."""
        self.ctx.store.transition(
            record.key,
            State.ACKNOWLEDGED,
            owner=self.ctx.worker_id,
            reason=reason,
            payload=payload,
        )
        result.add(outcome)
        self.ctx.log("cancellation.done", key=record.key, outcome=outcome)
        raise Done

    def too_late(
        self,
        record: Record,
        order_id: int,
        number: str,
        status: SalesOrderStatus,
        payload: Mapping[str, Any],
        result: SyncResult,
        refusal: str | None = None,
    ) -> NoReturn:
        """OrderWise has picked or despatched: nothing is cancelled, the units come back as a
        return (quarantined ``return_needed``, alerted)."""
        ctx = self.ctx
        text = status.order_status or "unknown"
        why = f"OrderWise refused: {refusal}" if refusal else f"OrderWise status {text!r}"
        reason = (
            f"return_needed: SCAYLE order {order_id} was cancelled after OrderWise order {number} "
            f"was picked or despatched ({why}); nothing was cancelled: the units will ship and "
            "must come back as a return"
        )
        ctx.store.transition(
            record.key,
            State.QUARANTINED,
            owner=ctx.worker_id,
            reason=reason,
            payload={**payload, "return_needed": True},
        )
        ctx.alerts.raise_alert(
            AlertKind.CANCELLATION_TOO_LATE,
            str(order_id),
            f"order {order_id} (OrderWise {number}) was cancelled by the customer too late: "
            f"{why}. Nothing was cancelled; handle it as a return",
            cause="return_needed",
            details={"order_id": order_id, "orderwise_order": number, "status": text},
        )
        result.add("return_needed")
        ctx.log("cancellation.too_late", order_id=order_id, orderwise_order=number)
        raise Done

    def needs_person(
        self,
        record: Record,
        order_id: int,
        reason: str,
        cause: str,
        payload: Mapping[str, Any],
        result: SyncResult,
    ) -> NoReturn:
        """Something the API cannot do (quarantined with ``reason``, alerted)."""
        ctx = self.ctx
        ctx.store.transition(
            record.key, State.QUARANTINED, owner=ctx.worker_id, reason=reason, payload=payload
        )
        ctx.alerts.raise_alert(
            AlertKind.CANCELLATION_TOO_LATE,
            str(order_id),
            f"order {order_id}: {reason}",
            cause=cause,
            details={"order_id": order_id},
        )
        result.add("needs_person")
        raise Done
