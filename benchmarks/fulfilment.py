"""Fulfilment: one pass over N despatched orders, linear in N (against the 0.1.0 shape).

    python benchmarks/fulfilment.py [--quick] [--sizes 300,1000,5000] [--store sqlite|memory]

For each size the script pushes N orders to the OrderWise fake (two lines, three units each),
despatches every one of them in OrderWise with its own consignment, and times **one**
``sync_fulfilments()`` pass: it reads the N despatches, records N packages and sends N shipments to
SCAYLE. Setup (pushing, despatching) is not timed.

Two shapes run side by side, on a fresh sandbox and ledger each:

- **new**: the library as it is. Under the per-order hold, the units other packages of the order
  reserved are read from the packages the hold lists (one ledger read per package of the order).
- **0.1.0**: the same pass with the reservation lookup of 0.1.0 patched back in: a walk over every
  open package record in the ledger, once per order. All N packages are open during the pass, so
  its cost grows with N per order, N² per pass.

Per shape the table shows the pass's wall and CPU time, the CPU time per order and its ratio to
the CPU time per order at the smallest size (CPU time, because the pass runs on one thread with the
fakes in-process, and other work on a shared machine inflates wall time unevenly). A linear pass
keeps that ratio near 1 whatever N; a quadratic one grows with N. Before each timed pass the setup's
objects are frozen out of the garbage collector's way (``gc.freeze``), so the sandbox's own
history does not count as the pass's work. Target: the new shape's ratio at the largest size is at most 2. Invariants: every order got
exactly one shipment holding all its units, in both shapes. ``--old-max`` caps the sizes the 0.1.0
shape runs at (its largest run alone takes minutes).
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import Check, console, finish, machine, print_table

from scayle_orderwise.config import FlowSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.sandbox import Sandbox, make_order
from scayle_orderwise.store import IdempotencyStore, MemoryStore, SqliteStore
from scayle_orderwise.sync import order_hold
from scayle_orderwise.sync.order_units import open_reservations

SKUS = ("TEE-0001", "MUG-0002")
LINES = ((SKUS[0], 1500, 2, "0.20"), (SKUS[1], 899, 1, "0.20"))
FLOWS = FlowSettings(batch_size=200, backoff_base_seconds=0)


def _store(kind: str, folder: Path, name: str) -> IdempotencyStore:
    if kind == "memory":
        return MemoryStore()
    return SqliteStore(str(folder / f"{name}.db"))


@contextmanager
def shape(old: bool) -> Iterator[None]:
    """Patch the 0.1.0 reservation lookup (a walk over every open package) in while ``old``."""
    if not old:
        yield
        return
    original = order_hold.OrderHold.reservations

    def scan_everything(self: order_hold.OrderHold) -> set[int]:
        return open_reservations(self.ctx, int(self.order_id))

    order_hold.OrderHold.reservations = scan_everything  # type: ignore[method-assign]
    try:
        yield
    finally:
        order_hold.OrderHold.reservations = original  # type: ignore[method-assign]


def run_one(size: int, store_kind: str, folder: Path, old: bool) -> dict[str, Any]:
    """Set up ``size`` despatched orders and time one fulfilment pass."""
    sandbox = Sandbox(seed=size)
    for sku in SKUS:
        sandbox.orderwise.add_variant(sku)
        sandbox.scayle.add_variant(sku)
    store = _store(store_kind, folder, f"{'old' if old else 'new'}-{size}")
    connector = Connector.for_sandbox(sandbox, store=store, flows=FLOWS)
    first = 500_000
    for n in range(size):
        sandbox.scayle.add_order(make_order(first + n, LINES, shipping=395))
    pushed = connector.sync_orders()
    assert pushed["pushed"] == size, pushed
    for n in range(size):
        order_id = first + n
        # The eCommerceOrderNumber (the write-back to SCAYLE may still wait for its rate budget).
        reference = f"SCAYLE-{order_id}"
        sandbox.orderwise.despatch(reference, consignment=f"CN{order_id}", courier="DPD")
    gc.collect()
    gc.freeze()  # the setup's objects (sandbox history, parsed orders) are not the pass's to scan
    with shape(old):
        start, cpu = time.perf_counter(), time.process_time()
        result = connector.sync_fulfilments()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    gc.unfreeze()
    per_order = {body["orderId"]: len(body["items"]) for body in sandbox.scayle.shipments}
    complete = (
        len(sandbox.scayle.shipments) == size
        and len(per_order) == size
        and all(count == 3 for count in per_order.values())
    )
    connector.close()
    console.print(
        f"  {'0.1.0' if old else 'new'} shape, {size:,} orders: pass {seconds:.1f} s "
        f"({cpu:.1f} CPU s)"
    )
    return {
        "size": size,
        "seconds": seconds,
        "cpu": cpu,
        "shipped": result["shipped"],
        "complete": complete,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (correctness only)")
    parser.add_argument("--sizes", default="300,1000,5000", help="comma-separated order counts")
    parser.add_argument("--store", choices=("sqlite", "memory"), default="sqlite")
    parser.add_argument(
        "--old-max", type=int, default=5000, help="largest size the 0.1.0 shape runs at"
    )
    args = parser.parse_args()
    sizes = [30, 100] if args.quick else [int(s) for s in args.sizes.split(",")]
    check = Check(quick=args.quick)
    console.print(f"Fulfilment pass per size ({args.store} ledger) on {machine()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for label, old in (("new", False), ("0.1.0", True)):
            runs = [
                run_one(n, args.store, folder, old) for n in sizes if not old or n <= args.old_max
            ]
            if not runs:
                continue
            base = runs[0]["cpu"] / runs[0]["size"]
            for run in runs:
                per_order = run["cpu"] / run["size"]
                run["ratio"] = per_order / base
                rows.append(
                    (
                        label,
                        f"{run['size']:,}",
                        f"{run['seconds']:.2f}",
                        f"{run['cpu']:.2f}",
                        f"{per_order * 1000:.2f}",
                        f"{run['ratio']:.2f}x",
                    )
                )
                check.invariant(
                    f"{label} {run['size']:,}: every order shipped once with all its units "
                    f"({run['shipped']:,} shipments)",
                    run["complete"],
                )
            if not old:
                worst = runs[-1]["ratio"]
                check.timing(
                    f"new: CPU ms per order at {runs[-1]['size']:,} <= 2.0x at {runs[0]['size']:,} "
                    f"({worst:.2f}x)",
                    worst <= 2.0,
                )
            else:
                console.print(
                    f"0.1.0 shape: CPU ms per order at {runs[-1]['size']:,} is "
                    f"{runs[-1]['ratio']:.2f}x that at {runs[0]['size']:,}"
                )
    print_table(
        "One fulfilment pass: time per order against the smallest size",
        ["shape", "orders", "wall s", "CPU s", "CPU ms / order", "vs smallest"],
        rows,
    )
    finish(check)


if __name__ == "__main__":
    main()
