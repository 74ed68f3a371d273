"""The ``scayle-orderwise`` command through typer's runner, against the sandbox served on loopback."""

from __future__ import annotations

import json
import logging
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

[orderwise.export_definitions]
order_changes = {sandbox.orderwise.export_definitions.order_changes}
order_by_reference = {sandbox.orderwise.export_definitions.order_by_reference}
stock_changes = {sandbox.orderwise.export_definitions.stock_changes}
order_details = {sandbox.orderwise.export_definitions.order_details}
stock_full = {sandbox.orderwise.export_definitions.stock_full}

[store]
url = "sqlite:///{tmp_path / "ledger.db"}"

[alerts]
log = false

[flows]
backoff_base_seconds = 0

[inventory]
default_warehouse = "{sandbox.scayle.default_warehouse}"
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
    assert html.exit_code == 0 and html.stdout.lstrip().lower().startswith("<!doctype html>")

    postings = runner.invoke(
        app, ["export-postings", *cfg, "--since", "2026-01-01", "--until", "2026-12-31"]
    )
    assert postings.exit_code == 0, postings.output
    assert "T1" in postings.output


def test_retry_requeues_failed_orders_only(configured: Path) -> None:
    assert runner.invoke(app, ["sync", "orders", "--config", str(configured)]).exit_code == 0
    result = runner.invoke(app, ["retry", "999", "501", "--config", str(configured)])
    assert result.exit_code == 1 and "0 order(s) queued" in result.stdout
    assert "skipped: order:999 is not in the ledger" in result.stderr
    assert "skipped: order:501 is acknowledged, not failed" in result.stderr
    assert result.stderr.count("error:") == 1 and "2 of 2" in result.stderr


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


