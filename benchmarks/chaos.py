"""Chaos: thousands of orders under mixed faults and crashes, several workers, one ledger.

    python benchmarks/chaos.py [--quick] [--dsn postgresql://...] [--orders N] [--workers W]

Workers are threads, each acting as a separate machine: its own ``PostgresStore`` connection (DSN
from ``--dsn`` or ``SCAYLE_ORDERWISE_STORE__URL``, a fresh schema dropped afterwards; without a
DSN a shared SQLite file, with a note) and its own connector with a stable ``worker_id``. Orders
arrive in waves while the workers run passes under mixed faults on both fakes (5xx answers,
timeouts before and after the server committed, 429s, and ``SimulatedCrash`` after a commit,
which kills the worker mid-order; it restarts with the same id and a fresh connection). Then the
faults stop and every worker runs once more, taking back the claims it held when it died.

Planted among the orders: unknown SKUs (not in the SKU map), SKUs OrderWise does not know, an
unknown VAT rate and totals that do not add up; each must end quarantined with its reason.

Targets: duplicates 0 (no SCAYLE order has two OrderWise sales orders), lost 0 (every good order
reached OrderWise exactly once, is acknowledged in the ledger and has its reference written back
to SCAYLE), every planted order quarantined with the expected reason, and faults of every kind
actually injected.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
from _common import CATALOGUE, Check, console, finish, machine, mixed_orders, print_table

from scayle_orderwise.config import STORE_URL_ENV, FlowSettings, postgres_dsn_from_env
from scayle_orderwise.connector import Connector
from scayle_orderwise.mapping import OrderMapper
from scayle_orderwise.sandbox import Faults, Sandbox, SimulatedCrash
from scayle_orderwise.store import IdempotencyStore, SqliteStore, State
from scayle_orderwise.testing.strategies import (
    SERVICE_SKU,
    build_order_json,
    strategy_mapping_config,
)

PG_ENV = STORE_URL_ENV  # a postgresql:// DSN; the old SCAYLE_ORDERWISE_TEST_PG_DSN still works
FLOWS = FlowSettings(backoff_base_seconds=0, resend_grace_seconds=0, lease_seconds=300)
MIXED = Faults(
    error_rate=0.05,
    timeout_before_rate=0.04,
    timeout_after_commit_rate=0.04,
    rate_limit_rate=0.04,
    crash_after_commit_rate=0.01,
    seed=11,
)
KNOWN_TO_MAPPING = [*CATALOGUE, SERVICE_SKU, "NEWIN-0001", "NEWIN-0002"]
"""The SKU map: every catalogue SKU, plus two new-in SKUs that OrderWise does not know yet."""


def plant(sandbox: Sandbox, first_id: int) -> dict[int, str]:
    """Add orders that must be quarantined; returns order id -> expected reason code."""
    planted: dict[int, str] = {}
    specs: list[tuple[str, dict[str, Any]]] = [
        ("unknown_sku", build_order_json(first_id, [("GHOST-1", 1999, "0.2")], delivery=395)),
        (
            "unknown_sku",
            build_order_json(first_id + 1, [("TEE-0001", 999, "0.2"), ("GHOST-2", 500, "0.2")]),
        ),
        ("unknown_sku", build_order_json(first_id + 2, [("GHOST-3", 2500, "0")])),
        ("unknown_variant", build_order_json(first_id + 3, [("NEWIN-0001", 4500, "0.2")])),
        (
            "unknown_variant",
            build_order_json(first_id + 4, [("NEWIN-0002", 1250, "0.2")], delivery=495),
        ),
        ("unknown_tax_rate", build_order_json(first_id + 5, [("MUG-0002", 1190, "0.19")])),
    ]
    broken = build_order_json(first_id + 6, [("CAP-0003", 1500, "0.2")], delivery=495)
    broken["cost"]["withTax"] += 100  # the total does not add up
    specs.append(("inconsistent_totals", broken))
    for reason, order in specs:
        sandbox.scayle.add_order(order)
        planted[order["id"]] = reason
    return planted


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few hundred orders, 2 workers")
    parser.add_argument(
        "--dsn", default=postgres_dsn_from_env(), help=f"PostgreSQL DSN (default: ${PG_ENV})"
    )
    parser.add_argument("--orders", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    count = args.orders or (150 if args.quick else 3000)
    n_workers = args.workers or (2 if args.quick else 4)
    waves = 3 if args.quick else 5
    check = Check(quick=args.quick)

    sandbox = Sandbox(seed=21)
    for sku in [*CATALOGUE, SERVICE_SKU, "SURCHARGE"]:
        sandbox.orderwise.add_variant(sku)
    mapper = OrderMapper(strategy_mapping_config(sku_map={s: s for s in KNOWN_TO_MAPPING}))
    orders = mixed_orders(count, seed=3, first_id=1_000_000)
    good_ids = [o["id"] for o in orders]

    tmp = tempfile.TemporaryDirectory()
    schema = f"chaos_{uuid.uuid4().hex[:12]}"
    if args.dsn:
        from scayle_orderwise.store import PostgresStore

        store_name = "PostgreSQL"

        def make_store() -> IdempotencyStore:
            return PostgresStore(args.dsn, schema=schema)
    else:
        store_name = "SQLite (no PostgreSQL DSN given)"
        path = Path(tmp.name) / "ledger.db"

        def make_store() -> IdempotencyStore:
            return SqliteStore(path)

    lock = threading.Lock()
    outcomes: Counter[str] = Counter()
    crashes: Counter[str] = Counter()
    passes = Counter[str]()
    errors: list[str] = []
    feeding = threading.Event()
    feeding.set()

    def one_pass(worker: str) -> None:
        store = make_store()
        try:
            result = Connector.for_sandbox(
                sandbox, store=store, mapping=mapper, worker_id=worker, flows=FLOWS
            ).sync_orders()
            with lock:
                outcomes.update(result.counts)
                passes[worker] += 1
        except SimulatedCrash:
            with lock:
                crashes[worker] += 1  # the worker "dies"; the next pass is its restart
        finally:
            close: Callable[[], None] | None = getattr(store, "close", None)
            if close is not None:
                close()

    def work(worker: str) -> None:
        try:
            extra = 4
            while extra:
                one_pass(worker)
                if not feeding.is_set():
                    extra -= 1
        except BaseException as exc:  # reported in the table
            errors.append(f"{worker}: {type(exc).__name__}: {exc}")

    planted = plant(sandbox, 9_000_000)
    # A small run needs a higher crash rate to see crashes at all.
    sandbox.faults = attrs.evolve(MIXED, crash_after_commit_rate=0.03) if args.quick else MIXED
    started = time.perf_counter()
    wave = -(-count // waves)
    for o in orders[:wave]:
        sandbox.scayle.add_order(o)
    threads = [threading.Thread(target=work, args=(f"machine-{i}",)) for i in range(n_workers)]
    for t in threads:
        t.start()
    for start in range(wave, count, wave):
        time.sleep(0.2)
        for o in orders[start : start + wave]:
            sandbox.scayle.add_order(o)
    feeding.clear()
    for t in threads:
        t.join()
    chaos_seconds = time.perf_counter() - started
    injected = dict(sandbox.injected)
    sandbox.faults = Faults()
    for i in range(n_workers):  # calm: each machine restarts once more and takes back its claims
        one_pass(f"machine-{i}")
    total_seconds = time.perf_counter() - started

    per_ref = Counter(
        b["orderHeader"]["eCommerceOrderNumber"] for b in sandbox.orderwise.sales_orders
    )
    duplicates = {ref: n for ref, n in per_ref.items() if n > 1}
    store = make_store()
    try:
        lost = []
        for order_id in good_ids:
            record = store.get(f"order:{order_id}")
            if (
                per_ref[f"SCAYLE-{order_id}"] != 1
                or record is None
                or record.state != State.ACKNOWLEDGED
                or sandbox.scayle.orders[order_id]["referenceKey"] != f"SCAYLE-{order_id}"
            ):
                lost.append(order_id)
        histories = []
        for ref in list(duplicates)[:3]:  # diagnostics: how a duplicate came about
            record = store.get(f"order:{ref.removeprefix('SCAYLE-')}")
            steps = [] if record is None else record.history
            histories.append(
                f"{ref}: " + " | ".join(f"{t.to_state} by {t.owner} ({t.reason})" for t in steps)
            )
        quarantined: Counter[str] = Counter()
        wrong_quarantine = []
        for record in store.records(states=[State.QUARANTINED], kind="order"):
            code = (record.reason or "?").split(":", 1)[0]
            quarantined[code] += 1
            if planted.get(int(record.subject)) != code:
                wrong_quarantine.append(record.subject)
        owners = Counter(
            t.owner
            for order_id in good_ids[:: max(1, count // 200)]
            for t in (store.get(f"order:{order_id}").history or ())  # type: ignore[union-attr]
            if t.owner and t.to_state == State.ACKNOWLEDGED
        )
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()
        if args.dsn:
            import psycopg
            from psycopg import sql

            with psycopg.connect(args.dsn, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )
        tmp.cleanup()

    console.print(f"machine: {machine()}")
    if not args.dsn:
        console.print(
            f"note: no --dsn and {PG_ENV} unset: the workers share a SQLite ledger instead"
        )
    rows: list[tuple[Any, ...]] = [
        ("ledger", store_name),
        ("workers (threads, one connection each)", n_workers),
        ("orders (good + planted bad)", f"{count} + {len(planted)}"),
        (
            "passes completed / crashes (worker restarts)",
            f"{sum(passes.values())} / {sum(crashes.values())}",
        ),
    ]
    rows += [(f"faults injected: {kind}", n) for kind, n in sorted(injected.items())]
    rows += [
        ("OrderWise sales orders", len(sandbox.orderwise.sales_orders)),
        ("duplicates (must be 0)", len(duplicates)),
        ("lost (must be 0)", len(lost)),
    ]
    rows += [(f"quarantined: {code}", n) for code, n in sorted(quarantined.items())]
    rows += [(f"pass outcome: {k}", v) for k, v in sorted(outcomes.items()) if v]
    rows += [
        (
            "acknowledged by worker (sample)",
            ", ".join(f"{w} {n}" for w, n in sorted(owners.items())),
        ),
        ("time under faults / total", f"{chaos_seconds:.1f} s / {total_seconds:.1f} s"),
        ("orders per second (total)", f"{(count + len(planted)) / total_seconds:,.0f}"),
    ]
    print_table("Chaos run", ["", "value"], rows)
    for line in histories:
        console.print(f"history of a duplicate: {line}")

    check.invariant(f"no worker error ({errors[:3]})", not errors)
    check.invariant(f"duplicates == 0 ({len(duplicates)})", not duplicates)
    check.invariant(f"lost == 0 ({len(lost)}: {lost[:5]})", not lost)
    check.invariant(
        f"every planted order quarantined with its reason ({sum(quarantined.values())} of "
        f"{len(planted)}; unexpected: {wrong_quarantine[:5]})",
        sum(quarantined.values()) == len(planted) and not wrong_quarantine,
    )
    kinds = ("error", "timeout_before", "timeout_after_commit", "rate_limit", "crash_after_commit")
    missing = [k for k in kinds if not injected.get(k)]
    check.invariant(f"every fault kind injected (missing: {missing})", not missing)
    check.invariant(
        f"the work was shared by the workers ({len(owners)} of {n_workers})", len(owners) > 1
    )
    finish(check)


if __name__ == "__main__":
    main()
