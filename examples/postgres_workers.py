"""Many workers, one PostgreSQL ledger: separate processes share the work, each order posts once.

What it shows:

* the sandbox is served over real HTTP on loopback (``scayle_orderwise.sandbox.serve``), standing
  in for SCAYLE and OrderWise, and the fakes lose answers after committing (the connection is
  dropped once the sales order exists) and answer some requests with 5xx;
* several worker **processes** (as on several machines) each build their connector the way a
  production worker does: ``Connector.from_settings(ConnectorSettings.load())`` from environment
  variables (``SCAYLE_ORDERWISE_SCAYLE__BASE_URL``, ``..._ORDERWISE__PASSWORD``,
  ``SCAYLE_ORDERWISE_WORKER_ID`` ...), with a ``PostgresStore`` on the shared database, and run
  ``sync_orders()`` passes until nothing is left;
* claims in PostgreSQL (``FOR UPDATE SKIP LOCKED`` with leases owned by the ``worker_id``) give
  each order to one worker at a time, and an unclear outcome is looked up in OrderWise before any
  re-send, so OrderWise ends with exactly one sales order per SCAYLE order.

It prints a table: orders, sales orders in OrderWise, duplicates (must be 0) and how many orders
each worker pushed or adopted.

Run it with a PostgreSQL DSN (argument or ``SCAYLE_ORDERWISE_STORE__URL``, the connector's own
ledger setting)::

    python examples/postgres_workers.py postgresql://postgres@127.0.0.1:5432/postgres
    SCAYLE_ORDERWISE_STORE__URL=postgresql://... python examples/postgres_workers.py --workers 6

The ledger goes to a fresh schema that is dropped afterwards (``--schema NAME`` keeps it).

Adapting it to real systems: run the worker part (``run_worker``) on each machine under a process
supervisor (systemd, Kubernetes), with the real SCAYLE and OrderWise settings in a TOML file and
secrets in the environment, ``[store] url`` pointing at your PostgreSQL, and a ``worker_id`` that
is unique per worker and stable across restarts (e.g. the pod or host name): a restarted worker
takes back its own claims at once, others wait for the lease (``[flows] lease_seconds``) to end.
``scayle-orderwise sync orders --watch`` is the same loop on the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scayle_orderwise.sandbox import Faults, RealClock, Sandbox, make_order
from scayle_orderwise.sandbox.serve import SandboxServer, serve

DSN_ENV = "SCAYLE_ORDERWISE_STORE__URL"  # the connector's own ledger setting
SCHEMA_ENV = "EXAMPLE_PG_SCHEMA"  # how the parent tells the workers which schema to use
CATALOGUE = [
    ("TEE-BLK-M", 2400, "0.20"),
    ("BOOK-01", 1250, "0"),
    ("MUG-02", 999, "0.20"),
    ("CAR-SEAT-01", 12000, "0.05"),
]
FIRST_ORDER = 30_001


# ------------------------------------------------------------------------------------- one worker


def run_worker(*, max_seconds: float = 60.0) -> dict[str, Any]:
    """One worker process: connector from the environment, ``sync_orders()`` until all is settled."""
    from scayle_orderwise.config import ConnectorSettings
    from scayle_orderwise.connector import Connector
    from scayle_orderwise.errors import ConnectorError
    from scayle_orderwise.store import PostgresStore, State

    settings = ConnectorSettings.load()
    store = PostgresStore(settings.store.url, schema=os.environ.get(SCHEMA_ENV) or None)
    totals: Counter[str] = Counter()
    passes = 0
    deadline = time.monotonic() + max_seconds
    with Connector.from_settings(settings, store=store) as connector:
        while time.monotonic() < deadline:
            passes += 1
            try:
                totals.update(connector.sync_orders().counts)
            except ConnectorError as exc:  # e.g. SCAYLE unreachable for a moment: try again
                totals["failed_passes"] += 1
                print(f"{connector.worker_id}: pass failed: {exc}", file=sys.stderr)
            counts = store.counts(kind="order")
            if not counts[State.PENDING] + counts[State.IN_FLIGHT] + counts[State.SENT]:
                break
            time.sleep(0.05)
        return {"worker": connector.worker_id, "passes": passes, "counts": dict(totals)}


# ------------------------------------------------------------------------------------ the parent


def _sandbox(orders: int, faults: bool) -> Sandbox:
    sandbox = Sandbox(seed=11, clock=RealClock())
    for sku, _price, _rate in CATALOGUE:
        sandbox.orderwise.add_variant(sku)
    for n in range(orders):
        sku, price, rate = CATALOGUE[n % len(CATALOGUE)]
        other = CATALOGUE[(n + 1) % len(CATALOGUE)]
        lines = [(sku, price, 1 + n % 3, rate), (other[0], other[1], 1, other[2])]
        sandbox.scayle.add_order(make_order(FIRST_ORDER + n, lines, shipping=495))
    if faults:
        sandbox.faults = Faults(error_rate=0.03, timeout_after_commit_rate=0.05, seed=3)
    return sandbox


def _worker_env(server: SandboxServer, dsn: str, schema: str, worker_id: str) -> dict[str, str]:
    """What a deployment would put in each worker's environment (settings and secrets)."""
    sandbox = server.sandbox
    exports = sandbox.orderwise.export_definitions
    env = {
        "SCAYLE_ORDERWISE_SCAYLE__BASE_URL": server.scayle_base_url,
        "SCAYLE_ORDERWISE_SCAYLE__TOKEN": sandbox.scayle.token,
        "SCAYLE_ORDERWISE_SCAYLE__SHOP_KEY": sandbox.scayle.shop_key,
        "SCAYLE_ORDERWISE_SCAYLE__COUNTRY_CODE": sandbox.scayle.country_code,
        "SCAYLE_ORDERWISE_ORDERWISE__API_ROOT": server.orderwise_api_root,
        "SCAYLE_ORDERWISE_ORDERWISE__USERNAME": sandbox.orderwise.username,
        "SCAYLE_ORDERWISE_ORDERWISE__PASSWORD": sandbox.orderwise.password,
        "SCAYLE_ORDERWISE_ORDERWISE__SESSION_ID": str(sandbox.orderwise.session_id),
        "SCAYLE_ORDERWISE_ORDERWISE__EXPORT_DEFINITIONS": json.dumps(
            {
                "order_changes": exports.order_changes,
                "order_by_reference": exports.order_by_reference,
                "stock_changes": exports.stock_changes,
                "order_details": exports.order_details,
                "stock_full": exports.stock_full,
                "orders_by_references": exports.orders_by_references,
            }
        ),
        # Demo timing: retry unclear outcomes on the next pass instead of waiting 15 minutes.
        "SCAYLE_ORDERWISE_FLOWS__BACKOFF_BASE_SECONDS": "0",
        "SCAYLE_ORDERWISE_FLOWS__RESEND_GRACE_SECONDS": "0",
        "SCAYLE_ORDERWISE_ALERTS__LOG": "false",
        "SCAYLE_ORDERWISE_STORE__URL": dsn,
        "SCAYLE_ORDERWISE_WORKER_ID": worker_id,
        SCHEMA_ENV: schema,
    }
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SCAYLE_ORDERWISE_")}
    return {**inherited, **env}


