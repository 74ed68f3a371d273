"""The peak-trading benchmark scripts still run: each in ``--quick`` mode prints its table and
its invariants hold (speed figures count in full runs only; see ``docs/performance.md``).

The PostgreSQL scripts (``peak_orders.py``, ``claim_time.py``; ``rate_budget.py`` in part) need
``SCAYLE_ORDERWISE_STORE__URL`` set to a PostgreSQL DSN and skip without it (fail under
``SCAYLE_ORDERWISE_REQUIRE_PG``, as every PostgreSQL test does).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator

import pytest

from benchmark_runs import quick_runs
from scayle_orderwise.config import STORE_URL_ENV

SCRIPTS = {
    "peak_orders": True,
    "stock_latency": False,
    "peak_memory": False,
    "claim_time": True,
    "rate_budget": False,
}


@pytest.fixture(scope="module")
def runs(optional_pg_dsn: str | None) -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    wanted = [name for name, pg in SCRIPTS.items() if not pg or optional_pg_dsn]
    with quick_runs(wanted, pg_dsn=optional_pg_dsn, columns=200, timeout=300) as done:
        yield done


def _ok(runs: dict[str, subprocess.CompletedProcess[str]], name: str) -> str:
    if name not in runs:
        if os.environ.get("SCAYLE_ORDERWISE_REQUIRE_PG"):
            pytest.fail(f"{name}.py needs PostgreSQL ({STORE_URL_ENV}) and the run requires it")
        pytest.skip(f"{name}.py needs PostgreSQL ({STORE_URL_ENV})")
    run = runs[name]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "all targets hold" in run.stdout and "FAIL" not in run.stdout
    return run.stdout


def test_peak_orders(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = _ok(runs, "peak_orders")
    assert "Orders reaching OrderWise per second" in out
    assert "PASS  2 worker(s): no 429 from SCAYLE (0)" in out
    assert "PASS  2 worker(s): every order exactly once in OrderWise (40/40, 0 duplicates)" in out


def test_stock_latency(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = _ok(runs, "stock_latency")
    assert "Stock change in OrderWise → SCAYLE" in out
    found = re.search(r"3/s: every change reached SCAYLE \((\d+) lost of (\d+)\)", out)
    assert found is not None and found[1] == "0" and int(found[2]) > 0


def test_peak_memory(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = _ok(runs, "peak_memory")
    assert "Memory of one order pass" in out
    assert "PASS  1,000 orders: every order reached OrderWise (1,000)" in out


def test_claim_time(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = _ok(runs, "claim_time")
    assert "claim_next(limit=10) against ledger size" in out
    assert re.search(r"sqlite backlog: 5,000 vs 1,000 records: \d+\.\dx", out)


def test_rate_budget(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = _ok(runs, "rate_budget")
    assert "reserve() back to back" in out
    assert "PASS  shared budget: no 429 (0)" in out
    found = re.search(r"a budget per worker \(0\.1\.0\)\s*│\s*\d+\s*│\s*(\d+)", out)
    assert found is not None and int(found[1]) > 0  # the shape the shared budget fixes
