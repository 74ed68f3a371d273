"""Order push: API calls per order in steady state, and orders per second on the sandbox.

    python benchmarks/order_push.py [--quick] [--dsn postgresql://...]

A connector first imports a history of orders (the warm-up pass also fetches the OrderWise token,
a one-off call that is left out of every count). Then, per store (``MemoryStore``, ``SqliteStore``
on a temporary file, and ``PostgresStore`` when a DSN is given with ``--dsn`` or
``SCAYLE_ORDERWISE_STORE__URL``), batches of new orders are pushed in the two steady states the
library supports, counting every request the two fakes record (``sandbox.scayle.requests`` +
``sandbox.orderwise.requests``):

* webhook-driven: ``order-confirmed`` webhooks go through ``Connector.ingest_webhook``, then
  ``sync_orders(poll=False)``: per order ``GET order`` (webhook payloads are never trusted for
  money), ``POST sales/order``, ``PUT reference-key``, and per claimed batch (10 orders by default)
  one lookup of every reference in OrderWise (``POST export-definition/106``), because each order
  is checked before its create;
* poll-driven: ``sync_orders()`` walks the SCAYLE order list (one page per 100 orders *listed*,
  history included; polled orders are not fetched again), then ``POST`` + ``PUT`` per new order
  and one lookup per claimed batch.

Orders per second are measured on the webhook-driven batch (ingest + push + write-back, the
in-process fakes' own work included). A sweep shows how the poll's page reads amortise with the
number of new orders per pass. Targets: at most 3.2 calls per order webhook-driven and 3 poll-driven;
at most 4 SQLite write transactions per pushed order (``BEGIN IMMEDIATE`` statements: intake, claim,
recovery point, acknowledgement; the webhook's de-duplication note included); every order exactly
once in OrderWise with its reference written back to SCAYLE.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import (
    Check,
    catalogue_sandbox,
    console,
    finish,
    machine,
    mapping_config,
    mixed_orders,
    print_table,
)

from scayle_orderwise.config import STORE_URL_ENV, FlowSettings, postgres_dsn_from_env
from scayle_orderwise.connector import Connector
from scayle_orderwise.mapping import OrderMapper
from scayle_orderwise.store import IdempotencyStore, MemoryStore, SqliteStore, State

# Write-backs wait for SCAYLE's ordersWrite budget here (the sandbox's clock is virtual, so waiting
# costs no time) rather than waiting in the ledger: every order's whole cost lands in one pass.
FLOWS = FlowSettings(
    backoff_base_seconds=0, resend_grace_seconds=0, reference_write_max_wait_seconds=3600
)
TARGET_CALLS = {"webhook": 3.2, "poll": 3.0}
TARGET_WRITES = 4.0
PG_ENV = STORE_URL_ENV  # a postgresql:// DSN; the old SCAYLE_ORDERWISE_TEST_PG_DSN still works


def calls_since(sandbox: Any, marks: tuple[int, int]) -> list[tuple[str, str, int]]:
    """Requests both fakes recorded since ``marks``, without the one-off OrderWise token call."""
    made = sandbox.scayle.requests[marks[0] :] + sandbox.orderwise.requests[marks[1] :]
    return [r for r in made if "/token/" not in r[1]]


def marks(sandbox: Any) -> tuple[int, int]:
    return len(sandbox.scayle.requests), len(sandbox.orderwise.requests)


def kinds(requests: Sequence[tuple[str, str, int]]) -> str:
    """``POST order 500, PUT ref 500, ...``: requests by kind (order ids collapsed)."""
    named: Counter[str] = Counter()
    for method, path, _ in requests:
        if path.endswith("/reference-key"):
            named["PUT ref"] += 1
        elif path.endswith("/orders"):
            named["GET list"] += 1
        elif "/orders/" in path:
            named["GET order"] += 1
        elif path.endswith("/sales/order"):
            named["POST order"] += 1
        else:
            named[f"{method} {path.rsplit('/', 1)[-1]}"] += 1
    return ", ".join(f"{k} {v}" for k, v in named.most_common())


class Scenario:
    """One sandbox + connector + store with a history of imported orders."""

    def __init__(self, store: IdempotencyStore, history: int, seed: int) -> None:
        self.sandbox = catalogue_sandbox(seed=seed)
        self.connector = Connector.for_sandbox(
            self.sandbox,
            store=store,
            mapping=OrderMapper(mapping_config()),
            flows=FLOWS,
            worker_id="bench",
        )
        self.next_id = 1_000_000
        self.writes = 0
        self.ids: list[int] = []
        self.add(history)
        self.connector.sync_orders()  # warm-up: history, token

    def add(self, count: int) -> list[int]:
        orders = mixed_orders(count, seed=self.next_id, first_id=self.next_id)
        self.next_id += count
        for order in orders:
            self.sandbox.scayle.add_order(order)
        ids = [o["id"] for o in orders]
        self.ids += ids
        return ids

    def _count_writes(self) -> None:
        # SQLite only: every write transaction of the store opens with BEGIN IMMEDIATE.
        conn = getattr(self.connector.store, "_conn", None)
        if conn is not None:
            self.writes = 0

            def trace(statement: str) -> None:
                if statement.startswith("BEGIN IMMEDIATE"):
                    self.writes += 1

            conn.set_trace_callback(trace)

    def webhook_pass(self, count: int) -> tuple[int, float, list[tuple[str, str, int]]]:
        first_hook = len(self.sandbox.scayle.webhooks)
        self.add(count)
        before = marks(self.sandbox)
        self._count_writes()
        start = time.perf_counter()
        for envelope in self.sandbox.scayle.webhooks[first_hook:]:
            self.connector.ingest_webhook(json.dumps(envelope))
        pushed = self.connector.sync_orders(poll=False).pushed
        return pushed, time.perf_counter() - start, calls_since(self.sandbox, before)

    def poll_pass(self, count: int) -> tuple[int, float, list[tuple[str, str, int]]]:
        self.add(count)
        before = marks(self.sandbox)
        self._count_writes()
        start = time.perf_counter()
        pushed = self.connector.sync_orders().pushed
        return pushed, time.perf_counter() - start, calls_since(self.sandbox, before)

    def problems(self) -> list[str]:
        """Orders not exactly once in OrderWise, or without their reference written back."""
        per_ref = Counter(
            b["orderHeader"]["eCommerceOrderNumber"] for b in self.sandbox.orderwise.sales_orders
        )
        bad = [
            f"{i}: {per_ref[f'SCAYLE-{i}']} sales orders"
            for i in self.ids
            if per_ref[f"SCAYLE-{i}"] != 1
        ]
        bad += [
            f"{i}: reference not written"
            for i in self.ids
            if self.sandbox.scayle.orders[i]["referenceKey"] != f"SCAYLE-{i}"
        ]
        acked = self.connector.store.counts(kind="order").get(State.ACKNOWLEDGED, 0)
        if acked != len(self.ids):
            bad.append(f"{acked} acknowledged ledger records for {len(self.ids)} orders")
        return bad


def stores(dsn: str | None, tmp: Path) -> list[tuple[str, Callable[[], IdempotencyStore]]]:
    made: list[tuple[str, Callable[[], IdempotencyStore]]] = [
        ("MemoryStore", MemoryStore),
        ("SqliteStore", lambda: SqliteStore(tmp / f"ledger-{time.monotonic_ns()}.db")),
    ]
    if dsn:
        from scayle_orderwise.store import PostgresStore

        schema = f"bench_{os.getpid()}_{time.monotonic_ns() % 10**8}"
        made.append(("PostgresStore", lambda: PostgresStore(dsn, schema=schema)))
    return made


def drop_schema(dsn: str, store: IdempotencyStore) -> None:
    """Drop the benchmark's PostgreSQL schema."""
    import psycopg
    from psycopg import sql

    schema = getattr(store, "schema", None)
    if not schema:
        return
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small batches")
    parser.add_argument(
        "--dsn", default=postgres_dsn_from_env(), help=f"PostgreSQL DSN (default: ${PG_ENV})"
    )
    args = parser.parse_args(argv)
    history = 100 if args.quick else 2000
    batch = 50 if args.quick else 1000
    sweep = (10, 50) if args.quick else (10, 25, 100, 500)
    check = Check(quick=args.quick)
    console.print(f"machine: {machine()}")
    console.print(
        f"history {history} orders already imported; steady-state batches of {batch} new orders"
    )

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in stores(args.dsn, Path(tmp)):
            store = make()
            try:
                scenario = Scenario(store, history, seed=7)
                pushed_w, secs_w, reqs_w = scenario.webhook_pass(batch)
                writes_w = scenario.writes / batch
                pushed_p, secs_p, reqs_p = scenario.poll_pass(batch)
                writes_p = scenario.writes / batch
                problems = scenario.problems()
            finally:
                if name == "PostgresStore" and args.dsn:
                    drop_schema(args.dsn, store)
                close = getattr(store, "close", None)
                if close is not None:
                    close()
            per_w, per_p = len(reqs_w) / batch, len(reqs_p) / batch
            sqlite = name == "SqliteStore"
            rows.append(
                (
                    name,
                    "webhook",
                    pushed_w,
                    f"{per_w:.2f}",
                    f"{writes_w:.2f}" if sqlite else "-",
                    f"{batch / secs_w:,.0f}",
                    kinds(reqs_w),
                )
            )
            rows.append(
                (
                    name,
                    "poll",
                    pushed_p,
                    f"{per_p:.2f}",
                    f"{writes_p:.2f}" if sqlite else "-",
                    f"{batch / secs_p:,.0f}",
                    kinds(reqs_p),
                )
            )
            if sqlite:
                for intake, writes in (("webhook", writes_w), ("poll", writes_p)):
                    check.invariant(
                        f"{name}: {intake}-driven write transactions per order <= "
                        f"{TARGET_WRITES:g} ({writes:.2f})",
                        writes <= TARGET_WRITES,
                    )
            check.invariant(
                f"{name}: every order exactly once in OrderWise, reference written back "
                f"({len(problems)} problems{': ' + '; '.join(problems[:3]) if problems else ''})",
                not problems and pushed_w == batch and pushed_p == batch,
            )
            for intake, per in (("webhook", per_w), ("poll", per_p)):
                check.invariant(
                    f"{name}: {intake}-driven calls per order <= {TARGET_CALLS[intake]:g} "
                    f"({per:.2f})",
                    per <= TARGET_CALLS[intake],
                )
    if not args.dsn:
        console.print(f"PostgresStore skipped: no --dsn and {PG_ENV} is not set")
    print_table(
        f"Steady state: {batch} new orders per pass over {history} imported",
        [
            "store",
            "intake",
            "pushed",
            "calls / order",
            "writes / order",
            "orders / s",
            "calls by kind",
        ],
        rows,
    )

    # How the poll's page reads amortise: MemoryStore, a history of `history` orders listed.
    sweep_rows = []
    scenario = Scenario(MemoryStore(), history, seed=8)
    for new in sweep:
        pushed, secs, reqs = scenario.poll_pass(new)
        pages = sum(1 for _, path, _ in reqs if path.endswith("/orders"))
        sweep_rows.append(
            (
                new,
                len(scenario.ids),
                pages,
                f"{len(reqs) / new:.2f}",
                f"{secs * 1000:,.0f}",
                f"{pushed / secs:,.0f}",
            )
        )
    check.invariant("poll sweep: every order exactly once", not scenario.problems())
    print_table(
        "Poll-driven passes: calls per order = 2 + (list pages + lookups) / new orders",
        ["new / pass", "orders listed", "list pages", "calls / order", "ms / pass", "orders / s"],
        sweep_rows,
    )
    finish(check)


if __name__ == "__main__":
    main()