def _drop_schema(dsn: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def run(
    dsn: str, *, workers: int = 4, orders: int = 120, schema: str | None = None, faults: bool = True
) -> dict[str, Any]:
    """Serve the sandbox, start ``workers`` processes, wait, check and print; returns the outcome."""
    from scayle_orderwise.store import PostgresStore, State

    keep = schema is not None
    schema = schema or f"example_{uuid.uuid4().hex[:12]}"
    sandbox = _sandbox(orders, faults)
    started = time.monotonic()
    try:
        with serve("127.0.0.1", 0, sandbox) as server:
            print(f"sandbox served at {server.url}; ledger in schema {schema!r}")
            procs = [
                subprocess.Popen(
                    [sys.executable, str(Path(__file__).resolve()), "--worker"],
                    env=_worker_env(server, dsn, schema, f"machine-{i + 1}"),
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for i in range(workers)
            ]
            reports = []
            for proc in procs:
                out, _ = proc.communicate(timeout=120)
                if proc.returncode != 0:
                    raise RuntimeError(f"a worker exited with status {proc.returncode}")
                reports.append(json.loads(out.strip().splitlines()[-1]))
        elapsed = time.monotonic() - started

        with PostgresStore(dsn, schema=schema) as store:
            ledger = {str(k): n for k, n in store.counts(kind="order").items() if n}
            acknowledged_by: Counter[str] = Counter()
            for record in store.records(states=[State.ACKNOWLEDGED], kind="order"):
                last = record.history[-1] if record.history else None
                acknowledged_by[(last.owner if last else None) or "?"] += 1
    finally:
        if not keep:
            _drop_schema(dsn, schema)

    per_ref = Counter(
        b["orderHeader"]["eCommerceOrderNumber"] for b in sandbox.orderwise.sales_orders
    )
    expected = {f"SCAYLE-{FIRST_ORDER + n}" for n in range(orders)}
    duplicates = sum(n - 1 for n in per_ref.values() if n > 1)
    missing = len(expected - set(per_ref))
    injected = sandbox.injected

    print(
        f"\n{'worker':<12} {'passes':>6} {'pushed':>7} {'adopted':>8} {'ambiguous':>10} {'acked':>6}"
    )
    for report in sorted(reports, key=lambda r: str(r["worker"])):
        c = report["counts"]
        print(
            f"{report['worker']:<12} {report['passes']:>6} {c.get('pushed', 0):>7} "
            f"{c.get('adopted', 0):>8} {c.get('ambiguous', 0):>10} "
            f"{acknowledged_by.get(report['worker'], 0):>6}"
        )
    print()
    rows = [
        ("orders in SCAYLE", orders),
        ("sales orders in OrderWise", len(sandbox.orderwise.sales_orders)),
        ("duplicate sales orders (must be 0)", duplicates),
        ("orders missing in OrderWise (must be 0)", missing),
        ("faults injected by the fakes", sum(injected.values())),
        ("workers", workers),
    ]
    for label, value in rows:
        print(f"{label:<42} {value:>6}")
    print(f"ledger: {ledger}; {elapsed:.1f} s")
    return {
        "orders": orders,
        "sales_orders": len(sandbox.orderwise.sales_orders),
        "duplicates": duplicates,
        "missing": missing,
        "ledger": ledger,
        "workers": reports,
        "acknowledged_by": dict(acknowledged_by),
        "faults_injected": injected,
        "schema": schema,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; ``--worker`` is the entry point of each worker process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dsn", nargs="?", help=f"PostgreSQL DSN (default: ${DSN_ENV})")
    parser.add_argument("--workers", type=int, default=4, help="worker processes (default 4)")
    parser.add_argument("--orders", type=int, default=120, help="SCAYLE orders (default 120)")
    parser.add_argument("--schema", help="keep the ledger in this schema (default: a throwaway)")
    parser.add_argument("--no-faults", action="store_true", help="no lost answers, no 5xx")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker()), flush=True)
        return 0
    from scayle_orderwise.config import postgres_dsn_from_env

    dsn = args.dsn or postgres_dsn_from_env()  # the old SCAYLE_ORDERWISE_PG_DSN still works
    if not dsn:
        print(
            f"This example needs PostgreSQL: pass a DSN or set {DSN_ENV}, e.g.\n"
            f"  python examples/postgres_workers.py postgresql://postgres@127.0.0.1:5432/postgres",
            file=sys.stderr,
        )
        return 2
    outcome = run(
        dsn, workers=args.workers, orders=args.orders, schema=args.schema, faults=not args.no_faults
    )
    return 0 if outcome["duplicates"] == 0 and outcome["missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
