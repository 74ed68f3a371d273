"""The benchmark scripts still run: each in ``--quick`` mode prints its table and its invariants hold.

The scripts start at once (module fixture) as subprocesses; each test then checks one of
them: exit code 0 (in ``--quick`` runs only correctness targets count; speed figures are printed
as ``info``), the table, and the figures it must show. Full runs and their figures:
``docs/performance.md``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest

from benchmark_runs import quick_runs

SCRIPTS = ("mapping", "order_push", "stock", "reconciliation", "chaos", "fulfilment")


@pytest.fixture(scope="module")
def runs(optional_pg_dsn: str | None) -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    with quick_runs(SCRIPTS, pg_dsn=optional_pg_dsn, columns=160, timeout=180) as done:
        yield done


def _ok(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "all targets hold" in run.stdout
    assert "FAIL" not in run.stdout
    return run.stdout


def _figures(pattern: str, text: str) -> list[float]:
    found = [float(x) for x in re.findall(pattern, text)]
    assert found, f"no match for {pattern!r}"
    return found


def test_mapping(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = _ok(runs["mapping"])
    assert "Mapping cost vs parsing alone" in out
    assert "PASS  all 300 orders map and add up to cost.withTax (failures: 0)" in out
    (ratio,) = _figures(r"parse \+ map <= 2\.0x parse \((\d+\.\d+)x\)", out)
    assert ratio > 0  # a figure was measured (its size is for docs/performance.md, not a test)


def test_order_push(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = _ok(runs["order_push"])
    assert "Steady state" in out and "calls / order" in out
    webhook = _figures(r"webhook-driven calls per order <= 3\.2 \((\d+\.\d+)\)", out)
    poll = _figures(r"poll-driven calls per order <= 3 \((\d+\.\d+)\)", out)
    assert len(webhook) >= 2 and all(3.0 < x <= 3.2 for x in webhook)  # one lookup per batch
    assert len(poll) >= 2 and all(2.0 < x <= 3.0 for x in poll)
    writes = _figures(r"write transactions per order <= 4 \((\d+\.\d+)\)", out)
    assert len(writes) == 2 and all(2.0 < x <= 4.0 for x in writes)
    assert "every order exactly once in OrderWise" in out


def test_stock(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = _ok(runs["stock"])
    assert "changed-only vs a naive full push" in out
    assert _figures(r"(\d+) answered 429", out) == [0]
    totals = re.search(r"total: (\d+) pushes for (\d+) changed pairs", out)
    assert totals is not None and totals[1] == totals[2] and int(totals[1]) > 0


def test_reconciliation(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = _ok(runs["reconciliation"])
    assert "Reconciling 20,000 order pairs" in out
    for mode in ("presorted", "unsorted", "load-everything"):
        assert f"PASS  {mode}: reports exactly the planted differences" in out
    assert "PASS  all modes give the same summary" in out


def test_chaos(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = _ok(runs["chaos"])
    assert "Chaos run" in out
    assert _figures(r"duplicates \(must be 0\)\s*│\s*(\d+)", out) == [0]
    assert _figures(r"lost \(must be 0\)\s*│\s*(\d+)", out) == [0]
    assert "quarantined: unknown_sku" in out


def test_fulfilment(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = _ok(runs["fulfilment"])
    assert "One fulfilment pass: time per order against the smallest size" in out
    for shape in ("new", "0.1.0"):
        assert f"PASS  {shape} 100: every order shipped once with all its units" in out
    (ratio,) = _figures(r"new: CPU ms per order at 100 <= 2\.0x at 30 \((\d+\.\d+)x\)", out)
    assert ratio > 0
