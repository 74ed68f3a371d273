"""The ``scayle-orderwise`` command through typer's runner, against the sandbox served on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flow_helpers import CATALOGUE, order_json
from scayle_orderwise.cli import app
from scayle_orderwise.sandbox import Sandbox
from scayle_orderwise.sandbox.clock import RealClock
from scayle_orderwise.sandbox.serve import SandboxServer, serve

runner = CliRunner()


@pytest.fixture
def served() -> Iterator[SandboxServer]:
    sandbox = Sandbox(seed=4, clock=RealClock())
    for sku in CATALOGUE:
        sandbox.orderwise.add_variant(sku)
    for order_id in range(501, 506):
        sandbox.scayle.add_order(order_json(order_id))
    sandbox.scayle.add_order(order_json(506, lines=[("SKU-NOBODY-KNOWS", 1500, 1, "0.20")]))
    with serve("127.0.0.1", 0, sandbox) as server:
        yield server


@pytest.fixture
def configured(served: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    sandbox = served.sandbox
    config = tmp_path / "scayle-orderwise.toml"
    config.write_text(
        f"""
worker_id = "cli-test"

[scayle]
base_url = "{served.scayle_base_url}"
shop_key = "{sandbox.scayle.shop_key}"
country_code = "{sandbox.scayle.country_code}"

[orderwise]
api_root = "{served.orderwise_api_root}"
username = "{sandbox.orderwise.username}"
session_id = {sandbox.orderwise.session_id}
cancel_endpoint = "{sandbox.orderwise.cancel_path}"

[store]
url = "sqlite:///{tmp_path / "ledger.db"}"

[alerts]
log = false

[flows]
backoff_base_seconds = 0
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("SCAYLE_ORDERWISE_SCAYLE__TOKEN", sandbox.scayle.token)
    monkeypatch.setenv("SCAYLE_ORDERWISE_ORDERWISE__PASSWORD", sandbox.orderwise.password)
    return config


def test_sync_status_quarantine_and_reports(
    configured: Path, served: SandboxServer, tmp_path: Path
) -> None:
    cfg = ["--config", str(configured)]
    result = runner.invoke(app, ["sync", "orders", *cfg])
    assert result.exit_code == 0, result.output
    assert "pushed=5" in result.output and "quarantined=1" in result.output
    assert len(served.sandbox.orderwise.sales_orders) == 5

    status = runner.invoke(app, ["status", "--json", *cfg])
    assert status.exit_code == 0, status.output
    health = json.loads(status.output)
    assert health["counts"]["acknowledged"] == 5 and health["quarantined"] == 1

    listed = runner.invoke(app, ["quarantine", "list", *cfg])
    assert "506" in listed.output and "SKU-NOBODY-KNOWS" in listed.output
    shown = runner.invoke(app, ["quarantine", "show", "506", *cfg])
    assert shown.exit_code == 0 and "quarantined" in shown.output

    served.sandbox.orderwise.add_variant("SKU-NOBODY-KNOWS")
    released = runner.invoke(app, ["quarantine", "release", "506", *cfg])
    assert released.exit_code == 0, released.output
    assert "pushed=1" in runner.invoke(app, ["sync", "orders", *cfg]).output
    assert runner.invoke(app, ["quarantine", "release", "506", *cfg]).exit_code == 1

    out = tmp_path / "recon.json"
    recon = runner.invoke(app, ["reconcile", *cfg, "--format", "json", "--output", str(out)])
    assert recon.exit_code == 0, recon.output
    report = json.loads(out.read_text())
    assert report["summary"]["matched"] == 6 and report["summary"]["by_tier"].get("block", 0) == 0

    html = runner.invoke(app, ["reconcile", *cfg, "--format", "html"])
    assert html.exit_code == 0 and html.output.lstrip().lower().startswith("<!doctype html>")

    postings = runner.invoke(
        app, ["export-postings", *cfg, "--since", "2026-01-01", "--until", "2026-12-31"]
    )
    assert postings.exit_code == 0, postings.output
    assert "T1" in postings.output


def test_retry_requeues_failed_orders_only(configured: Path) -> None:
    result = runner.invoke(app, ["retry", "999", "--config", str(configured)])
    assert result.exit_code == 0 and "0 order(s) queued" in result.output


def test_secrets_in_the_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[scayle]\nbase_url = "https://x"\ntoken = "abc"\n', encoding="utf-8")
    result = runner.invoke(app, ["status", "--config", str(config)])
    assert result.exit_code == 2
    assert "SCAYLE_ORDERWISE_SCAYLE__TOKEN" in result.output and "abc" not in result.output


def test_missing_credentials_are_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCAYLE_ORDERWISE_SCAYLE__TOKEN", raising=False)
    config = tmp_path / "c.toml"
    config.write_text('[scayle]\nbase_url = "https://x"\n', encoding="utf-8")
    result = runner.invoke(app, ["sync", "orders", "--config", str(config)])
    assert result.exit_code == 2
    assert "token" in result.output.lower() and "Traceback" not in result.output


def test_bad_dates_and_settings_exit_2(configured: Path, tmp_path: Path) -> None:
    bad = runner.invoke(app, ["reconcile", "--config", str(configured), "--since", "yesterday"])
    assert bad.exit_code == 2 and "yesterday" in bad.output
    typo = tmp_path / "typo.toml"
    typo.write_text("[flows]\nlease_seconds = -5\n", encoding="utf-8")
    result = runner.invoke(app, ["status", "--config", str(typo)])
    assert result.exit_code == 2 and "lease_seconds" in result.output


def test_demo_end_to_end(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--dir", str(folder), "--orders", "60", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "no duplicates, nothing lost" in result.output
    html = (folder / "reconciliation.html").read_text(encoding="utf-8")
    assert "SCAYLE-" in html and "<script src" not in html
    report = json.loads((folder / "reconciliation.json").read_text(encoding="utf-8"))
    reasons = report["summary"]["by_reason"]
    assert reasons.get("missing_in_erp") == 1  # the planted unknown SKU
    assert (folder / "ledger.db").exists()
