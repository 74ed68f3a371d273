"""Demo data for ``scayle-orderwise serve --sandbox``: a shop whose exceptions are worth looking at.

:func:`sandbox_connector` builds an in-process :class:`~scayle_orderwise.sandbox.Sandbox` and a
connector on it, then plays a short story so that every page of the service has something to show:

* orders pushed to OrderWise, despatched and shipped to SCAYLE;
* a **quarantined order** (``5004``: a SKU that OrderWise does not know);
* an **unacknowledged parcel** (order ``5002`` despatched without a consignment number, so SCAYLE
  cannot be told; it alerts after ``fulfilment_ack_timeout_seconds``);
* a **late cancellation** (order ``5005`` cancelled by the customer while the warehouse picks it);
* orders ``5101`` to ``5110`` waiting in SCAYLE for their ``order-confirmed`` webhook (the order
  poll is off in the sandbox): post one to ``/webhooks/scayle`` and watch it reach OrderWise.

The sandbox's clock is a :class:`~scayle_orderwise.sandbox.clock.VirtualClock`: the story moves it
forward (so alerts are due) and the service then runs on it in real time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..config import (
    ConnectorSettings,
    FlowSchedule,
    FlowSettings,
    InventorySettings,
    ServiceSettings,
    StockShaping,
)
from ..connector import Connector
from ..mapping import MappingConfig
from ..sandbox import Sandbox, make_order
from ..sandbox.clock import VirtualClock
from ..store import MemoryStore

__all__ = [
    "LATE_CANCELLATION",
    "QUARANTINED_ORDER",
    "UNACKNOWLEDGED_PARCEL",
    "WAITING_ORDERS",
    "sandbox_connector",
]

CATALOGUE = [
    ("TEE-BLK-M", 2400, "0.20"),
    ("HOODIE-GRY", 4995, "0.20"),
    ("BOOK-01", 1250, "0"),
    ("CAR-SEAT-01", 12000, "0.05"),
]
GHOST_SKU = "TEE-LIMITED-EDITION"
QUARANTINED_ORDER = 5004
UNACKNOWLEDGED_PARCEL = 5002
LATE_CANCELLATION = 5005
WAITING_ORDERS = tuple(range(5101, 5111))
_SHIPPED = (5001, 5003, 5006)
_DELIVERY_CODE = "CARRIAGE"


def sandbox_settings(reports_dir: Path) -> ConnectorSettings:
    """Short intervals and thresholds, so the sandbox service shows its behaviour in minutes."""
    flows = FlowSettings(
        backoff_base_seconds=5,
        resend_grace_seconds=60,
        fulfilment_ack_timeout_seconds=600,
        order_stalled_after_seconds=900,
        order_poll=False,
    )
    service = ServiceSettings(
        orders=FlowSchedule(interval_seconds=10),
        cancellations=FlowSchedule(interval_seconds=10),
        fulfilments=FlowSchedule(interval_seconds=15),
        inventory=FlowSchedule(interval_seconds=20),
        reconciliation=FlowSchedule(interval_seconds=600),
        reconcile_days=7,
        reports_dir=str(reports_dir),
    )
    inventory = InventorySettings(default=StockShaping(buffer=Decimal(1)))
    return ConnectorSettings(flows=flows, service=service, inventory=inventory)


def sandbox_connector(
    reports_dir: Path, *, seed: int = 7, settings: ConnectorSettings | None = None
) -> tuple[Sandbox, Connector]:
    """A sandbox with the demo story played and a connector on it (memory ledger)."""
    sandbox = Sandbox(seed=seed)
    clock = sandbox.clock.utcnow
    settings = settings or sandbox_settings(reports_dir)
    connector = Connector.for_sandbox(
        sandbox,
        store=MemoryStore(clock=clock),
        mapping=MappingConfig(delivery_variant_code=_DELIVERY_CODE),
        settings=settings,
        worker_id="sandbox-service",
        clock=clock,
    )
    _play(sandbox, connector)
    return sandbox, connector


def _play(sandbox: Sandbox, connector: Connector) -> None:
    ow, shop = sandbox.orderwise, sandbox.scayle
    ow.add_variant(_DELIVERY_CODE)
    for n, (sku, _price, _rate) in enumerate(CATALOGUE):
        shop.add_variant(sku)
        ow.set_free_stock(sku, 20 + 7 * n)
    shop.add_variant(GHOST_SKU)
    for n, order_id in enumerate(range(5001, 5007)):
        sku, price, rate = CATALOGUE[n % len(CATALOGUE)]
        lines = [(sku, price, 1 + n % 2, rate)]
        if order_id == QUARANTINED_ORDER:
            lines = [(GHOST_SKU, 3500, 1, "0.20")]
        shop.add_order(
            make_order(order_id, lines, shipping=495, email=f"buyer{order_id}@example.com")
        )
    _deliver_webhooks(connector, shop.webhooks)
    connector.sync_orders()

    for order_id in _SHIPPED:
        ow.despatch(f"SCAYLE-{order_id}", courier="Royal Mail")
    _without_consignment(sandbox, f"SCAYLE-{UNACKNOWLEDGED_PARCEL}")
    ow.despatch(f"SCAYLE-{UNACKNOWLEDGED_PARCEL}", courier="Own van")
    connector.sync_fulfilments()

    ow.set_status(f"SCAYLE-{LATE_CANCELLATION}", "Picking")
    before = len(shop.webhooks)
    shop.cancel_order(LATE_CANCELLATION)
    _deliver_webhooks(connector, shop.webhooks[before:])
    connector.sync_cancellations()
    connector.sync_inventory()

    # An hour later: the parcel without a consignment is overdue and alerts.
    clock = sandbox.clock
    assert isinstance(clock, VirtualClock)
    clock.advance(3600)
    connector.sync_fulfilments()

    for n, order_id in enumerate(WAITING_ORDERS):
        sku, price, rate = CATALOGUE[n % len(CATALOGUE)]
        shop.add_order(make_order(order_id, [(sku, price, 1, rate)], shipping=495))


def _deliver_webhooks(connector: Connector, envelopes: Sequence[Mapping[str, Any]]) -> None:
    for envelope in envelopes:
        connector.ingest_webhook(json.dumps(envelope))


def _without_consignment(sandbox: Sandbox, reference: str) -> None:
    """Make OrderWise's order-changes export show ``reference``'s deliveries without a consignment
    number (as when the warehouse forgot to enter it)."""
    ow = sandbox.orderwise
    export_id = ow.export_definitions.order_changes
    original = ow._export_order_changes

    def export(params: Any) -> list[dict[str, Any]]:
        rows = original(params)
        return [
            {**row, "consignment": None}
            if row.get("deliveryNumber") and row.get("externalRef") == reference
            else row
            for row in rows
        ]

    ow.register_export(export_id, export, ["since"])
