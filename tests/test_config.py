"""Connector settings: TOML plus environment, secrets from the environment only, reprs without secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from scayle_orderwise.config import ConnectorSettings
from scayle_orderwise.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scayle-orderwise.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text",
    [
        '[scayle]\ntoken = "file-token"\n',
        '[SCAYLE]\ntoken = "file-token"\n',
        '[Orderwise]\nPassword = "file-pass"\n',
        '[alerts]\nwebhook_url = "https://hooks.example/T0/secret"\n',
        '[store]\nurl = "postgresql://ow:S3cret@db/ledger"\n',
    ],
)
def test_secrets_in_the_file_are_refused_whatever_the_case(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        ConnectorSettings.load(_write(tmp_path, text))
    message = str(info.value)
    assert "SCAYLE_ORDERWISE_" in message
    assert "file-token" not in message and "file-pass" not in message and "S3cret" not in message


def test_environment_overrides_the_file_and_reprs_hide_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, '[scayle]\nbase_url = "https://a"\n[flows]\nlease_seconds = 60\n')
    monkeypatch.setenv("SCAYLE_ORDERWISE_SCAYLE__TOKEN", "env-token")
    monkeypatch.setenv("SCAYLE_ORDERWISE_FLOWS__LEASE_SECONDS", "90")
    monkeypatch.setenv("SCAYLE_ORDERWISE_STORE__URL", "postgresql://ow:S3cret@db/ledger")
    settings = ConnectorSettings.load(path)
    assert settings.flows.lease_seconds == 90
    assert settings.scayle.base_url == "https://a"
    assert (
        settings.scayle.token is not None
        and settings.scayle.token.get_secret_value() == "env-token"
    )
    assert settings.store.url == "postgresql://ow:S3cret@db/ledger"
    text = repr(settings) + str(settings)
    assert "env-token" not in text and "S3cret" not in text
    assert settings.store.display_url == "postgresql://ow:***@db/ledger"


def test_invalid_values_are_one_clear_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="lease_seconds"):
        ConnectorSettings.load(_write(tmp_path, "[flows]\nlease_seconds = 0\n"))
    with pytest.raises(ConfigError, match="not found"):
        ConnectorSettings.load(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        ConnectorSettings.load(_write(tmp_path, "[flows\n"))


_REAL_INSTALLATION = """
[store]
url = "memory://"
[scayle]
base_url = "https://acme-live.admin.api.scayle.cloud/api/admin/v1"
[orderwise]
api_root = "https://acme.orderwisecloud.com/OWAPI"
username = "scayle-connector"
[orderwise.export_definitions]
order_changes = 31
order_by_reference = 32
stock_changes = 33
order_details = 34
"""


@pytest.mark.parametrize(("line", "expected"), [("", None), ("orders_by_references = 36\n", 36)])
def test_the_batch_lookup_definition_is_a_setting_and_never_the_sandbox_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, expected: int | None
) -> None:
    """The batch lookup of the orders flow runs the installation's ``orders_by_references``
    definition; without one it looks each order up on its own, never the sandbox's id 106."""
    from scayle_orderwise.connector import Connector

    monkeypatch.setenv("SCAYLE_ORDERWISE_SCAYLE__TOKEN", "env-token")
    monkeypatch.setenv("SCAYLE_ORDERWISE_ORDERWISE__PASSWORD", "env-pass")
    settings = ConnectorSettings.load(_write(tmp_path, _REAL_INSTALLATION + line))
    with Connector.from_settings(settings) as connector:
        exports = connector.orderwise.export_definitions
    assert exports.orders_by_references == expected
    assert exports.order_by_reference == 32


def test_one_name_for_the_postgres_dsn_and_the_old_ones_deprecated() -> None:
    """Issue 15 B11: SCAYLE_ORDERWISE_STORE__URL; the two older names still work, with a warning."""
    import warnings

    from scayle_orderwise.config import postgres_dsn_from_env

    dsn = "postgresql://u@db/x"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert postgres_dsn_from_env({"SCAYLE_ORDERWISE_STORE__URL": dsn}) == dsn
        assert postgres_dsn_from_env({"SCAYLE_ORDERWISE_STORE__URL": "sqlite:///l.db"}) is None
        assert postgres_dsn_from_env({}) is None
    for old in ("SCAYLE_ORDERWISE_TEST_PG_DSN", "SCAYLE_ORDERWISE_PG_DSN"):
        with pytest.warns(DeprecationWarning, match="SCAYLE_ORDERWISE_STORE__URL"):
            assert postgres_dsn_from_env({old: dsn}) == dsn


def test_the_suite_runs_without_the_store_url_in_its_environment() -> None:
    """conftest reads the DSN once and unsets it, so settings tests see a clean environment."""
    import os

    assert "SCAYLE_ORDERWISE_STORE__URL" not in os.environ
