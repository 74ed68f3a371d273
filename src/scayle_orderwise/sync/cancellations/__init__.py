"""Cancellations both ways: SCAYLE → OrderWise while possible, OrderWise → SCAYLE always.

A pass (:class:`CancellationSync`):

1. **Shop side** (:mod:`.shop`): a customer cancellation in SCAYLE (webhook, through
   :func:`record_shop_cancellation`, or found by walking the SCAYLE order list) becomes one ledger
   record ``cancellation:shop:<SCAYLE order id>``; it cancels the OrderWise order while it is not
   picked or despatched, and otherwise goes to a person as a return.
2. **ERP side** (:mod:`.erp`): the ``order_changes`` export is read from its own watermark
   (:class:`~scayle_orderwise.sync.change_feed.ChangeFeed`); an order or line cancelled in
   OrderWise becomes one record per cancelled state and one ``POST /fulfillment/cancellations``
   of the units not yet shipped or cancelled in SCAYLE.
3. Every due record is claimed and taken as far as it goes; how a record ends (done, too late,
   left to a person) is in :mod:`.outcomes`.

Repeating a cancellation (a second webhook, the poll) does nothing twice: a finished record is
reopened only while the order was not cancelled completely, and the work done is computed from
the current state of both systems. A malformed export row is skipped, counted ``bad_rows`` and
alerted once (see :mod:`..bad_rows`); the other rows and the watermark go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ...errors import AuthenticationError, ConfigError, NotFoundError
from ...orderwise.models import OrderChangeRow
from ...store import Record
from ..change_feed import ChangeFeed
from ..claims import claim_due
from ..context import FlowContext, SyncResult
from .erp import ErpCancellations
from .outcomes import Done
from .records import (
    CANCELLATION_KIND,
    erp_cancellation_key,
    record_shop_cancellation,
    shop_cancellation_key,
)
from .shop import ShopCancellations

__all__ = [
    "CANCELLATION_KIND",
    "CURSOR",
    "CancellationSync",
    "erp_cancellation_key",
    "record_shop_cancellation",
    "shop_cancellation_key",
]

CURSOR = "cancellations:order_changes"
"""Store cursor of the cancellations flow's change feed."""


class CancellationSync:
    """One pass of the cancellations flow; see the module docstring."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        self.feed = ChangeFeed(ctx, CURSOR, "cancellations")
        self.shop = ShopCancellations(ctx)
        self.erp = ErpCancellations(ctx)

    def run(self, *, poll: bool = True) -> SyncResult:
        """Find cancellations on both sides (``poll=False``: only OrderWise's), then act on them."""
        result = SyncResult("cancellations")
        if poll:
            self.poll_shop(result)
        rows = self.feed.read(result)
        if rows is not None:
            self.record_erp_cancellations(rows, result)
            self.feed.commit()
        for batch in claim_due(self.ctx, CANCELLATION_KIND):
            for record in batch:
                self.process(record, result)
        return result

    def poll_shop(self, result: SyncResult) -> None:
        """Walk the SCAYLE orders for customer cancellations (see :mod:`.shop`)."""
        self.shop.poll(result)

    def record_erp_cancellations(self, rows: Sequence[OrderChangeRow], result: SyncResult) -> None:
        """One record per cancelled state of each OrderWise order in ``rows`` (see :mod:`.erp`)."""
        self.erp.record(rows, result)

    def process(self, record: Record, result: SyncResult) -> None:
        """Take one claimed cancellation as far as it goes; never raises for one bad record."""
        ctx = self.ctx
        handler: Callable[[Record, SyncResult], None] = (
            self.erp.process if record.key.startswith("cancellation:erp:") else self.shop.process
        )
        try:
            handler(record, result)
        except Done:
            return
        except (AuthenticationError, ConfigError):
            ctx.release(record, "authentication or configuration error; the pass stops")
            raise
        except NotFoundError as exc:
            ctx.release(record, f"not found: {exc}", backoff=True)
            result.add("deferred")
        except Exception as exc:  # a pass never dies on one bad record
            ctx.release_after_error(record, exc, result)
