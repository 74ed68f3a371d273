"""Quickstart: push SCAYLE orders to OrderWise and bring despatches back, with a SQLite ledger.

What it shows, end to end on the in-process sandbox (no network, no accounts):

1. four confirmed SCAYLE orders, one of them with a SKU that OrderWise does not know;
2. ``sync_orders()`` creates one OrderWise sales order per SCAYLE order (exactly once, even when
   run again) and writes the OrderWise reference back to SCAYLE; the order with the unknown SKU
   is *quarantined* with its reason instead of being lost;
3. the warehouse despatches two orders (one in part) and ``sync_fulfilments()`` turns each parcel
   into one SCAYLE shipment;
4. the variant is set up in OrderWise, a person releases the quarantined order, and the next pass
   pushes it;
5. the ledger (``SqliteStore``) shows every order's state and history.

Run it::

    python examples/quickstart.py            # ledger in a temporary folder
    python examples/quickstart.py ./ledger   # keep the ledger (ledger.db) in ./ledger

Adapting it to real systems: build the connector from settings instead of the sandbox, e.g.
``Connector.from_settings(ConnectorSettings.load("scayle-orderwise.toml"))`` with the SCAYLE token
and the OrderWise password in the environment (``SCAYLE_ORDERWISE_SCAYLE__TOKEN``,
``SCAYLE_ORDERWISE_ORDERWISE__PASSWORD``), then call the same ``sync_*`` methods on a schedule
(cron, a systemd timer, or ``scayle-orderwise sync all --watch``). Everything below that talks
to ``sandbox.scayle`` / ``sandbox.orderwise`` stands in for people and the warehouse.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scayle_orderwise.connector import Connector
from scayle_orderwise.sandbox import Sandbox, make_order
from scayle_orderwise.store import SqliteStore

CATALOGUE = ["TEE-BLK-M", "TEE-WHT-L", "BOOK-01", "MUG-02"]
NEW_SKU = "HOODIE-GRY-L"  # sold in the shop before anyone set it up in OrderWise
ORDERS: dict[int, list[tuple[str, int, int, str]]] = {
    5001: [("TEE-BLK-M", 2400, 2, "0.20")],
    5002: [("BOOK-01", 1250, 1, "0"), ("MUG-02", 999, 2, "0.20")],
    5003: [("TEE-WHT-L", 2400, 1, "0.20"), ("BOOK-01", 1250, 3, "0")],
    5004: [(NEW_SKU, 4995, 1, "0.20")],
}


def run(folder: Path) -> dict[str, Any]:
    """Run the story with the ledger in ``folder``; return what happened (also printed)."""
    folder.mkdir(parents=True, exist_ok=True)
    sandbox = Sandbox(seed=1)
    for sku in CATALOGUE:
        sandbox.orderwise.add_variant(sku)  # OrderWise refuses orders for variants it lacks
    for order_id, lines in ORDERS.items():
        sandbox.scayle.add_order(make_order(order_id, lines, shipping=495))

    store = SqliteStore(folder / "ledger.db")
    with Connector.for_sandbox(sandbox, store=store, worker_id="quickstart") as connector:
        first = connector.sync_orders()
        print(f"1. sync_orders:      {dict(first.counts)}")
        again = connector.sync_orders()
        print(f"   run again:        {dict(again.counts) or 'nothing to do'}")
        quarantined = store.get("order:5004")
        if quarantined is not None:
            print(f"   order 5004 is {quarantined.state}: {quarantined.reason}")

        # The warehouse despatches 5001 in full and 5002 in part (the book leaves first).
        sandbox.orderwise.despatch("SCAYLE-5001", courier="Royal Mail")
        sandbox.orderwise.despatch("SCAYLE-5002", courier="DPD", lines=["BOOK-01"])
        shipped = connector.sync_fulfilments()
        print(f"2. sync_fulfilments: {dict(shipped.counts)}")

        # Someone sets the variant up in OrderWise and releases the order.
        sandbox.orderwise.add_variant(NEW_SKU)
        connector.release_quarantined(5004, reason="variant set up in OrderWise")
        retried = connector.sync_orders()
        print(f"3. after release:    {dict(retried.counts)}")

        print("\nledger (order records):")
        for record in store.records(kind="order"):
            reference = sandbox.scayle.orders[int(record.subject)].get("referenceKey")
            print(
                f"  order {record.subject}: {record.state:<13} OrderWise id {record.external_id}, "
                f"SCAYLE referenceKey {reference}"
            )
        history = store.get("order:5004")
        if history is not None:
            print("\nhistory of order 5004:")
            for step in history.history:
                before = step.from_state or "(new)"
                print(f"  {step.at:%H:%M:%S} {before} -> {step.to_state}  {step.reason or ''}")

        health = connector.health()
        outcome: dict[str, Any] = {
            "folder": folder,
            "orders": len(ORDERS),
            "orderwise_sales_orders": len(sandbox.orderwise.sales_orders),
            "quarantined_first_pass": first.counts["quarantined"],
            "shipments": len(sandbox.scayle.shipments),
            "ledger": {str(state): n for state, n in health.counts.items() if n},
            "healthy": health.ok,
        }
    print(
        f"\n{outcome['orders']} SCAYLE orders -> {outcome['orderwise_sales_orders']} OrderWise "
        f"sales orders, {outcome['shipments']} SCAYLE shipments; ledger {outcome['ledger']}; "
        f"healthy: {outcome['healthy']}"
    )
    print(f"ledger file: {folder / 'ledger.db'}")
    return outcome


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line: an optional folder for the ledger (default: a temporary folder)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args:
        return run(Path(args[0]))
    with tempfile.TemporaryDirectory(prefix="scayle-orderwise-quickstart-") as tmp:
        outcome = run(Path(tmp))
    print("(a temporary folder, now removed: pass a folder to keep the ledger)")
    return outcome


if __name__ == "__main__":
    main()