def test_ledger_commands_need_no_credentials_and_show_open_alerts(
    configured: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["sync", "orders", "--config", str(configured)]).exit_code == 0
    monkeypatch.delenv("SCAYLE_ORDERWISE_SCAYLE__TOKEN")
    monkeypatch.delenv("SCAYLE_ORDERWISE_ORDERWISE__PASSWORD")
    monkeypatch.setenv("SCAYLE_ORDERWISE_STORE__URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    status = runner.invoke(app, ["status", "--json"])
    assert status.exit_code == 0, status.output
    health = json.loads(status.output)
    assert health["schema_version"] == 2
    assert {"kind": "order_quarantined", "subject": "506", "cause": "unknown_variant"} in health[
        "open_alerts"
    ]
    listed = runner.invoke(app, ["quarantine", "list", "--kind", "all"])
    assert listed.exit_code == 0 and "506" in listed.output
    assert runner.invoke(app, ["quarantine", "release", "order:506"]).exit_code == 0
    health = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert health["open_alerts"] == [] and health["counts"]["pending"] == 1


def test_stock_drift_report(configured: Path, served: SandboxServer) -> None:
    served.sandbox.orderwise.set_free_stock("SKU-TEE-BLK-M", 12)
    result = runner.invoke(
        app, ["reconcile-stock", "--config", str(configured), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    rows = [r for r in report["rows"] if r["sku"] == "SKU-TEE-BLK-M"]
    assert rows and rows[0]["expected"] == 12


def test_watch_reports_a_failed_pass_and_goes_on(configured: Path, served: SandboxServer) -> None:
    served.sandbox.orderwise.exports_permitted = False  # every export definition answers 403
    result = runner.invoke(
        app,
        ["sync", "all", "--config", str(configured), "--watch", "--interval", "1", "--passes", "2"],
    )
    assert result.exit_code == 0, result.output
    # The orders flow ran in both passes (and stopped: it may not create what it cannot look up).
    orders = [line for line in result.output.splitlines() if line.startswith("orders:")]
    assert len(orders) == 2
    once = runner.invoke(app, ["sync", "inventory", "--config", str(configured)])
    assert once.exit_code == 1 and "failed_pass=1" in once.output


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[orderwise.export_definitions]\norder_change = 31\n", "order_change"),
        ('[orderwise.status_map]\n"Despatched" = "shipped"\n', "canonical"),
    ],
)
def test_bad_orderwise_settings_exit_2(tmp_path: Path, toml: str, needle: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(toml, encoding="utf-8")
    result = runner.invoke(app, ["status", "--config", str(config)])
    assert result.exit_code == 2 and needle in result.output and "Traceback" not in result.output


def test_export_definitions_are_required_for_real_systems(configured: Path, tmp_path: Path) -> None:
    text = configured.read_text(encoding="utf-8")
    stripped = (
        text.split("[orderwise.export_definitions]")[0] + "[store]" + text.split("[store]")[1]
    )
    config = tmp_path / "no-exports.toml"
    config.write_text(stripped, encoding="utf-8")
    result = runner.invoke(app, ["sync", "orders", "--config", str(config)])
    assert result.exit_code == 2 and "order_changes" in result.output


def test_alerts_can_be_listed_and_closed_without_credentials(
    configured: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["sync", "orders", "--config", str(configured)]).exit_code == 0
    monkeypatch.setenv("SCAYLE_ORDERWISE_STORE__URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    listed = runner.invoke(app, ["alerts", "list"])
    assert listed.exit_code == 0 and "order_quarantined" in listed.output and "506" in listed.output
    assert runner.invoke(app, ["alerts", "resolve", "order_quarantined", "506"]).exit_code == 0
    assert "no open alerts" in runner.invoke(app, ["alerts", "list"]).output
    assert runner.invoke(app, ["alerts", "resolve", "order_quarantined", "506"]).exit_code == 1


def test_a_missing_ledger_is_not_created_silently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCAYLE_ORDERWISE_STORE__URL", f"sqlite:///{tmp_path / 'nowhere.db'}")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2 and "no ledger" in result.output
    assert not (tmp_path / "nowhere.db").exists()


def test_csv_to_a_terminal_ends_with_one_newline(configured: Path) -> None:
    """Issue 15 B14: the CSV ends with its own newline; the command adds no blank line."""
    assert runner.invoke(app, ["sync", "orders", "--config", str(configured)]).exit_code == 0
    for args in (
        ["reconcile", "--format", "csv"],
        ["export-postings", "--since", "2026-01-01", "--until", "2026-12-31"],
    ):
        result = runner.invoke(app, [*args, "--config", str(configured)])
        assert result.exit_code == 0, result.stderr
        assert result.stdout.endswith("\n") and not result.stdout.endswith("\n\n"), args


def test_reconcile_shows_orders_read_per_system(configured: Path) -> None:
    """Issue 15 B10: reconciliation counts every order it reads, on standard error."""
    assert runner.invoke(app, ["sync", "orders", "--config", str(configured)]).exit_code == 0
    result = runner.invoke(app, ["reconcile", "--format", "json", "--config", str(configured)])
    assert result.exit_code == 0, result.stderr
    assert "SCAYLE orders read" in result.stderr and "OrderWise orders read" in result.stderr
    scayle = next(line for line in result.stderr.splitlines() if "SCAYLE orders read" in line)
    assert " 6 " in f" {scayle} "  # all six SCAYLE orders were read
    assert json.loads(result.stdout)["summary"]["shop_orders"] == 6


def test_a_host_that_does_not_answer_is_reported_while_retrying(
    configured: Path, tmp_path: Path
) -> None:
    """Issue 15 B10: against a host that is down, each retry prints a line (not 18 s of silence)."""
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = configured.read_text(encoding="utf-8")
    down = tmp_path / "down.toml"
    start = text.index('base_url = "') + len('base_url = "')
    end = text.index('"', start)
    down.write_text(
        text[:start] + f"http://127.0.0.1:{port}/scayle/api/admin/v1" + text[end:],
        encoding="utf-8",
    )
    result = runner.invoke(app, ["sync", "orders", "--config", str(down)])
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) >= 1 and "SCAYLE" in notes[0] and "trying again" in notes[0]
    assert "poll_failed=1" in result.stdout
    # With the operator's logging at info, the log lines say it already: no second line per retry.
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logged = runner.invoke(
            app, ["--log-level", "info", "sync", "orders", "--config", str(down)]
        )
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    assert "note: " not in logged.stderr
    # Each retry of one call is said once (the start-up check of warehouses and carriers retries
    # its own calls too).
    retries = [line for line in logged.stderr.splitlines() if "retry 1 " in line]
    assert sum(1 for line in retries if line.endswith("/orders]")) == 1, logged.stderr


def test_check_compares_the_scayle_tenant_with_the_settings(
    configured: Path, tmp_path: Path
) -> None:
    ok = runner.invoke(app, ["check", "--config", str(configured)])
    assert ok.exit_code == 0, ok.output
    assert "SCAYLE has every warehouse and carrier the settings name" in ok.output

    text = configured.read_text(encoding="utf-8")
    text = text.replace('default_warehouse = "WH1"', 'default_warehouse = "WH9"')
    text = text.replace(
        "backoff_base_seconds = 0", 'backoff_base_seconds = 0\ndefault_carrier = "NOPE"'
    )
    broken = tmp_path / "broken.toml"
    broken.write_text(text, encoding="utf-8")
    bad = runner.invoke(app, ["check", "--config", str(broken)])
    assert bad.exit_code == 1
    assert "'WH9'" in bad.output and "'NOPE'" in bad.output
    assert bad.output.count("error:") == 1 and "Traceback" not in bad.output
    as_json = runner.invoke(app, ["check", "--json", "--config", str(broken)])
    assert as_json.exit_code == 1 and '"ok": false' in as_json.output

    synced = runner.invoke(app, ["sync", "orders", "--config", str(broken)])
    assert synced.exit_code == 0  # the orders flow does not need the warehouse
    assert "warning: SCAYLE has no warehouse 'WH9'" in synced.output
