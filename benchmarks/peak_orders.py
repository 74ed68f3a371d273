"""Peak orders: N worker processes on one PostgreSQL ledger, SCAYLE's real limits, 100 ms per call.

    python benchmarks/peak_orders.py --dsn postgresql://... [--workers 1,2,4,8] [--orders 480]
        [--delay 0.1] [--max-seconds 180] [--code REF] [--baseline REF] [--quick]

Both fakes are served over loopback HTTP; every call waits ``--delay`` seconds (as real APIs take
to answer) and the SCAYLE fake enforces SCAYLE's per-scope limits (``ordersRead`` 1,000,
``ordersWrite`` 300 ... a minute) with 429 answers, which are counted. A backlog of ``--orders``
confirmed orders waits in SCAYLE. For each worker count, a fresh sandbox and a fresh ledger
schema, then N processes build their connector as production does
(``Connector.from_settings``) and run ``sync_orders()`` passes until every order has reached
OrderWise and its reference was written back (or ``--max-seconds``).

Figures per worker count: orders per second reaching OrderWise (first to last), the 429 answers,
the physical limit beside it (each SCAYLE scope on the way to OrderWise at its limit divided by its
calls per order, and the workers' own latency; reference write-backs are left out, since they may
wait in the ledger: they are bound by ``ordersWrite``, 300 a minute), when the last order reached
OrderWise and when the last reference was written back, and how many orders each worker pushed
(is every worker busy?). ``--baseline REF`` runs the same with the library at git
``REF`` (e.g. ``v0.1.0`` or a commit) first, in the same run, for the ratios.

Targets (the working tree only): every order exactly once in OrderWise; no 429; at 8 workers at
least 8 orders a second and every worker busy.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import Check, console, finish, machine, print_table
from _peak import (
    PG_ENV,
    Sampler,
    code_label,
    code_path,
    pg_schema,
    settings_env,
    start_worker,
    statuses_by_scope,
    worker_output,
)

from scayle_orderwise.config import postgres_dsn_from_env
from scayle_orderwise.sandbox import Sandbox, make_order
from scayle_orderwise.sandbox.clock import RealClock
from scayle_orderwise.sandbox.scayle import DEFAULT_RATE_LIMITS
from scayle_orderwise.sandbox.serve import serve

FIRST = 700_000
SKUS = [(f"PEAK-{n:03d}", 1200 + 100 * n, "0.20") for n in range(12)]


def backlog_sandbox(orders: int, *, seed: int = 5) -> Sandbox:
    """A real-time sandbox with SCAYLE's published limits and ``orders`` confirmed orders."""
    sandbox = Sandbox(seed=seed, clock=RealClock())
    for sku, _, _ in SKUS:
        sandbox.orderwise.add_variant(sku)
    for n in range(orders):
        a, b = SKUS[n % len(SKUS)], SKUS[(n * 7 + 3) % len(SKUS)]
        lines = [(a[0], a[1], 1 + n % 2, a[2]), (b[0], b[1], 1, b[2])]
        sandbox.scayle.add_order(make_order(FIRST + n, lines, shipping=395))
    return sandbox


def references_written(sandbox: Sandbox, orders: int) -> int:
    held = sandbox.scayle.orders
    return sum(1 for n in range(orders) if held[FIRST + n].get("referenceKey"))


