"""A worker process of the peak-trading benchmarks; started by ``_peak.start_worker``.

    python benchmarks/_peak_worker.py orders     # sync_orders() passes until told to stop
    python benchmarks/_peak_worker.py memory     # one sync_orders() pass; peak RSS growth

The connector comes from the environment as in production
(``Connector.from_settings(ConnectorSettings.load())``), so the same script drives any version of
the library put first on ``PYTHONPATH``. Only names that 0.1.0 already had are used. A PostgreSQL
ledger goes into the schema ``PEAK_SCHEMA``. Each pass prints one JSON line (cumulative counts)
on stdout; ``PEAK_STOP_FILE`` appearing ends the loop after the pass.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from typing import Any


def _connector() -> Any:
    from scayle_orderwise.config import ConnectorSettings
    from scayle_orderwise.connector import Connector

    settings = ConnectorSettings.load()
    schema = os.environ.get("PEAK_SCHEMA")
    store = None
    if schema and settings.store.url.startswith("postgres"):
        from scayle_orderwise.store import PostgresStore

        store = PostgresStore(settings.store.url, schema=schema)
    return Connector.from_settings(settings, store=store)


def _rss_mib() -> float:
    """Peak resident set size of this process image, MiB (``VmHWM``: unlike ``ru_maxrss`` it
    does not inherit the parent's size from before the ``exec``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def orders(max_seconds: float) -> None:
    from scayle_orderwise.errors import ConnectorError

    stop_file = os.environ.get("PEAK_STOP_FILE", "")
    totals: Counter[str] = Counter()
    deadline = time.monotonic() + max_seconds
    with _connector() as connector:
        passes = 0
        while time.monotonic() < deadline and not (stop_file and os.path.exists(stop_file)):
            passes += 1
            started = time.monotonic()
            done: Counter[str] = Counter()
            try:
                done.update(connector.sync_orders().counts)
            except ConnectorError as exc:
                done["failed_passes"] += 1
                print(f"pass failed: {exc}", file=sys.stderr)
            totals.update(done)
            line = {
                "worker": connector.worker_id,
                "pass": passes,
                "seconds": round(time.monotonic() - started, 3),
                "counts": dict(totals),
            }
            print(json.dumps(line), flush=True)
            if not any(n for k, n in done.items() if k != "not_confirmed"):
                time.sleep(0.1)  # nothing to do: do not spin


def memory() -> None:
    with _connector() as connector:
        before = _rss_mib()
        started = time.monotonic()
        result = connector.sync_orders()
        seconds = time.monotonic() - started
        print(
            json.dumps(
                {
                    "rss_before_mib": before,
                    "rss_peak_mib": _rss_mib(),
                    "seconds": seconds,
                    "counts": dict(result.counts),
                    "errors": result.errors[:5],
                }
            ),
            flush=True,
        )


def main() -> None:
    mode = sys.argv[1]
    if mode == "orders":
        orders(float(sys.argv[2]) if len(sys.argv) > 2 else 600.0)
    elif mode == "memory":
        memory()
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
