"""Running benchmark scripts in ``--quick`` mode side by side, for the benchmark smoke tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from scayle_orderwise.config import STORE_URL_ENV

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def quick_runs(
    names: Iterable[str], *, pg_dsn: str | None, columns: int, timeout: float
) -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    """Start ``benchmarks/<name>.py --quick`` for every name at once; yield their finished runs.

    A PostgreSQL DSN, when given, reaches the scripts as ``SCAYLE_ORDERWISE_STORE__URL`` (they
    measure PostgreSQL too). Scripts still running when the block ends are killed.
    """
    env = {**os.environ, "COLUMNS": str(columns), "PYTHONUNBUFFERED": "1"}
    if pg_dsn:
        env[STORE_URL_ENV] = pg_dsn
    started = {
        name: subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--quick"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    }
    try:
        done = {}
        for name, proc in started.items():
            out, err = proc.communicate(timeout=timeout)
            done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        yield done
    finally:
        for proc in started.values():
            if proc.poll() is None:
                proc.kill()