def run_one(
    dsn: str, workers: int, *, orders: int, delay: float, max_seconds: float, code: str | None
) -> dict[str, Any]:
    """One configuration: serve, start the workers, wait, collect."""
    sandbox = backlog_sandbox(orders)
    folder = Path(tempfile.mkdtemp(prefix="peak-orders-"))
    stop = folder / "stop"
    with pg_schema(dsn) as schema, serve("127.0.0.1", 0, sandbox, delay=delay) as server:
        reached = Sampler(lambda: len(sandbox.orderwise.sales_orders), every=0.1)
        written_over_time = Sampler(lambda: references_written(sandbox, orders), every=0.5)
        procs = [
            start_worker(
                "orders",
                settings_env(
                    server,
                    store_url=dsn,
                    worker_id=f"w{i + 1}",
                    code=code,
                    PEAK_SCHEMA=schema,
                    PEAK_STOP_FILE=str(stop),
                ),
                code=code,
                args=(str(max_seconds + 30),),
                log=folder / f"w{i + 1}.log",
            )
            for i in range(workers)
        ]
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            if (
                len(sandbox.orderwise.sales_orders) >= orders
                and references_written(sandbox, orders) >= orders
            ):
                break
            if all(p.poll() is not None for p in procs):
                break
            time.sleep(0.5)
        elapsed = reached.samples[-1][0] if reached.samples else 0.0
        reached.stop()
        written_over_time.stop()
        stop.touch()
        reports = []
        for i, proc in enumerate(procs):
            try:
                proc.wait(timeout=120)
            except Exception:
                proc.kill()  # our own child, by its handle
                proc.wait()
            lines = worker_output(folder / f"w{i + 1}.log")
            reports.append(lines[-1] if lines else {"counts": {}})
        written = references_written(sandbox, orders)
    times = [t for t, n in reached.samples if n > 0]
    first = times[0] if times else 0.0
    last_n = reached.samples[-1][1]
    last = next((t for t, n in reached.samples if n >= last_n), elapsed)
    all_written = next(
        (t for t, n in written_over_time.samples if n >= orders), written_over_time.samples[-1][0]
    )
    per_ref = Counter(
        b["orderHeader"]["eCommerceOrderNumber"] for b in sandbox.orderwise.sales_orders
    )
    scopes = statuses_by_scope(sandbox.scayle.requests)
    return {
        "workers": workers,
        "reached": last_n,
        "rate": (last_n - 1) / (last - first) if last > first and last_n > 1 else 0.0,
        "seconds": last,
        "duplicates": sum(n - 1 for n in per_ref.values() if n > 1),
        "written": written,
        "written_at": all_written,
        "scopes": {scope: dict(counts) for scope, counts in scopes.items()},
        "orderwise_calls": Counter(
            path.rsplit("/", 2)[-2] if path.endswith("/") else path.rsplit("/", 1)[-1]
            for _, path, _ in sandbox.orderwise.requests
        ),
        "pushed": [
            int(r["counts"].get("pushed", 0)) + int(r["counts"].get("adopted", 0)) for r in reports
        ],
    }


def physical_limit(outcome: dict[str, Any], delay: float) -> tuple[float, str]:
    """The fastest orders could reach OrderWise: each SCAYLE scope on the way (all but
    ``ordersWrite``: write-backs may wait) at its limit ÷ its calls per order, and the workers'
    latency (each makes its calls one after another, ``delay`` each)."""
    orders = max(1, outcome["reached"])
    on_path = sum(outcome["orderwise_calls"].values())
    best, which = float("inf"), "-"
    for scope, counts in outcome["scopes"].items():
        calls = sum(n for status, n in counts.items() if status != 429)
        if scope == "ordersWrite":
            continue
        on_path += calls
        limit = DEFAULT_RATE_LIMITS.get(scope)
        if limit and calls:
            bound = limit / 60.0 / (calls / orders)
            if bound < best:
                best, which = bound, f"{scope} {calls / orders:.2f}/order"
    latency = outcome["workers"] / (on_path / orders * delay) if on_path else float("inf")
    if latency < best:
        best, which = latency, f"latency: {on_path / orders:.2f} calls/order"
    return best, which


