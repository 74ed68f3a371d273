"""The flows between SCAYLE and OrderWise, each one pass that is safe to repeat.

``orders`` (SCAYLE → OrderWise, exactly once), ``fulfilment`` (despatches → SCAYLE shipments),
``cancellations`` (both ways) and ``inventory`` (OrderWise stock → SCAYLE). The
:class:`~scayle_orderwise.connector.Connector` wires them to clients, a store and alert sinks.
"""

from __future__ import annotations

from .context import FlowContext, SyncResult

__all__ = ["FlowContext", "SyncResult"]
