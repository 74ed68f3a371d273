"""The shared rate budget: what it costs per call, and what it buys with many workers.

    python benchmarks/rate_budget.py [--dsn postgresql://...] [--calls 3000] [--quick]

Cost: ``reserve()`` of a scope with plenty of budget, called back to back by 4 threads of one
process (a busy stock pass), for the per-process ``RateBudget`` (0.1.0) and the shared budget on
each store, with leased blocks (at most 10 calls, the default) and without (``max_lease=1``: one
ledger transaction per call). Figures: microseconds per call and ledger transactions per call.

Effect: a simulation of 8 workers calling ``ordersWrite`` (300 a minute) for five minutes against a
server that counts in fixed windows as SCAYLE does, 100 ms per call: with a budget each, and with one
shared budget (429 answers, calls accepted).

Targets: leasing keeps the shared budget under one ledger transaction per 5 calls at full speed;
the simulated shared workers get no 429 and at least 95 % of what the limit allows.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import Check, console, finish, machine, print_table
from _peak import PG_ENV, pg_schema

from scayle_orderwise._http import RateBudget
from scayle_orderwise.config import postgres_dsn_from_env
from scayle_orderwise.store import MemoryStore, SqliteStore
from scayle_orderwise.store.rate_ledger import MemoryRateLedger
from scayle_orderwise.store.shared_budget import SharedRateBudget
from scayle_orderwise.testing.rate_simulation import simulate

SCOPE = "stocksWrite"
PLENTY = {SCOPE: (10**9, 60.0)}


def hammer(budget: RateBudget, calls: int, threads: int = 4) -> float:
    """Seconds per ``reserve()`` when ``threads`` threads make ``calls`` calls in all."""
    each = calls // threads
    barrier = threading.Barrier(threads + 1)

    def run() -> None:
        barrier.wait()
        for _ in range(each):
            if budget.reserve(SCOPE) != 0.0:
                raise RuntimeError("the budget ran out")

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    return (time.perf_counter() - started) / (each * threads)


def cost_rows(dsn: str | None, calls: int) -> tuple[list[list[Any]], dict[str, float]]:
    rows: list[list[Any]] = []
    ratios: dict[str, float] = {}
    baseline = hammer(RateBudget(limits=PLENTY), calls)
    rows.append(["RateBudget (per process, 0.1.0)", "-", f"{baseline * 1e6:.1f}", "-"])
    stores: list[tuple[str, Callable[[], Any]]] = [
        ("MemoryStore", MemoryStore),
        ("SqliteStore", lambda: SqliteStore(Path(tempfile.mkdtemp()) / "ledger.db")),
    ]
    if dsn:
        from scayle_orderwise.store import PostgresStore

        stores.append(("PostgresStore", lambda: PostgresStore(dsn, schema=SCHEMA[0])))
    for name, make in stores:
        for lease in (1, 10):
            store = make()
            budget = SharedRateBudget.for_store(store, limits=PLENTY, max_lease=lease)
            assert budget is not None
            per_call = hammer(budget, calls)
            per_txn = budget.ledger_calls / calls
            ratios[f"{name}/{lease}"] = per_txn
            rows.append(
                [
                    f"SharedRateBudget on {name}",
                    "1 (no lease)" if lease == 1 else f"up to {lease}",
                    f"{per_call * 1e6:.1f}",
                    f"{per_txn:.3f}",
                ]
            )
            budget.close()
            store.close()
    return rows, ratios


SCHEMA = [""]


def effect_rows(quick: bool) -> tuple[list[list[Any]], dict[str, Any]]:
    rows = []
    outcomes = {}
    duration = 120.0 if quick else 300.0
    for shared in (False, True):
        clock = [0.0]

        def now(clock: list[float] = clock) -> float:
            return clock[0]

        budgets: list[RateBudget]
        if shared:
            ledger = MemoryRateLedger()
            limits = {"ordersWrite": (300, 60.0)}
            budgets = [SharedRateBudget(ledger, clock=now, limits=limits) for _ in range(8)]
        else:
            budgets = [RateBudget(clock=now) for _ in range(8)]
        outcome = simulate(
            budgets, limit=300, window=60.0, duration=duration, latency=0.1, seed=1, clock=clock
        )
        outcomes[shared] = outcome
        rows.append(
            [
                "one shared budget" if shared else "a budget per worker (0.1.0)",
                outcome.accepted + outcome.refused,
                outcome.refused,
                f"{outcome.refused / max(1, outcome.accepted + outcome.refused):.1%}",
                f"{outcome.accepted / outcome.feasible:.1%}",
            ]
        )
    return rows, outcomes


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=postgres_dsn_from_env(), help="PostgreSQL DSN")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="400 calls, 2 simulated minutes")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls = 400
    check = Check(quick=args.quick)
    console.width = 150  # wide tables
    console.print(f"machine: {machine()}")
    if args.dsn:
        with pg_schema(args.dsn) as schema:
            SCHEMA[0] = schema
            rows, ratios = cost_rows(args.dsn, args.calls)
    else:
        console.print(f"PostgreSQL skipped (no --dsn or {PG_ENV})")
        rows, ratios = cost_rows(None, args.calls)
    print_table(
        f"reserve() back to back, 4 threads, {args.calls:,} calls",
        ["budget", "leased block", "µs per call", "ledger transactions per call"],
        rows,
    )
    for key, per_txn in ratios.items():
        if key.endswith("/10"):
            check.timing(
                f"{key.split('/')[0]}: leasing keeps it under 0.2 ledger transactions per call "
                f"({per_txn:.3f})",
                per_txn <= 0.2,
            )
    effect, outcomes = effect_rows(args.quick)
    print_table(
        "8 workers, ordersWrite 300/min, 100 ms per call (simulated)",
        ["budget", "calls", "429", "429 share", "of what the limit allows"],
        effect,
    )
    shared = outcomes[True]
    check.invariant(f"shared budget: no 429 ({shared.refused})", shared.refused == 0)
    check.timing(
        f"shared budget: >= 95 % of the limit ({shared.accepted / shared.feasible:.1%})",
        shared.accepted >= 0.95 * shared.feasible,
    )
    finish(check)


if __name__ == "__main__":
    main()