def table_rows(label: str, outcomes: Sequence[dict[str, Any]], delay: float) -> list[list[Any]]:
    rows = []
    for o in outcomes:
        limit, which = physical_limit(o, delay)
        too_many = sum(c.get(429, 0) for c in o["scopes"].values())
        busy = sum(1 for p in o["pushed"] if p > 0)
        rows.append(
            [
                label,
                o["workers"],
                f"{o['rate']:.2f}",
                f"{limit:.2f}",
                which,
                f"{too_many} ({o['scopes'].get('ordersWrite', {}).get(429, 0)})",
                f"{o['seconds']:.0f}",
                f"{o['written_at']:.0f}" if o["written"] == o["reached"] else f"{o['written']}",
                f"{busy}/{o['workers']}: {','.join(str(p) for p in sorted(o['pushed']))}",
            ]
        )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=postgres_dsn_from_env(), help="PostgreSQL DSN")
    parser.add_argument("--workers", default="1,2,4,8", help="worker counts, comma-separated")
    parser.add_argument("--orders", type=int, default=480, help="backlog size (default 480)")
    parser.add_argument("--delay", type=float, default=0.1, help="seconds per call (default 0.1)")
    parser.add_argument("--max-seconds", type=float, default=180.0)
    parser.add_argument("--code", default=None, help="git ref of the library to measure")
    parser.add_argument("--baseline", default=None, help="git ref measured first, for ratios")
    parser.add_argument("--quick", action="store_true", help="2 workers, 40 orders, 20 ms")
    args = parser.parse_args(argv)
    if not args.dsn:
        raise SystemExit(f"peak_orders.py needs PostgreSQL: --dsn or {PG_ENV}")
    counts = [int(n) for n in args.workers.split(",")]
    if args.quick:
        counts, args.orders, args.delay, args.max_seconds = [2], 40, 0.02, 60.0
    check = Check(quick=args.quick)
    console.width = 150  # wide tables
    console.print(f"machine: {machine()}")
    console.print(
        f"{args.orders} orders waiting in SCAYLE; every call {args.delay * 1000:.0f} ms; SCAYLE's "
        f"published limits enforced (ordersRead {DEFAULT_RATE_LIMITS['ordersRead']}/min, "
        f"ordersWrite {DEFAULT_RATE_LIMITS['ordersWrite']}/min); PostgreSQL ledger"
    )
    versions = [(args.baseline, True)] if args.baseline else []
    versions.append((args.code, False))
    rows: list[list[Any]] = []
    results: dict[bool, list[dict[str, Any]]] = {}
    for ref, is_baseline in versions:
        code = code_path(ref)
        outcomes = []
        for n in counts:
            console.print(f"running {code_label(ref)} with {n} worker(s) ...")
            outcomes.append(
                run_one(
                    args.dsn,
                    n,
                    orders=args.orders,
                    delay=args.delay,
                    max_seconds=args.max_seconds,
                    code=code,
                )
            )
        results[is_baseline] = outcomes
        rows.extend(table_rows(code_label(ref), outcomes, args.delay))
    print_table(
        "Orders reaching OrderWise per second, SCAYLE's real limits",
        [
            "code",
            "workers",
            "orders/s",
            "limit to reach OW",
            "binding",
            "429 (ordersWrite)",
            "s to last order",
            "s to last write-back",
            "busy: orders each",
        ],
        rows,
    )
    if True in results:
        for base, new in zip(results[True], results[False], strict=True):
            ratio = new["rate"] / base["rate"] if base["rate"] else float("inf")
            console.print(
                f"{new['workers']} worker(s): {new['rate']:.2f} vs {base['rate']:.2f} orders/s "
                f"({ratio:.2f}x the baseline)"
            )
    for o in results[False]:
        n = o["workers"]
        too_many = sum(c.get(429, 0) for c in o["scopes"].values())
        check.invariant(
            f"{n} worker(s): every order exactly once in OrderWise "
            f"({o['reached']}/{args.orders}, {o['duplicates']} duplicates)",
            o["reached"] == args.orders and o["duplicates"] == 0,
        )
        check.invariant(f"{n} worker(s): no 429 from SCAYLE ({too_many})", too_many == 0)
        check.invariant(
            f"{n} worker(s): every reference written back ({o['written']}/{args.orders})",
            o["written"] == args.orders,
        )
        if n >= 8:
            check.timing(f"{n} workers: >= 8 orders/s ({o['rate']:.2f})", o["rate"] >= 8.0)
            check.timing(
                f"{n} workers: every worker busy ({sorted(o['pushed'])})",
                min(o["pushed"]) > 0,
            )
    spread = [statistics.pstdev(o["pushed"]) for o in results[False] if len(o["pushed"]) > 1]
    if spread:
        console.print(f"spread of orders per worker (std dev): {[round(s, 1) for s in spread]}")
    finish(check)


if __name__ == "__main__":
    main()
