"""Ledger retention (``store/retention.py`` and ``scayle-orderwise ledger archive``): finished
records leave the live ledger after N days, stay findable by key, and nothing is done twice."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flow_helpers import add_orders, orderwise_orders_per_reference, stocked_sandbox
from scayle_orderwise.cli import app
from scayle_orderwise.config import FlowSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.sandbox import Sandbox
from scayle_orderwise.sandbox.clock import VirtualClock
from scayle_orderwise.store import SqliteStore, State
from scayle_orderwise.store.retention import archive_ledger

runner = CliRunner()
FLOWS = FlowSettings(backoff_base_seconds=0)


def _pushed(path: Path, clock: VirtualClock) -> tuple[Sandbox, Connector, list[int]]:
    sandbox = stocked_sandbox(clock=clock)
    ids = add_orders(sandbox, range(1, 21))
    connector = Connector.for_sandbox(sandbox, store=f"sqlite:///{path}", flows=FLOWS)
    assert connector.sync_orders().pushed == 20
    return sandbox, connector, ids


def test_archived_orders_are_not_pushed_again_by_the_next_poll(tmp_path: Path) -> None:
    clock = VirtualClock(frozen=True)
    sandbox, connector, ids = _pushed(tmp_path / "ledger.db", clock)
    clock.advance(timedelta(days=91).total_seconds())
    exported = tmp_path / "archive.jsonl"
    with exported.open("w", encoding="utf-8") as handle:
        moved = archive_ledger(
            connector.store, older_than=timedelta(days=90), export=handle, now=clock.utcnow()
        )
    assert moved == 20
    lines = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    assert sorted(line["key"] for line in lines) == sorted(f"order:{i}" for i in ids)
    assert all(line["state"] == "acknowledged" and line["history"] for line in lines)
    assert sum(connector.store.counts(kind="order").values()) == 0  # the live ledger is empty
    result = connector.sync_orders()  # the poll walks the same 20 orders again
    assert result.pushed == 0 and result.discovered == 0 and result.adopted == 0
    assert set(orderwise_orders_per_reference(sandbox).values()) == {1}
    record = connector.store.get(f"order:{ids[0]}")
    assert record is not None and record.state == State.ACKNOWLEDGED and record.external_id


def test_recent_records_stay_live_and_a_dry_run_moves_nothing(tmp_path: Path) -> None:
    clock = VirtualClock(frozen=True)
    _sandbox, connector, _ids = _pushed(tmp_path / "ledger.db", clock)
    clock.advance(timedelta(days=10).total_seconds())
    store, now = connector.store, clock.utcnow()
    assert archive_ledger(store, older_than=timedelta(days=30), now=now) == 0
    assert archive_ledger(store, older_than=timedelta(days=5), dry_run=True, now=now) == 20
    assert store.counts(kind="order")[State.ACKNOWLEDGED] == 20
    with pytest.raises(ValueError, match="negative"):
        archive_ledger(store, older_than=timedelta(days=-1), now=now)


def test_cli_archives_with_an_export_and_needs_only_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = VirtualClock(frozen=True, wall_start=VirtualClock().utcnow() - timedelta(days=200))
    path = tmp_path / "ledger.db"
    _sandbox, connector, ids = _pushed(path, clock)
    connector.close()
    monkeypatch.setenv("SCAYLE_ORDERWISE_STORE__URL", f"sqlite:///{path}")
    dry = runner.invoke(app, ["ledger", "archive", "--older-than", "90", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "20 record(s) would be archived" in dry.output
    export = tmp_path / "archive.jsonl"
    done = runner.invoke(app, ["ledger", "archive", "--older-than", "90", "--export", str(export)])
    assert done.exit_code == 0, done.output
    assert "20 record(s) archived" in done.output
    assert len(export.read_text(encoding="utf-8").splitlines()) == 20
    status = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert sum(status["counts"].values()) == 0
    with SqliteStore(path) as store:
        assert store.get(f"order:{ids[0]}") is not None  # still findable by key
    refused = runner.invoke(
        app, ["ledger", "archive", "--export", str(tmp_path / "no" / "such" / "dir.jsonl")]
    )
    assert refused.exit_code == 2 and "cannot write" in refused.output
