"""Claim time against ledger size: ``claim_next`` at 1,000 and 100,000 records (SQLite, PostgreSQL).

    python benchmarks/claim_time.py [--dsn postgresql://...] [--sizes 1000,100000]
        [--claims 200] [--code REF] [--baseline REF] [--quick]

Two shapes of ledger, each at every size: a **history** (a ledger that has run for a while: that
many acknowledged order records, a realistic payload each, plus ``--claims`` × 10 due ones) and a
**backlog** (that many due order records: an import after an outage, a sale; at most one claim
per 20 of them is timed, so it stays at least half full). For each store,
shape and size the script fills a fresh ledger, then times ``claim_next(limit=10)`` ``--claims``
times, acknowledging each batch before the next claim. Each measurement runs in its own process with the
library of the version measured (``--code`` / ``--baseline`` take git refs), so one run compares
versions side by side.

Filling goes through the store's own row and history writers in large transactions when the store
has them (``SqliteStore`` / ``PostgresStore`` internals), otherwise through ``ensure``: the ledger
is the same, only built faster.

Target (working tree): the median claim at the largest size at most 2 times the one at 1,000.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import Check, console, finish, machine, print_table
from _peak import PG_ENV, code_label, code_path

from scayle_orderwise.config import postgres_dsn_from_env

DUE = 10
SHAPES = ("history", "backlog")
LEASE = timedelta(seconds=300)
PAYLOAD = {
    "reference": "SCAYLE-0",
    "currency": "GBP",
    "total_gross": 4895,
    "lines": [
        {"sku": "PEAK-001", "quantity": 1, "item_ids": [1001], "variant_code": "PEAK-001"},
        {"sku": "PEAK-007", "quantity": 2, "item_ids": [1002, 1003], "variant_code": "PEAK-007"},
    ],
    "reference_written": True,
    "orderwise_order_number": "SO-000000",
}


def _records(start: int, count: int, state: Any, now: Any) -> list[Any]:
    from scayle_orderwise.store.base import new_record

    return [
        new_record(
            f"order:{n}",
            kind="order",
            subject=str(n),
            now=now,
            payload={**PAYLOAD, "reference": f"SCAYLE-{n}"},
            state=state,
            reason="created in OrderWise",
        )
        for n in range(start, start + count)
    ]


def fill(store: Any, size: int, due: int, shape: str) -> None:
    """``history``: ``size`` acknowledged order records and ``due`` pending ones;
    ``backlog``: ``size`` pending ones (an import after an outage, a sale)."""
    from scayle_orderwise.store import State

    now = store._now()
    if shape == "backlog":
        chunks = [(n, min(5000, size - n), State.PENDING) for n in range(0, size, 5000)]
    else:
        chunks = [(n, min(5000, size - n), State.ACKNOWLEDGED) for n in range(0, size, 5000)]
        chunks.append((size, due, State.PENDING))
    for start, count, state in chunks:
        records = _records(start, count, state, now)
        if not _bulk(store, records):
            for record in records:
                store.ensure(
                    record.key,
                    kind=record.kind,
                    subject=record.subject,
                    payload=record.payload,
                    state=record.state,
                    reason=record.reason,
                )


def _bulk(store: Any, records: list[Any]) -> bool:
    """Insert through the store's own row writers in one transaction; False if it has none."""
    values = getattr(store, "_values", None)
    history = getattr(store, "_add_history", None)
    if values is None or history is None:
        return False
    rows = [values(record) for record in records]
    names = list(rows[0])
    if hasattr(store, "_write"):  # SqliteStore
        sql = (
            f"INSERT INTO records ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
        )
        with store._write() as conn:
            conn.executemany(sql, rows)
            for record in records:
                history(conn, record.key, record.history[-1])
        return True
    if hasattr(store, "_txn") and hasattr(store, "_sql"):  # PostgresStore
        placeholders = ", ".join(f"%({n})s" for n in names)
        sql = store._sql(f"INSERT INTO {{records}} ({', '.join(names)}) VALUES ({placeholders})")
        with store._txn() as conn, conn.cursor() as cursor:
            cursor.executemany(sql, rows)
            for record in records:
                history(conn, record.key, record.history[-1])
        return True
    return False


