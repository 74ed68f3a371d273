"""The cancellation records in the ledger: their keys, and noting a shop-side cancellation.

``cancellation:shop:<SCAYLE order id>`` is one customer cancellation in SCAYLE (reopened when more
units are cancelled later); ``cancellation:erp:<SCAYLE order id>:<OrderWise order id>:<fingerprint>``
is one cancelled state of an OrderWise order.
"""

from __future__ import annotations

from ...store import InvalidTransitionError, Record, State
from ..context import FlowContext

__all__ = [
    "CANCELLATION_KIND",
    "erp_cancellation_key",
    "record_shop_cancellation",
    "shop_cancellation_key",
]

CANCELLATION_KIND = "cancellation"


def shop_cancellation_key(order_id: int | str) -> str:
    """The ledger key of a SCAYLE-side cancellation of one order."""
    return f"cancellation:shop:{order_id}"


def erp_cancellation_key(order_id: int | str, ow_order_id: int | str, fingerprint: str) -> str:
    """The ledger key of one cancelled state of an OrderWise order."""
    return f"cancellation:erp:{order_id}:{ow_order_id}:{fingerprint}"


def record_shop_cancellation(
    ctx: FlowContext, order_id: int | str, *, source: str = "webhook"
) -> Record:
    """Note that SCAYLE reports a cancellation of ``order_id``; the next pass does the work.

    Idempotent: a pending record stays as it is; a finished one is reopened only when the order was
    not cancelled completely the first time (more units may have been cancelled since).
    """
    store = ctx.store
    key = shop_cancellation_key(order_id)
    record = store.get(key)
    if record is None:
        return store.ensure(
            key,
            kind=CANCELLATION_KIND,
            subject=str(int(order_id)),
            payload={"direction": "shop", "source": source},
            reason=f"cancelled in SCAYLE ({source})",
        )
    if record.state == State.ACKNOWLEDGED and not (record.payload or {}).get("complete"):
        try:
            return store.mark(key, State.PENDING, reason=f"cancelled again in SCAYLE ({source})")
        except InvalidTransitionError:  # claimed meanwhile: that pass sees the new state anyway
            pass
    return record
