"""Pacing of repeated passes: adaptive for stock (seconds while changes flow), fixed otherwise;
``sync inventory --watch`` uses it by default."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scayle_orderwise import cli
from scayle_orderwise.config import ConnectorSettings, InventorySettings
from scayle_orderwise.errors import ConfigError
from scayle_orderwise.sandbox import Sandbox
from scayle_orderwise.sandbox.clock import RealClock
from scayle_orderwise.sandbox.serve import SandboxServer, serve
from scayle_orderwise.sync import SyncResult
from scayle_orderwise.sync.pacing import (
    DEFAULT_INTERVAL,
    AdaptivePacer,
    FixedPacer,
    pacer_for,
)


def result(**counts: int) -> SyncResult:
    made = SyncResult("inventory")
    for name, n in counts.items():
        made.add(name, n)
    return made


def test_adaptive_pacer_is_quick_while_work_flows_and_backs_off_when_quiet() -> None:
    pacer = AdaptivePacer(min_interval=2.0, max_interval=10.0, growth=1.5)
    delays = [pacer.next_delay(r) for r in [result(pushed=3)] + [result(unchanged=40)] * 5]
    assert delays == [2.0, 3.0, 4.5, 6.75, 10.0, 10.0]
    assert pacer.next_delay(result(pushed=1, unchanged=9)) == 2.0


def test_a_failed_pass_counts_as_quiet() -> None:
    pacer = AdaptivePacer(min_interval=2.0, max_interval=10.0, growth=2.0)
    assert pacer.next_delay(result(failed_pass=1, pushed=1)) == 4.0
    assert pacer.next_delay(None) == 8.0


def test_busy_can_be_decided_by_the_caller() -> None:
    pacer = AdaptivePacer(min_interval=1.0, max_interval=4.0, busy=lambda r: r["rows_read"] > 0)
    assert pacer.next_delay(result(rows_read=1)) == 1.0
    assert pacer.next_delay(result(pushed=5)) == 1.5


def test_adaptive_pacer_refuses_a_max_below_the_min() -> None:
    with pytest.raises(ValueError, match="max_interval"):
        AdaptivePacer(min_interval=5.0, max_interval=1.0)


def test_pacer_for_each_flow() -> None:
    inventory = InventorySettings(poll_min_seconds=1.0, poll_max_seconds=8.0, poll_growth=2.0)
    stock = pacer_for("inventory", inventory)
    assert isinstance(stock, AdaptivePacer)
    assert (stock.min_interval, stock.max_interval, stock.growth) == (1.0, 8.0, 2.0)
    assert pacer_for("inventory", inventory, interval=30.0) == FixedPacer(30.0)
    assert pacer_for("orders") == FixedPacer(DEFAULT_INTERVAL)
    assert FixedPacer(5.0).next_delay(result(pushed=1)) == 5.0


def test_poll_bounds_are_checked_in_the_settings() -> None:
    with pytest.raises(ConfigError, match="poll_max_seconds"):
        ConnectorSettings.load(None, inventory={"poll_min_seconds": 5, "poll_max_seconds": 2})


# ----------------------------------------------------------------------------------------- CLI


@pytest.fixture
def served() -> Iterator[SandboxServer]:
    sandbox = Sandbox(seed=9, clock=RealClock())
    for n in range(5):
        sandbox.scayle.add_variant(f"SKU-{n}")
        sandbox.orderwise.set_free_stock(f"SKU-{n}", Decimal(10 + n))
    with serve("127.0.0.1", 0, sandbox) as server:
        yield server


def _config(served: SandboxServer, folder: Path) -> Path:
    sandbox = served.sandbox
    exports = sandbox.orderwise.export_definitions
    path = folder / "scayle-orderwise.toml"
    path.write_text(
        f"""
[scayle]
base_url = "{served.scayle_base_url}"
shop_key = "{sandbox.scayle.shop_key}"
country_code = "{sandbox.scayle.country_code}"
default_warehouse = "{sandbox.scayle.default_warehouse}"

[orderwise]
api_root = "{served.orderwise_api_root}"
username = "{sandbox.orderwise.username}"
session_id = {sandbox.orderwise.session_id}

[orderwise.export_definitions]
order_changes = {exports.order_changes}
order_by_reference = {exports.order_by_reference}
stock_changes = {exports.stock_changes}
order_details = {exports.order_details}

[store]
url = "sqlite:///{folder / "ledger.db"}"

[alerts]
log = false
""",
        encoding="utf-8",
    )
    return path


def test_sync_inventory_watch_adapts_by_default(
    served: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0.1.0 waited 60 s between stock passes; now 2 s while stock moves, longer while quiet."""
    sandbox = served.sandbox
    monkeypatch.setenv("SCAYLE_ORDERWISE_SCAYLE__TOKEN", sandbox.scayle.token)
    monkeypatch.setenv("SCAYLE_ORDERWISE_ORDERWISE__PASSWORD", sandbox.orderwise.password)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:  # stock moves in OrderWise while the watcher waits
            sandbox.orderwise.set_free_stock("SKU-2", Decimal(3))

    monkeypatch.setattr(cli.time, "sleep", sleep)
    config = _config(served, tmp_path)
    outcome = CliRunner().invoke(
        cli.app, ["sync", "inventory", "--config", str(config), "--watch", "--passes", "5"]
    )
    assert outcome.exit_code == 0, outcome.output
    assert waits == [2.0, 3.0, 4.5, 2.0]
    assert sandbox.scayle.stock("SKU-2") == 3

    waits.clear()
    fixed = CliRunner().invoke(
        cli.app,
        [
            "sync",
            "inventory",
            "--config",
            str(config),
            "--watch",
            "--passes",
            "3",
            "--interval",
            "7",
        ],
    )
    assert fixed.exit_code == 0, fixed.output
    assert waits == [7.0, 7.0]


def test_pacers_fit_the_service_scheduler() -> None:
    from scayle_orderwise.service.scheduler import Pacer as SchedulerPacer

    adaptive: SchedulerPacer = pacer_for("inventory")
    fixed: SchedulerPacer = FixedPacer(7.0)
    assert adaptive.next_delay(result(pushed=1), 60.0) == 2.0
    assert adaptive.next_delay(result(), 60.0) == 3.0  # the scheduler's interval is not a bound
    assert fixed.next_delay(None, 60.0) == 7.0


def test_a_pass_that_only_deferred_backs_off() -> None:
    # SCAYLE down or rate-limited: every push is deferred, nothing reaches the shop. Polling
    # OrderWise and re-pushing every figure at the fastest pace would hammer a struggling API.
    pacer = pacer_for("inventory", InventorySettings())
    delays = [pacer.next_delay(result(rows_read=50, deferred=50)) for _ in range(5)]
    assert delays[-1] == InventorySettings().poll_max_seconds
    assert pacer.next_delay(result(pushed=1, deferred=49)) == InventorySettings().poll_min_seconds
