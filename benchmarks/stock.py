"""Stock: changed-only pushes vs a naive full push, paced under SCAYLE's per-scope rate limit.

    python benchmarks/stock.py [--quick] [--workers N]

The SCAYLE fake enforces ``stocksWrite`` (2,500 per minute in production) scaled down to 50 calls
per 1-second window, on a frozen ``VirtualClock``: time moves only when the client sleeps, so the
script runs fast and the pacing is measured exactly, in virtual seconds. OrderWise holds free
stock for SKUs at two stock locations, mapped to the SCAYLE warehouses ``WH1`` and ``WH2``.

Pass 1 publishes every (SKU, warehouse) pair. Each later round touches a share of the SKUs in
OrderWise: some figures change what SCAYLE may sell, others do not (``12`` → ``12.4`` still
sells 12; ``-3`` → ``-5`` still sells 0; a recalculation with the same figure; the other location
of a touched SKU is re-read but unchanged). Per pass the script compares the pushes made with the
number of pairs whose sellable figure changed (computed here independently: ``floor(max(0,
free))``), the rows the export returned, and a naive full push of every pair.

Targets: pushes equal the changed pairs in every pass; SCAYLE ends with the expected figure for
every pair; no 429 answer at all (the client's per-scope budget paces the calls). The pacing is
reported as virtual seconds used against the theoretical minimum ``(ceil(pushes / 50) - 1)``
windows. Note: the virtual clock adds up the sleeps of concurrent workers (a real clock would
overlap them), so with ``--workers`` above 1 the virtual time over-states the real wait.
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from _common import Check, console, finish, machine, print_table

from scayle_orderwise.config import FlowSettings, InventorySettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.sandbox import Sandbox
from scayle_orderwise.sandbox.clock import VirtualClock
from scayle_orderwise.store import MemoryStore

LIMIT = 50
WINDOW = 1.0
LOCATIONS = {1: "WH1", 2: "WH2"}
T0 = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)


def sellable(free: Decimal) -> int:
    """What SCAYLE may sell of ``free`` under the default shaping."""
    return max(0, math.floor(free))


def touch(rng: random.Random, free: Decimal) -> Decimal:
    """A new OrderWise figure: a real change, or one that leaves the sellable figure alone."""
    kind = rng.random()
    if kind < 0.55:  # sold or received: the sellable figure moves
        new = Decimal(max(-2, int(free) + rng.choice((-3, -2, -1, 1, 2, 5, 10))))
        return new if sellable(new) != sellable(free) else new + 7
    if kind < 0.75:  # a fraction that does not cross a whole unit
        return Decimal(math.floor(free)) + Decimal(rng.choice(("0.25", "0.4", "0.75")))
    if kind < 0.85 and free <= 0:  # deeper below zero: still 0 to sell
        return free - 2
    return free  # recalculated, same figure


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few SKUs, few rounds")
    parser.add_argument("--workers", type=int, default=4, help="push thread pool size (default 4)")
    args = parser.parse_args(argv)
    skus = [f"SKU-{n:05d}" for n in range(80 if args.quick else 1500)]
    shares = (0.1, 0.3) if args.quick else (0.01, 0.05, 0.1, 0.3, 1.0)
    check = Check(quick=args.quick)
    rng = random.Random(5)

    clock = VirtualClock(frozen=True)
    sandbox = Sandbox(
        seed=3,
        clock=clock,
        scayle_options={"rate_limits": {"stocksWrite": LIMIT}, "rate_window": WINDOW},
    )
    sandbox.scayle.add_warehouse("WH2")
    for sku in skus:
        sandbox.scayle.add_variant(sku)
    connector = Connector.for_sandbox(
        sandbox,
        store=MemoryStore(),
        flows=FlowSettings(backoff_base_seconds=0),
        inventory=InventorySettings(
            default_warehouse="WH1",
            location_warehouses={str(k): v for k, v in LOCATIONS.items()},
            max_workers=args.workers,
        ),
        clock=clock.utcnow,
    )
    free: dict[tuple[str, int], Decimal] = {}
    for sku in skus:
        for location in LOCATIONS:
            free[(sku, location)] = Decimal(rng.choice((-3, 0, 0, 1, 2, 5, 12, 40, 250)))
            sandbox.orderwise.set_free_stock(
                sku, free[(sku, location)], stock_location_id=location, at=T0
            )
    published: dict[tuple[str, int], int | None] = dict.fromkeys(free)

    rows: list[tuple[Any, ...]] = []
    pushes_total = changed_total = full_total = 0
    virtual_total = minimum_total = 0.0
    for round_no, share in enumerate((None, *shares)):
        at = T0 + timedelta(minutes=10 * (round_no + 1))
        if share is not None:
            for sku in rng.sample(skus, max(1, int(len(skus) * share))):
                for location in LOCATIONS:
                    if location == 1 or rng.random() < 0.3:  # often only one location moves
                        free[(sku, location)] = touch(rng, free[(sku, location)])
                    sandbox.orderwise.set_free_stock(
                        sku, free[(sku, location)], stock_location_id=location, at=at
                    )
        expected = {pair: sellable(q) for pair, q in free.items()}
        changed = sum(1 for pair, q in expected.items() if published[pair] != q)
        posts_before = len(sandbox.scayle.stock_updates)
        started = clock.monotonic()
        result = connector.sync_inventory()
        virtual = clock.monotonic() - started
        pushes = len(sandbox.scayle.stock_updates) - posts_before
        minimum = max(0, math.ceil(pushes / LIMIT) - 1) * WINDOW
        published = expected
        pushes_total += pushes
        changed_total += changed
        full_total += len(free)
        virtual_total += virtual
        minimum_total += minimum
        rows.append(
            (
                "initial" if share is None else f"{share:.0%} of SKUs touched",
                result.rows_read,
                changed,
                pushes,
                len(free),
                f"{pushes / len(free):.3f}",
                f"{virtual:.1f}",
                f"{minimum:.1f}",
            )
        )
        check.invariant(
            f"pass {round_no}: pushes == pairs whose sellable figure changed ({pushes} vs {changed})",
            pushes == changed == result.pushed,
        )

    wrong = [
        (sku, LOCATIONS[loc])
        for (sku, loc), q in published.items()
        if sandbox.scayle.stock(sku, LOCATIONS[loc]) != q
    ]
    statuses = [code for _m, path, code in sandbox.scayle.requests if path.endswith("/stocks")]
    too_many = statuses.count(429)

    console.print(f"machine: {machine()}")
    console.print(
        f"{len(skus)} SKUs x {len(LOCATIONS)} warehouses = {len(free)} pairs; stocksWrite limited "
        f"to {LIMIT} per {WINDOW:g} s (virtual); {args.workers} push worker(s)"
    )
    print_table(
        "Stock pushes: changed-only vs a naive full push",
        [
            "pass",
            "rows read",
            "changed pairs",
            "pushes",
            "full push",
            "pushes / full",
            "virtual s",
            "minimum s",
        ],
        rows,
    )
    console.print(
        f"total: {pushes_total} pushes for {changed_total} changed pairs; a full push every pass "
        f"would send {full_total} ({pushes_total / full_total:.3f} of it, "
        f"{full_total / max(1, pushes_total):.1f}x fewer calls); {len(statuses)} stock calls, "
        f"{too_many} answered 429; pacing {virtual_total:.1f} virtual s against a minimum of "
        f"{minimum_total:.1f} s"
    )
    check.invariant(
        f"SCAYLE holds the expected figure for every pair ({len(wrong)} wrong)", not wrong
    )
    check.invariant(
        f"no 429 from SCAYLE: the budget paces the calls ({too_many} received)", too_many == 0
    )
    check.invariant(
        f"no call beyond the pushes ({len(statuses)} stock calls for {pushes_total} pushes)",
        len(statuses) == pushes_total,
    )
    finish(check)


if __name__ == "__main__":
    main()
