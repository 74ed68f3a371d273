"""The acknowledgement watch: alert on packages SCAYLE has not acknowledged in time.

A package despatched in OrderWise but not acknowledged by SCAYLE within
``flows.fulfilment_ack_timeout_seconds`` (still open, or quarantined) raises
:attr:`~scayle_orderwise.alerts.AlertKind.FULFILMENT_UNACKNOWLEDGED` once; so does a despatch
parked without a consignment number.
"""

from __future__ import annotations

from datetime import timedelta

from ...alerts import AlertKind
from ...store import State
from ..context import FlowContext, SyncResult
from ..order_units import OPEN_SHIPMENT_STATES, SHIPMENT_KIND
from .packages import package_key, package_subject

__all__ = ["AcknowledgementWatch"]


class AcknowledgementWatch:
    """Raises the alerts of packages left unacknowledged (see the module docstring)."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx

    def check_unacknowledged(self, result: SyncResult) -> None:
        """Alert on packages SCAYLE has not acknowledged within the configured time."""
        ctx = self.ctx
        limit = timedelta(seconds=ctx.flows.fulfilment_ack_timeout_seconds)
        now = ctx.clock()
        states = (*OPEN_SHIPMENT_STATES, State.QUARANTINED)
        for record in ctx.store.records(states=states, kind=SHIPMENT_KIND):
            if now - record.created_at <= limit:
                continue
            age = int((now - record.created_at).total_seconds())
            data = record.payload or {}
            if data.get("no_consignment"):
                number = data.get("ow_order_number") or data.get("reference") or "?"
                message = (
                    f"order {record.subject} (OrderWise {number}) has a despatch "
                    f"({data.get('despatch_id')}) without a consignment number for {age} s: SCAYLE "
                    "does not know those units shipped. Enter the consignment in OrderWise, or "
                    "create the shipment in SCAYLE by hand"
                )
                cause = "no_consignment"
            else:
                message = (
                    f"package {package_key(record)} of order {record.subject} despatched in "
                    f"OrderWise is not acknowledged by SCAYLE after {age} s ({record.state}: "
                    f"{record.reason or 'no reason recorded'})"
                )
                cause = str(record.state)
            if ctx.alerts.raise_alert(
                AlertKind.FULFILMENT_UNACKNOWLEDGED,
                package_subject(record),
                message,
                cause=cause,
                details={"order_id": record.subject, "consignment": data.get("consignment")},
            ):
                result.add("unacknowledged_alerts")
