"""Reconciliation: one million order pairs, streaming (presorted and unsorted) vs load-everything.

    python benchmarks/reconciliation.py [--quick] [--pairs N]

Each mode runs in a fresh subprocess over the same deterministic stream of ``ShopOrderSummary`` /
``ErpOrderSummary`` pairs (1 to 3 lines each side, distinct objects per side), generated lazily:

* ``generate``: only builds and drops the summaries (the cost every mode shares);
* ``presorted``: ``reconcile_orders(shops, erps, presorted=True)`` on streams sorted by reference;
* ``unsorted``: ``reconcile_orders(shops, erps)`` on streams in two different scrambled orders
  (external sort: chunks of 20,000 spilled to temporary files, merged lazily);
* ``load-everything`` (the baseline): read both streams into dicts by reference, then compare
  every reference of the union with the same comparison (``reconcile_orders`` over the dicts).

Memory is the peak resident set size of the subprocess (``getrusage`` ``ru_maxrss``) minus its
size before the run, after imports: no tracing overhead, and it counts everything the process
holds (tracemalloc would slow the run several times and miss allocator overhead). Time is wall
time; "per million" subtracts the ``generate`` time and scales to 1,000,000 pairs.

About 0.4 % of the pairs carry planted differences (total mismatch, missing in OrderWise, unknown
in SCAYLE, status mismatch); every mode must report exactly the planted counts. Targets: equal
results in every mode; streaming peak memory under fixed bounds (64 MiB presorted, 256 MiB
unsorted) whatever the number of pairs, and below the baseline's.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from fractions import Fraction
from typing import Any

from _common import Check, console, finish, machine, print_table

from scayle_orderwise.reconcile import (
    ErpOrderSummary,
    LineSummary,
    ShopOrderSummary,
    reconcile_orders,
)

RATE = Fraction(1, 5)
BASE_ID = 10_000_000
MODES = ("generate", "presorted", "unsorted", "load-everything")
BOUNDS_MIB = {"presorted": 64, "unsorted": 256}
SHOP_STEP, ERP_STEP = 7919, 104_729  # primes: i -> i * step % n scrambles 0..n-1 (n = 2^a 5^b)


def _lines(i: int) -> tuple[LineSummary, ...]:
    out = []
    for k in range(1 + i % 3):
        gross = 500 + (i * 37 + k * 101) % 9000
        out.append(
            LineSummary(f"SKU-{(i + k) % 5000:04d}", "T1", gross, (gross + 3) // 6, 1 + k, RATE)
        )
    return tuple(out)


def planted(i: int) -> str | None:
    """The difference planted in pair ``i`` (or ``None``)."""
    return {
        1: "total_mismatch",
        2: "missing_in_erp",
        3: "unknown_in_shop",
        4: "status_mismatch",
    }.get(i % 1000)


def expected_reasons(n: int) -> dict[str, int]:
    """How many of each planted difference ``n`` pairs hold."""
    counts: dict[str, int] = {}
    for rest in (1, 2, 3, 4):
        hits = len(range(rest, n, 1000))
        if hits:
            counts[planted(rest) or ""] = hits
    return counts


def shop(i: int) -> ShopOrderSummary:
    lines = _lines(i)
    return ShopOrderSummary(
        reference=f"SCAYLE-{BASE_ID + i}",
        order_id=BASE_ID + i,
        currency="GBP",
        gross=sum(x.gross for x in lines),
        vat=sum(x.vat for x in lines),
        status="cancellation_completed" if planted(i) == "status_mismatch" else "order_confirmed",
        lines=lines,
    )


def erps(i: int) -> Iterator[ErpOrderSummary]:
    kind = planted(i)
    if kind == "missing_in_erp":
        return
    lines = _lines(i)
    gross = sum(x.gross for x in lines) + (250 if kind == "total_mismatch" else 0)
    yield ErpOrderSummary(
        reference=f"SCAYLE-{BASE_ID + i}",
        order_id=500_000 + i,
        order_number=f"SO{500_000 + i}",
        currency="GBP",
        gross=gross,
        vat=sum(x.vat for x in lines),
        status="awaiting_despatch",
        lines=lines,
    )
    if kind == "unknown_in_shop":  # sorts right after its neighbour: "SCAYLE-10000003-X"
        yield ErpOrderSummary(
            reference=f"SCAYLE-{BASE_ID + i}-X",
            order_id=900_000 + i,
            currency="GBP",
            gross=1000,
            vat=167,
            status="awaiting_despatch",
        )


def shop_stream(n: int, *, scrambled: bool) -> Iterator[ShopOrderSummary]:
    for i in range(n):
        yield shop(i * SHOP_STEP % n if scrambled else i)


def erp_stream(n: int, *, scrambled: bool) -> Iterator[ErpOrderSummary]:
    for i in range(n):
        yield from erps(i * ERP_STEP % n if scrambled else i)


def rss_kib() -> int:
    """Peak resident set size of this process so far (KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(mode: str, n: int) -> dict[str, Any]:
    """Run one mode in this process; returns seconds, memory and the report's summary."""
    shop(0), list(erps(0))  # warm up (first-call costs, caches)
    rss_before = rss_kib()
    start = time.perf_counter()
    summary: dict[str, Any] = {}
    if mode == "generate":
        count = sum(1 for _ in shop_stream(n, scrambled=True))
        count += sum(1 for _ in erp_stream(n, scrambled=True))
        summary = {"summaries": count}
    elif mode == "presorted":
        report = reconcile_orders(
            shop_stream(n, scrambled=False), erp_stream(n, scrambled=False), presorted=True
        )
        summary = report.summary.to_dict()
    elif mode == "unsorted":
        report = reconcile_orders(shop_stream(n, scrambled=True), erp_stream(n, scrambled=True))
        summary = report.summary.to_dict()
    elif mode == "load-everything":
        shops: dict[str, list[ShopOrderSummary]] = {}
        for s in shop_stream(n, scrambled=True):
            shops.setdefault(s.reference, []).append(s)
        erp_by: dict[str, list[ErpOrderSummary]] = {}
        for e in erp_stream(n, scrambled=True):
            erp_by.setdefault(e.reference, []).append(e)
        refs = sorted(shops.keys() | erp_by.keys())
        report = reconcile_orders(
            (s for ref in refs for s in shops.get(ref, ())),
            (e for ref in refs for e in erp_by.get(ref, ())),
            presorted=True,
        )
        summary = report.summary.to_dict()
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    seconds = time.perf_counter() - start
    return {
        "mode": mode,
        "seconds": seconds,
        "rss_before_kib": rss_before,
        "peak_extra_kib": rss_kib() - rss_before,
        "peak_kib": rss_kib(),
        "summary": summary,
    }


def run_child(mode: str, n: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--pairs", str(n)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 pairs instead of 1,000,000")
    parser.add_argument("--pairs", type=int, default=None)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n = args.pairs or (20_000 if args.quick else 1_000_000)
    if args.child:
        print(json.dumps(child(args.child, n)))
        return

    check = Check(quick=args.quick)
    console.print(f"machine: {machine()}")
    console.print(f"{n:,} order pairs; each mode in a fresh subprocess")
    results = {}
    for mode in MODES:
        results[mode] = run_child(mode, n)
        console.print(f"  {mode}: {results[mode]['seconds']:.1f} s")
    gen = results["generate"]["seconds"]
    base = results["load-everything"]
    rows = []
    for mode in MODES:
        r = results[mode]
        own = max(r["seconds"] - gen, 1e-9)
        mib = r["peak_extra_kib"] / 1024
        is_run = mode != "generate"
        rows.append(
            (
                mode,
                f"{r['seconds']:.1f}",
                f"{own * 1_000_000 / n:.1f}" if is_run else "-",
                f"{own / max(base['seconds'] - gen, 1e-9):.2f}x" if is_run else "-",
                f"{r['peak_kib'] / 1024:,.0f}",
                f"{mib:,.1f}",
                f"{mib / max(base['peak_extra_kib'] / 1024, 1e-9):.3f}x" if is_run else "-",
            )
        )
    print_table(
        f"Reconciling {n:,} order pairs (time without generation; growth = peak RSS - RSS after imports)",
        [
            "mode",
            "wall s",
            "s per million",
            "time vs baseline",
            "peak RSS MiB",
            "growth MiB",
            "growth vs baseline",
        ],
        rows,
    )
    expected = expected_reasons(n)
    reports = {m: results[m]["summary"] for m in MODES if m != "generate"}
    for mode, summary in reports.items():
        got = summary["by_reason"]
        check.invariant(
            f"{mode}: reports exactly the planted differences {got}",
            got == expected and summary["matched"] == n - expected.get("missing_in_erp", 0),
        )
    check.invariant(
        "all modes give the same summary", len({json.dumps(s) for s in reports.values()}) == 1
    )
    for mode, bound in BOUNDS_MIB.items():
        mib = results[mode]["peak_extra_kib"] / 1024
        check.timing(f"{mode}: peak memory growth {mib:.1f} MiB <= {bound} MiB", mib <= bound)
        check.timing(
            f"{mode}: less memory than load-everything ({mib:.1f} vs "
            f"{base['peak_extra_kib'] / 1024:.1f} MiB)",
            results[mode]["peak_extra_kib"] < base["peak_extra_kib"],
        )
    finish(check)


if __name__ == "__main__":
    main()
