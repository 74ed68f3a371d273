"""The start-up check that OrderWise holds the carriage item delivery charges are booked to."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scayle_orderwise.cli import app
from scayle_orderwise.config import ConnectorSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.errors import ConfigError
from scayle_orderwise.mapping import MappingConfig
from scayle_orderwise.sandbox import Faults, Sandbox
from scayle_orderwise.sandbox.clock import RealClock
from scayle_orderwise.sandbox.serve import SandboxServer, serve
from scayle_orderwise.store import MemoryStore
from scayle_orderwise.sync.delivery_item import CHECKED_CURSOR, check_delivery_item


def _variant_calls(sandbox: Sandbox) -> int:
    return sum(1 for _m, path, _s in sandbox.orderwise.requests if path.endswith("stock/variants"))


def test_found_once_then_remembered_in_the_ledger() -> None:
    sandbox = Sandbox(seed=1)
    store = MemoryStore()
    client = sandbox.orderwise_client()
    assert check_delivery_item(client, store, MappingConfig()) is True
    assert store.get_cursor(CHECKED_CURSOR) == "CARRIAGE"
    walked = _variant_calls(sandbox)
    assert walked >= 1
    assert check_delivery_item(client, store, MappingConfig()) is True
    assert _variant_calls(sandbox) == walked  # remembered: no second walk


def test_missing_item_is_a_clear_config_error() -> None:
    sandbox = Sandbox(seed=1)
    sandbox.orderwise.remove_variant("CARRIAGE")
    store = MemoryStore()
    with pytest.raises(ConfigError, match="OrderWise has no item 'CARRIAGE'") as info:
        check_delivery_item(sandbox.orderwise_client(), store, MappingConfig())
    assert "delivery_variant_code" in str(info.value)
    assert store.get_cursor(CHECKED_CURSOR) is None


def test_another_code_is_checked_again() -> None:
    sandbox = Sandbox(seed=1)
    store = MemoryStore()
    client = sandbox.orderwise_client()
    check_delivery_item(client, store, MappingConfig())
    with pytest.raises(ConfigError, match="'DEL-UK'"):
        check_delivery_item(client, store, MappingConfig(delivery_variant_code="DEL-UK"))
    sandbox.orderwise.add_service_item("DEL-UK")
    assert check_delivery_item(client, store, MappingConfig(delivery_variant_code="DEL-UK"))


def test_header_booking_needs_no_item() -> None:
    sandbox = Sandbox(seed=1)
    config = MappingConfig(delivery_booking="header")
    assert check_delivery_item(sandbox.orderwise_client(), MemoryStore(), config) is False
    assert sandbox.orderwise.requests == []


def test_unreachable_orderwise_is_a_warning_not_a_stop(caplog: pytest.LogCaptureFixture) -> None:
    sandbox = Sandbox(seed=1, faults=Faults(error_rate=1.0, seed=1))
    store = MemoryStore()
    with caplog.at_level(logging.WARNING, logger="scayle_orderwise.setup"):
        assert check_delivery_item(sandbox.orderwise_client(), store, MappingConfig()) is False
    assert "could not check the OrderWise delivery item 'CARRIAGE'" in caplog.text
    assert store.get_cursor(CHECKED_CURSOR) is None


@pytest.fixture
def served() -> Iterator[SandboxServer]:
    sandbox = Sandbox(seed=4, clock=RealClock())
    with serve("127.0.0.1", 0, sandbox) as server:
        yield server


def _config(served: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    sandbox = served.sandbox
    ids = sandbox.orderwise.export_definitions
    config = tmp_path / "scayle-orderwise.toml"
    config.write_text(
        f"""
[scayle]
base_url = "{served.scayle_base_url}"
shop_key = "{sandbox.scayle.shop_key}"
country_code = "{sandbox.scayle.country_code}"

[orderwise]
api_root = "{served.orderwise_api_root}"
username = "{sandbox.orderwise.username}"
session_id = {sandbox.orderwise.session_id}

[orderwise.export_definitions]
order_changes = {ids.order_changes}
order_by_reference = {ids.order_by_reference}
stock_changes = {ids.stock_changes}
order_details = {ids.order_details}

[store]
url = "sqlite:///{tmp_path / "ledger.db"}"

[alerts]
log = false
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("SCAYLE_ORDERWISE_SCAYLE__TOKEN", sandbox.scayle.token)
    monkeypatch.setenv("SCAYLE_ORDERWISE_ORDERWISE__PASSWORD", sandbox.orderwise.password)
    return config


def test_from_settings_refuses_to_start_without_the_item(
    served: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(served, tmp_path, monkeypatch)
    settings = ConnectorSettings.load(config)
    served.sandbox.orderwise.remove_variant("CARRIAGE")
    with pytest.raises(ConfigError, match="create a non-stock service item with the code CARRIAGE"):
        Connector.from_settings(settings)
    served.sandbox.orderwise.add_service_item("CARRIAGE")
    with Connector.from_settings(settings) as connector:
        assert connector.store.get_cursor(CHECKED_CURSOR) == "CARRIAGE"


def test_cli_says_so_in_one_error_line(
    served: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(served, tmp_path, monkeypatch)
    served.sandbox.orderwise.remove_variant("CARRIAGE")
    result = CliRunner().invoke(app, ["sync", "orders", "--config", str(config)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0].startswith("error: OrderWise has no item 'CARRIAGE'")
