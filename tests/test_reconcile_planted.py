"""A planted-discrepancy study of the reconciliation: recall with the right reason, no false alarm.

Random UK baskets go through the sandbox under default settings; every kind of fault of
:data:`scayle_orderwise.testing.planted.KINDS` (plus orders never pushed and orders keyed by hand)
is planted on its own orders; the report must name each with its reason and leave every untouched
order alone. ``python benchmarks/reconciliation_study.py`` runs the large study of the docs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scayle_orderwise.testing.planted import KINDS, run_study


@pytest.mark.parametrize("seed", [3, 11])
def test_every_planted_fault_is_found_with_its_reason_and_nothing_else_is(seed: int) -> None:
    score = run_study(orders=260, per_kind=5, seed=seed)
    print(f"\nseed {seed}: recall {score.recall:.0%}, false alarms {score.false_alarms}\n")
    print(score.table())
    assert len(score.by_kind) == len(KINDS) + 2
    assert all(planted == 5 for planted, _right, _wrong in score.by_kind.values())
    assert (score.right, score.wrong, score.missed) == (score.planted, 0, 0)
    assert score.recall == 1.0
    assert score.untouched >= 180
    assert score.false_alarms == 0 and score.explained_untouched == 0


def test_the_study_script_runs() -> None:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "reconciliation_study.py"
    done = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "| **all kinds** |" in done.stdout and "false alarms: 0" in done.stdout
