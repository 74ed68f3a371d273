"""Despatches in OrderWise → shipments in SCAYLE, exactly once per package.

A pass (:class:`FulfilmentSync`) has four steps, each in its own module:

1. **Read** the ``order_changes`` export from a watermark (minus ``flows.poll_overlap_seconds``, so
   late commits are not missed): :class:`~scayle_orderwise.sync.change_feed.ChangeFeed`, shared
   with the cancellations flow. Status texts are mapped through the configured status map; an
   unknown text raises :attr:`AlertKind.STATUS_UNKNOWN` once.
2. **Record** (:mod:`.packages`): every OrderWise delivery with a consignment number becomes one
   ledger record ``shipment:<SCAYLE order id>:<consignment>`` holding what OrderWise despatched
   (units per variant code, courier, time), sent with ``shipmentKey`` = the consignment (the
   tracking number). Re-reading the same delivery in the overlap window finds the record already
   there. Odd cases:

   - **A consignment number used again** by a later delivery of the same order (a collection
     reference, a reused label): told apart by the OrderWise ``deliveryNumber``. The first delivery
     keeps the plain key; each further one gets ``shipment:<order>:<consignment>#<delivery number>``
     and ``shipmentKey`` ``<consignment>-<delivery number>`` (counted ``consignment_reused``): SCAYLE
     keys packages by ``shipmentKey``, so reusing the consignment would be taken for the first
     package. The storefront's tracking link of such a package carries the suffix. Without a
     ``deliveryNumber`` column deliveries cannot be told apart: units a known consignment gains are
     counted ``units_beyond_package`` and raise :attr:`AlertKind.FULFILMENT_UNACKNOWLEDGED`
     (subject ``<order>:<consignment>:more_units``) instead of being sent.
   - **A despatch without a consignment number** (a delivery number or despatch time but no
     consignment) cannot be sent: SCAYLE needs the ``shipmentKey``. It is counted
     ``no_consignment`` and parked as a ``quarantined`` record
     ``shipment:<order>:#<delivery number>`` (or ``#at-<despatch time>``); the watch step raises
     :attr:`AlertKind.FULFILMENT_UNACKNOWLEDGED` (subject ``<order>:no-consignment:<id>``, once)
     when it is older than ``flows.fulfilment_ack_timeout_seconds``, which leaves the warehouse
     time to enter the number. If the delivery shows up with a consignment later, it is recorded
     as a normal package and the parked record is cancelled (its alert resolved).
   - **Malformed rows** are skipped, counted ``bad_rows`` and alerted (see :mod:`..bad_rows`).
3. **Send** every due package (:mod:`.shipments`): the SCAYLE order is read; a package with the
   same ``shipmentKey`` already there is adopted, else the despatched units are mapped back to
   SCAYLE item ids and ``POST /fulfillment/shipments`` is sent once. An unclear outcome leaves the
   record ``sent``; the next pass looks at the order's packages first.
4. **Watch** (:mod:`.watch`): a package not acknowledged by SCAYLE within
   ``flows.fulfilment_ack_timeout_seconds`` raises :attr:`AlertKind.FULFILMENT_UNACKNOWLEDGED`; a
   change feed that has not been read successfully for ``flows.sync_stalled_after_seconds``
   raises :attr:`AlertKind.SYNC_STALLED`.

The courier → SCAYLE carrier key mapping is in :mod:`.carriers`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...orderwise.models import OrderChangeRow
from ..change_feed import ChangeFeed, note_unknown_statuses, scayle_order_id
from ..claims import claim_due
from ..context import FlowContext, SyncResult
from ..order_hold import LOCK_KIND, hold_order
from ..order_units import SHIPMENT_KIND, LedgerLine, ledger_lines
from .carriers import DEFAULT_CARRIER_MAP, carrier_for
from .packages import PackageBook, shipment_key
from .shipments import ShipmentSender
from .watch import AcknowledgementWatch

__all__ = [
    "CURSOR",
    "DEFAULT_CARRIER_MAP",
    "LOCK_KIND",
    "SHIPMENT_KIND",
    "ChangeFeed",
    "FulfilmentSync",
    "LedgerLine",
    "carrier_for",
    "claim_due",
    "hold_order",
    "ledger_lines",
    "note_unknown_statuses",
    "scayle_order_id",
    "shipment_key",
]

CURSOR = "fulfilment:order_changes"
"""Store cursor of the fulfilment flow's change feed."""


class FulfilmentSync:
    """One pass of the fulfilment flow; see the module docstring."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        self.feed = ChangeFeed(ctx, CURSOR, "fulfilment")
        self.packages = PackageBook(ctx)
        self.sender = ShipmentSender(ctx)
        self.watch = AcknowledgementWatch(ctx)

    def run(self) -> SyncResult:
        """Read despatches, send due packages, raise alerts for unacknowledged ones."""
        result = SyncResult("fulfilments")
        rows = self.feed.read(result)
        if rows is not None:
            self.record_deliveries(rows, result)
            self.feed.commit()
        self.send_due(result)
        self.check_unacknowledged(result)
        return result

    def record_deliveries(self, rows: Sequence[OrderChangeRow], result: SyncResult) -> None:
        """Step 2: one package record per OrderWise delivery (see :mod:`.packages`)."""
        self.packages.record_deliveries(rows, result)

    def send_due(self, result: SyncResult) -> None:
        """Step 3: send the due packages to SCAYLE (see :mod:`.shipments`)."""
        self.sender.send_due(result)

    def check_unacknowledged(self, result: SyncResult) -> None:
        """Step 4: alert on packages SCAYLE has not acknowledged (see :mod:`.watch`)."""
        self.watch.check_unacknowledged(result)
