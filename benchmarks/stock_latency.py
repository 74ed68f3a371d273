"""Stock in seconds: OrderWise stock change → SCAYLE, measured over real HTTP.

    python benchmarks/stock_latency.py [--skus 1000] [--rates 5,0.1] [--seconds 120] [--delay 0.1]
        [--code REF] [--baseline REF] [--quick]

Both fakes are served on loopback with ``--delay`` seconds per call and SCAYLE's real limits
(``stocksWrite`` 2,500 a minute, enforced with 429s). ``--skus`` variants exist in both systems.
One worker runs the command an operator runs, with default settings::

    scayle-orderwise sync inventory --watch

(settings from the environment, a SQLite ledger). After the first pass has published every SKU,
stock moves in OrderWise for ``--seconds`` (at least long enough for about 30 changes): changes
arrive at random (Poisson, each of ``--rates`` a second in its own run: 5 a second is a busy shop,
0.1 a quiet one where every change comes after the watcher has backed off), a third of them on 20
busy SKUs, each setting a figure never used before for that SKU.
A monitor reads SCAYLE every 50 ms; a change's latency is the time until SCAYLE shows its figure
or a later one of the same SKU (a change superseded before it was shown is *coalesced*: pushing
it would have been wasted). ``--baseline REF`` measures the library at git ``REF`` first, in the
same run, at the first rate (0.1.0 polled every 60 s).

Targets (working tree): median ≤ 5 s and max ≤ 15 s; every change reaches SCAYLE; no 429.
"""

from __future__ import annotations

import argparse
import random
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import Check, console, finish, machine, print_table
from _peak import code_label, code_path, settings_env, start_worker

from scayle_orderwise.sandbox import Sandbox
from scayle_orderwise.sandbox.clock import RealClock
from scayle_orderwise.sandbox.serve import serve

HOT = 20


class Tracker:
    """Changes made in OrderWise and when SCAYLE caught up with each."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changes: dict[str, list[tuple[int, float]]] = {}  # sku -> [(value, made at)]
        self.shown: dict[str, int] = {}  # sku -> index of the newest change SCAYLE shows
        self.latencies: list[float] = []
        self.coalesced = 0

    def made(self, sku: str, value: int, at: float) -> None:
        with self.lock:
            self.changes.setdefault(sku, []).append((value, at))

    def outstanding(self) -> dict[str, list[tuple[int, float]]]:
        with self.lock:
            return {
                sku: list(changes)
                for sku, changes in self.changes.items()
                if self.shown.get(sku, -1) < len(changes) - 1
            }

    def seen(self, sku: str, value: int | None, now: float) -> None:
        with self.lock:
            changes = self.changes.get(sku, [])
            index = next((i for i, (v, _) in enumerate(changes) if v == value), None)
            done = self.shown.get(sku, -1)
            if index is None or index <= done:
                return
            for i in range(done + 1, index + 1):
                self.latencies.append(now - changes[i][1])
                if i < index:
                    self.coalesced += 1
            self.shown[sku] = index


def run_one(
    *,
    skus: int,
    rate: float,
    seconds: float,
    delay: float,
    drain: float,
    code: str | None,
    seed: int = 11,
) -> dict[str, Any]:
    sandbox = Sandbox(seed=seed, clock=RealClock())
    names = [f"STK-{n:05d}" for n in range(skus)]
    for sku in names:
        sandbox.scayle.add_variant(sku)
        sandbox.orderwise.set_free_stock(sku, Decimal(10))
    folder = Path(tempfile.mkdtemp(prefix="stock-latency-"))
    tracker = Tracker()
    rng = random.Random(seed)
    with serve("127.0.0.1", 0, sandbox, delay=delay) as server:
        env = settings_env(
            server,
            store_url=f"sqlite:///{folder / 'ledger.db'}",
            worker_id="stock-watch",
            code=code,
        )
        proc = start_worker_cli(env, code, folder / "watch.log")
        try:
            warm_started = time.monotonic()
            while any(sandbox.scayle.stock(sku) != 10 for sku in names):
                if time.monotonic() - warm_started > 300 or proc.poll() is not None:
                    raise RuntimeError(f"the first pass did not publish the stock; see {folder}")
                time.sleep(0.5)
            warm = time.monotonic() - warm_started
            marks = (len(sandbox.orderwise.requests), len(sandbox.scayle.stock_updates))
            started = time.monotonic()
            stop = threading.Event()

            def monitor() -> None:
                while not stop.is_set():
                    now = time.monotonic() - started
                    for sku in tracker.outstanding():
                        tracker.seen(sku, sandbox.scayle.stock(sku), now)
                    stop.wait(0.05)

            watcher = threading.Thread(target=monitor, daemon=True)
            watcher.start()
            counter = 0
            next_at = rng.expovariate(rate)
            while next_at < seconds:
                pause = next_at - (time.monotonic() - started)
                if pause > 0:
                    time.sleep(pause)
                sku = rng.choice(names[:HOT]) if rng.random() < 1 / 3 else rng.choice(names)
                counter += 1
                value = 1000 + counter
                sandbox.orderwise.set_free_stock(sku, Decimal(value))
                tracker.made(sku, value, time.monotonic() - started)
                next_at += rng.expovariate(rate)
            deadline = time.monotonic() + drain
            while tracker.outstanding() and time.monotonic() < deadline:
                time.sleep(0.2)
            stop.set()
            watcher.join(timeout=5)
            elapsed = time.monotonic() - started
            lost = sum(
                len(c) - 1 - tracker.shown.get(s, -1) for s, c in tracker.outstanding().items()
            )
        finally:
            stop_cli(proc)
        requests = sandbox.orderwise.requests[marks[0] :]
        exports = sum(1 for _, path, _ in requests if "export-definition" in path.lower())
        stock_statuses = [
            code for method, path, code in sandbox.scayle.requests if path.endswith("/stocks")
        ]
    return {
        "changes": counter,
        "latencies": tracker.latencies,
        "coalesced": tracker.coalesced,
        "lost": lost,
        "pushes": len(sandbox.scayle.stock_updates) - marks[1],
        "exports_per_min": exports / elapsed * 60,
        "too_many": stock_statuses.count(429),
        "warm": warm,
    }


def start_worker_cli(env: dict[str, str], code: str | None, log: Path) -> Any:
    """``scayle-orderwise sync inventory --watch`` with default settings, as an operator runs it."""
    return start_worker("cli", env, code=code, args=("sync", "inventory", "--watch"), log=log)


def stop_cli(proc: Any) -> None:
    """Stop our watcher as Ctrl-C would (by its own handle), then make sure it is gone."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except Exception:
            proc.kill()
            proc.wait()


