"""The demo's output for a newcomer: bars that move per order, a copyable "look inside" command.

Issue 15 B3 (the command is never broken mid-word when output is not a terminal) and B10 (bars count
orders, parcels and rows, not passes).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.progress import Progress, TaskID

from scayle_orderwise import demo


class RecordingProgress(Progress):
    """A rich Progress that remembers every value each bar showed."""

    seen: dict[str, list[float]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen = {}

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        task = self._tasks[task_id]
        self.seen.setdefault(str(task.description), []).append(task.completed)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        task = self._tasks[task_id]
        self.seen.setdefault(str(task.description), []).append(task.completed)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[RecordingProgress]:
    made: list[RecordingProgress] = []

    def progress(console: Console) -> RecordingProgress:
        made.append(RecordingProgress(console=console, auto_refresh=False))
        return made[-1]

    monkeypatch.setattr(demo, "_progress", progress)
    return made


def test_bars_move_per_order_and_parcel(tmp_path: Path, recorded: list[RecordingProgress]) -> None:
    orders = 40
    outcome = demo.run_demo(
        tmp_path / "d", orders=orders, seed=5, console=Console(file=io.StringIO())
    )
    assert outcome.ok, outcome.problems
    seen = recorded[0].seen
    pushed = seen["orders → OrderWise"]
    assert len(set(pushed)) >= orders // 2  # moved order by order, not once per pass
    assert max(pushed) == orders - 1  # every order but the one with the unknown SKU
    parcels = seen["parcels → SCAYLE shipments"]
    assert len(set(parcels)) >= 10 and max(parcels) == outcome.counts["scayle_shipments"]
    rows = seen["reconciliation: orders read"]
    assert len(set(rows)) >= orders  # one tick per order read from either system


def test_the_look_inside_command_is_whole_when_output_is_not_a_terminal(tmp_path: Path) -> None:
    folder = tmp_path / "a-rather-long-folder-name-for-the-demo-output-of-this-test"
    out = io.StringIO()
    demo.run_demo(folder, orders=10, seed=2, console=Console(file=out, width=80))
    command = (
        f"  look inside: SCAYLE_ORDERWISE_STORE__URL=sqlite:///{folder / 'ledger.db'}"
        " scayle-orderwise status"
    )
    assert command in out.getvalue().splitlines()