def measure(kind: str, shape: str, size: int, claims: int, dsn: str | None) -> dict[str, Any]:
    """In this process: build the ledger, time the claims."""
    from scayle_orderwise.store import State

    folder = Path(tempfile.mkdtemp(prefix="claim-time-"))
    schema = f"claim_{os.getpid()}_{shape}_{size}"
    if kind == "sqlite":
        from scayle_orderwise.store import SqliteStore

        store: Any = SqliteStore(folder / "ledger.db")
    else:
        from scayle_orderwise.store import PostgresStore

        assert dsn is not None
        store = PostgresStore(dsn, schema=schema)
    try:
        if shape == "backlog":
            claims = min(claims, size // (2 * DUE))  # claim at most half of the backlog
        started = time.perf_counter()
        fill(store, size, claims * DUE, shape)
        filled = time.perf_counter() - started
        times = []
        for _ in range(claims):
            t0 = time.perf_counter()
            batch = store.claim_next("order", owner="bench", lease=LEASE, limit=DUE)
            times.append(time.perf_counter() - t0)
            if len(batch) != DUE:
                raise RuntimeError(f"claimed {len(batch)} records, expected {DUE}")
            for record in batch:
                store.transition(record.key, State.ACKNOWLEDGED, owner="bench", reason="done")
        return {
            "median_ms": statistics.median(times) * 1000,
            "p90_ms": sorted(times)[int(0.9 * len(times))] * 1000,
            "fill_s": filled,
        }
    finally:
        if kind == "postgres":
            with store._txn() as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        store.close()


def run_child(
    code: str | None, kind: str, shape: str, size: int, claims: int, dsn: str | None
) -> dict[str, Any]:
    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = code + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, shape, str(size), str(claims), dsn or ""],
        env=env,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent,
    )
    if done.returncode != 0:
        raise SystemExit(f"the {kind} {shape} measurement failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> None:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--child"]:
        kind, shape, size, claims, dsn = args_list[1:6]
        print(json.dumps(measure(kind, shape, int(size), int(claims), dsn or None)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=postgres_dsn_from_env(), help="PostgreSQL DSN")
    parser.add_argument("--sizes", default="1000,100000", help="ledger sizes")
    parser.add_argument("--claims", type=int, default=200, help="claims timed per ledger")
    parser.add_argument("--code", default=None, help="git ref of the library to measure")
    parser.add_argument("--baseline", default=None, help="git ref measured first, for ratios")
    parser.add_argument("--quick", action="store_true", help="1,000 and 5,000 records, 30 claims")
    args = parser.parse_args(args_list)
    sizes = [int(n) for n in args.sizes.split(",")]
    if args.quick:
        sizes, args.claims = [1000, 5000], 30
    kinds = ["sqlite"] + (["postgres"] if args.dsn else [])
    check = Check(quick=args.quick)
    console.width = 150  # wide tables
    console.print(f"machine: {machine()}")
    if not args.dsn:
        console.print(f"PostgreSQL skipped (no --dsn or {PG_ENV})")
    versions = [args.baseline] if args.baseline else []
    versions.append(args.code)
    rows = []
    medians: dict[tuple[str | None, str, str], dict[int, float]] = {}
    for ref in versions:
        code = code_path(ref)
        for kind in kinds:
            for shape in SHAPES:
                for size in sizes:
                    console.print(f"{code_label(ref)}: {kind}, {shape} of {size:,} records ...")
                    o = run_child(code, kind, shape, size, args.claims, args.dsn)
                    medians.setdefault((ref, kind, shape), {})[size] = o["median_ms"]
                    rows.append(
                        [
                            code_label(ref),
                            kind,
                            shape,
                            f"{size:,}",
                            f"{o['median_ms']:.2f}",
                            f"{o['p90_ms']:.2f}",
                            f"{o['fill_s']:.0f}",
                        ]
                    )
    print_table(
        f"claim_next(limit={DUE}) against ledger size",
        ["code", "store", "ledger", "records", "median ms", "p90 ms", "fill s"],
        rows,
    )
    smallest, largest = min(sizes), max(sizes)
    for (ref, kind, shape), by_size in medians.items():
        ratio = by_size[largest] / by_size[smallest]
        console.print(
            f"{code_label(ref)} {kind} {shape}: {largest:,} vs {smallest:,} records: {ratio:.1f}x"
        )
        if ref == args.code:
            check.timing(
                f"{kind} {shape}: claim at {largest:,} <= 2x at {smallest:,} ({ratio:.1f}x)",
                ratio <= 2.0,
            )
    finish(check)


if __name__ == "__main__":
    main()