def quantiles(values: Sequence[float]) -> tuple[float, float, float, float]:
    if not values:
        return (float("nan"),) * 4
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return statistics.median(ordered), p90, p99, ordered[-1]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=1000)
    parser.add_argument(
        "--rates", default="5,0.1", help="changes per second, one run each (default 5,0.1)"
    )
    parser.add_argument("--seconds", type=float, default=120.0, help="how long stock moves")
    parser.add_argument("--delay", type=float, default=0.1, help="seconds per API call")
    parser.add_argument("--drain", type=float, default=90.0, help="wait for stragglers")
    parser.add_argument("--code", default=None, help="git ref of the library to measure")
    parser.add_argument("--baseline", default=None, help="git ref measured first (first rate)")
    parser.add_argument("--quick", action="store_true", help="50 SKUs, 15 s, 20 ms")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    if args.quick:
        args.skus, args.seconds, args.delay, rates, args.drain = 50, 15.0, 0.02, [3.0], 30.0
    check = Check(quick=args.quick)
    console.width = 150  # wide tables
    console.print(f"machine: {machine()}")
    console.print(
        f"{args.skus} SKUs; every call {args.delay * 1000:.0f} ms; SCAYLE's limits enforced; one "
        "`scayle-orderwise sync inventory --watch` with default settings, SQLite ledger"
    )
    runs = [(args.baseline, rates[0])] if args.baseline else []
    runs.extend((args.code, rate) for rate in rates)
    rows = []
    outcomes: dict[tuple[str | None, float], dict[str, Any]] = {}
    for ref, rate in runs:
        seconds = max(args.seconds, 30 / rate)  # at least about 30 changes
        console.print(f"running {code_label(ref)}: {rate:g} changes/s for {seconds:g} s ...")
        o = run_one(
            skus=args.skus,
            rate=rate,
            seconds=seconds,
            delay=args.delay,
            drain=args.drain,
            code=code_path(ref),
        )
        outcomes[(ref, rate)] = o
        median, p90, p99, worst = quantiles(o["latencies"])
        rows.append(
            [
                code_label(ref),
                f"{rate:g}/s",
                o["changes"],
                f"{median:.1f}",
                f"{p90:.1f}",
                f"{p99:.1f}",
                f"{worst:.1f}",
                o["coalesced"],
                o["lost"],
                o["pushes"],
                f"{o['exports_per_min']:.1f}",
                o["too_many"],
                f"{o['warm']:.0f}",
            ]
        )
    print_table(
        "Stock change in OrderWise → SCAYLE (seconds)",
        [
            "code",
            "rate",
            "changes",
            "median",
            "p90",
            "p99",
            "max",
            "coalesced",
            "lost",
            "pushes",
            "exports/min",
            "429",
            "first pass s",
        ],
        rows,
    )
    if args.baseline:
        base = outcomes[(args.baseline, rates[0])]
        new = outcomes[(args.code, rates[0])]
        (bm, _, _, bw), (nm, _, _, nw) = quantiles(base["latencies"]), quantiles(new["latencies"])
        console.print(
            f"{rates[0]:g} changes/s: median {nm:.1f} s vs {bm:.1f} s ({bm / nm:.1f}x faster), "
            f"max {nw:.1f} s vs {bw:.1f} s"
        )
    for rate in rates:
        o = outcomes[(args.code, rate)]
        median, _, _, worst = quantiles(o["latencies"])
        check.invariant(
            f"{rate:g}/s: every change reached SCAYLE ({o['lost']} lost of {o['changes']})",
            o["lost"] == 0 and o["changes"] > 0,
        )
        check.invariant(f"{rate:g}/s: no 429 from SCAYLE ({o['too_many']})", o["too_many"] == 0)
        check.timing(f"{rate:g}/s: median <= 5 s ({median:.1f})", median <= 5.0)
        check.timing(f"{rate:g}/s: max <= 15 s ({worst:.1f})", worst <= 15.0)
    finish(check)


if __name__ == "__main__":
    main()
