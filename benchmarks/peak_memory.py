"""Memory of one order pass over a backlog: 10,000 and 100,000 orders waiting in SCAYLE.

    python benchmarks/peak_memory.py [--sizes 10000,100000] [--code REF]
        [--baseline REF --baseline-sizes 10000,30000] [--quick]

Both fakes are served on loopback (no delay, SCAYLE's limits lifted: this measures memory, not
pacing); the orders are the mixed, SDK-shaped orders of ``_common.mixed_orders`` (5 KB of
JSON each). One worker process builds its connector from the environment with a SQLite ledger and
runs **one** ``sync_orders()`` pass, which polls the backlog and pushes it. The figure is the
worker's peak resident set size (``ru_maxrss``) minus its size just before the pass, so the
fakes (in the parent process) and the imports do not count. ``--baseline REF`` measures the
library at git ``REF`` first (on ``--baseline-sizes``: 0.1.0 holds every new order until the
pass ends, so its growth is linear and 100,000 orders need several GB).

Targets (working tree): growth at most 100 MiB at 10,000 orders and flat (at most 1.5 times the
10,000 figure) at the largest size; every order reaches OrderWise.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import (
    PAYMENT_FEE_KEY,
    Check,
    catalogue_sandbox,
    console,
    finish,
    machine,
    mixed_orders,
    print_table,
)
from _peak import code_label, code_path, settings_env, start_worker, worker_output

from scayle_orderwise.sandbox.clock import RealClock
from scayle_orderwise.sandbox.serve import serve
from scayle_orderwise.testing.strategies import SERVICE_SKU

UNLIMITED = 10**9


MAPPING = {
    "tax_code_overrides": {SERVICE_SKU: "T2"},
    "non_deliverable_skus": [SERVICE_SKU],
    "fee_variant_codes": {PAYMENT_FEE_KEY: "SURCHARGE"},
}
"""The mapping every generated order maps under (``_common.mapping_config`` as settings)."""


def run_one(size: int, code: str | None) -> dict[str, Any]:
    started = time.monotonic()
    sandbox = catalogue_sandbox(seed=3, clock=RealClock())
    for order in mixed_orders(size, seed=3):
        sandbox.scayle.add_order(order)
    sandbox.scayle.webhooks.clear()  # the fake's own copies: not what is measured
    sandbox.scayle.rate_limits = dict.fromkeys(sandbox.scayle.rate_limits, UNLIMITED)
    setup = time.monotonic() - started
    folder = Path(tempfile.mkdtemp(prefix="peak-memory-"))
    log = folder / "worker.log"
    with serve("127.0.0.1", 0, sandbox) as server:
        env = settings_env(
            server,
            store_url=f"sqlite:///{folder / 'ledger.db'}",
            worker_id="mem",
            code=code,
            SCAYLE_ORDERWISE_MAPPING=json.dumps(MAPPING),
        )
        proc = start_worker("memory", env, code=code, log=log)
        proc.wait()
    lines = worker_output(log)
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the worker failed (status {proc.returncode}); see {log}")
    report = lines[-1]
    for error in report.get("errors", []):
        console.print(f"  worker error: {error}")
    return {
        "size": size,
        "growth": report["rss_peak_mib"] - report["rss_before_mib"],
        "peak": report["rss_peak_mib"],
        "seconds": report["seconds"],
        "reached": len(sandbox.orderwise.sales_orders),
        "setup": setup,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="backlog sizes")
    parser.add_argument("--code", default=None, help="git ref of the library to measure")
    parser.add_argument("--baseline", default=None, help="git ref measured first, for ratios")
    parser.add_argument("--baseline-sizes", default="10000", help="backlog sizes of the baseline")
    parser.add_argument("--quick", action="store_true", help="300 and 1,000 orders")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.sizes.split(",")]
    base_sizes = [int(n) for n in args.baseline_sizes.split(",")]
    if args.quick:
        sizes, base_sizes = [300, 1000], [300]
    check = Check(quick=args.quick)
    console.width = 150  # wide tables
    console.print(f"machine: {machine()}")
    runs = [(args.baseline, base_sizes)] if args.baseline else []
    runs.append((args.code, sizes))
    rows = []
    measured: dict[str | None, dict[int, dict[str, Any]]] = {}
    for ref, run_sizes in runs:
        code = code_path(ref)
        for size in run_sizes:
            console.print(f"running {code_label(ref)} over {size:,} orders ...")
            o = run_one(size, code)
            measured.setdefault(ref, {})[size] = o
            rows.append(
                [
                    code_label(ref),
                    f"{size:,}",
                    f"{o['growth']:.1f}",
                    f"{o['growth'] * 1024 / size:.1f}",
                    f"{o['peak']:.0f}",
                    f"{o['seconds']:.0f}",
                    f"{o['reached']:,}",
                ]
            )
    print_table(
        "Memory of one order pass (worker process)",
        [
            "code",
            "backlog",
            "RSS growth MiB",
            "KiB per order",
            "peak RSS MiB",
            "pass s",
            "reached OrderWise",
        ],
        rows,
    )
    mine = measured[args.code]
    for size, o in mine.items():
        check.invariant(
            f"{size:,} orders: every order reached OrderWise ({o['reached']:,})",
            o["reached"] == size,
        )
    smallest, largest = min(mine), max(mine)
    small, large = mine[smallest]["growth"], mine[largest]["growth"]
    check.timing(f"growth at {smallest:,} orders <= 100 MiB ({small:.1f})", small <= 100.0)
    if largest > smallest:
        check.timing(
            f"flat: growth at {largest:,} <= 1.5x the growth at {smallest:,} "
            f"({large:.1f} vs {small:.1f} MiB)",
            large <= 1.5 * max(small, 10.0),
        )
    finish(check)


if __name__ == "__main__":
    main()
