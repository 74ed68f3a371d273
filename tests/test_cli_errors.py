"""Every failure a user can cause is one ``error:`` line and a non-zero exit; help and wording are tidy.

Issue 11 §5 (errors, secrets) and issue 15 B4–B8 (choices, periods, one "not found" wording,
``--version``, tidy help, ``status --json`` schema and ``--check``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import scayle_orderwise
from scayle_orderwise.cli import app
from scayle_orderwise.store import SqliteStore, State

runner = CliRunner()
SECRET = "s3cretPW-77"


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A SQLite ledger with a quarantined, a failed and an acknowledged order; the env points at it."""
    path = tmp_path / "ledger.db"
    with SqliteStore(path) as store:
        store.ensure("order:1", kind="order", subject="1", state=State.QUARANTINED, reason="bad")
        store.ensure("order:2", kind="order", subject="2", state=State.FAILED, reason="gave up")
        store.ensure("order:3", kind="order", subject="3", state=State.ACKNOWLEDGED)
        store.ensure("shipment:3:P1", kind="shipment", subject="3", state=State.QUARANTINED)
    monkeypatch.setenv("SCAYLE_ORDERWISE_STORE__URL", f"sqlite:///{path}")
    monkeypatch.delenv("SCAYLE_ORDERWISE_CONFIG", raising=False)
    yield path


def one_error_line(stderr: str) -> str:
    """The single ``error:`` line of ``stderr`` (asserting there is exactly one and no traceback)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


# ------------------------------------------------------------------------------ version and help


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"scayle-orderwise {scayle_orderwise.__version__}"


def _commands(group: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    commands = getattr(group, "commands", {})
    for name, command in commands.items():
        yield (*path, name)
        yield from _commands(command, (*path, name))


def test_help_reads_in_the_usual_style() -> None:
    import typer.main

    runner.invoke(app, ["--help"])  # the tree is tidied when the command runs
    paths = list(_commands(typer.main.get_command(app)))
    assert ("quarantine", "show") in paths and ("retry",) in paths
    for path in [(), *paths]:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
        assert result.exit_code == 0, path
        for raw in ("<bool>", "<list[", "<str>", "{subject}", "{kind}", "[order_ids]"):
            assert raw not in result.stdout, (path, raw)
    usage = runner.invoke(app, ["retry", "--help"]).stdout
    assert "retry [OPTIONS] [ORDER_ID_OR_KEY]..." in usage
    usage = runner.invoke(app, ["quarantine", "show", "--help"]).stdout
    assert "show [OPTIONS] ORDER_ID_OR_KEY" in usage
    usage = runner.invoke(app, ["alerts", "resolve", "--help"]).stdout
    assert "resolve [OPTIONS] KIND SUBJECT" in usage


def test_quarantine_kinds_are_validated_and_named_as_in_the_ledger(ledger: Path) -> None:
    bogus = runner.invoke(app, ["quarantine", "list", "--kind", "bogus"])
    assert bogus.exit_code == 2
    line = one_error_line(bogus.stderr)
    assert "bogus" in line and "shipment" in line and "cancellation" in line
    shipments = runner.invoke(app, ["quarantine", "list", "--kind", "shipment"])
    assert shipments.exit_code == 0 and "shipment:3:P1" in shipments.stdout
    none = runner.invoke(app, ["quarantine", "list", "--kind", "cancellation"])
    assert none.exit_code == 0 and "nothing is quarantined (kind cancellation)" in none.stdout
    helptext = runner.invoke(app, ["quarantine", "--help"]).stdout
    assert "shipments" in helptext and "packages" not in helptext


@pytest.mark.parametrize("command", ["reconcile", "export-postings"])
def test_an_empty_or_reversed_period_is_refused(command: str, tmp_path: Path) -> None:
    out = tmp_path / "report.out"
    result = runner.invoke(
        app, [command, "--since", "2026-12-31", "--until", "2026-01-01", "-o", str(out)]
    )
    assert result.exit_code == 2
    assert "is not before" in one_error_line(result.stderr)
    assert not out.exists()


def test_not_found_is_worded_one_way(ledger: Path) -> None:
    wording = "order:999 is not in the ledger"
    for args in (["quarantine", "show", "999"], ["quarantine", "release", "999"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and one_error_line(result.stderr) == f"error: {wording}"
    retried = runner.invoke(app, ["retry", "999"])
    assert retried.exit_code == 1 and f"skipped: {wording}" in retried.stderr
    wrong_state = runner.invoke(app, ["quarantine", "release", "3"])
    assert one_error_line(wrong_state.stderr) == "error: order:3 is acknowledged, not quarantined"
    assert runner.invoke(app, ["retry", "2"]).exit_code == 0  # the failed one is queued


# ------------------------------------------------------------------------------------ status


def test_status_json_has_a_schema_version_and_named_alert_fields(ledger: Path) -> None:
    from scayle_orderwise.alerts import AlertDispatcher

    with SqliteStore(ledger) as store:
        AlertDispatcher(state=store).raise_alert("order_quarantined", "1", "bad")
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.stderr
    health = json.loads(result.stdout)
    assert health["schema_version"] == 2 and health["ok"] is False
    assert {"kind": "order_quarantined", "subject": "1", "cause": "bad"} in health["open_alerts"]
    assert set(health) >= {"counts", "oldest_pending", "oldest_sent", "quarantined", "checked_at"}


def test_status_check_turns_health_into_the_exit_code(ledger: Path, tmp_path: Path) -> None:
    unhealthy = runner.invoke(app, ["status", "--check", "--json"])
    assert unhealthy.exit_code == 1 and json.loads(unhealthy.stdout)["ok"] is False
    assert runner.invoke(app, ["status"]).exit_code == 0  # without --check: information only
    healthy = tmp_path / "healthy.db"
    SqliteStore(healthy).close()
    result = runner.invoke(
        app, ["status", "--check"], env={"SCAYLE_ORDERWISE_STORE__URL": f"sqlite:///{healthy}"}
    )
    assert result.exit_code == 0, result.stderr


# ------------------------------------------------------------------------ one error: line each


def _missing_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra was not installed
    monkeypatch.delitem(sys.modules, "scayle_orderwise.store.postgres", raising=False)


@pytest.mark.parametrize(
    ("case", "args", "env", "code", "needle"),
    [
        ("config is a directory", ["status", "-c", "{tmp}"], {}, 2, "is a directory"),
        ("config missing", ["status", "-c", "{tmp}/nope.toml"], {}, 2, "not found"),
        ("config not TOML", ["status", "-c", "{tmp}/bad.toml"], {}, 2, "not valid TOML"),
        (
            "ledger missing",
            ["status"],
            {"SCAYLE_ORDERWISE_STORE__URL": "sqlite:///{tmp}/none.db"},
            2,
            "no ledger",
        ),
        (
            "ledger is a directory",
            ["quarantine", "list"],
            {"SCAYLE_ORDERWISE_STORE__URL": "sqlite:///{tmp}"},
            2,
            "no ledger",
        ),
        (
            "PostgreSQL unreachable",
            ["status"],
            {"SCAYLE_ORDERWISE_STORE__URL": f"postgresql://u:{SECRET}@127.0.0.1:1/x"},
            1,
            "cannot connect to PostgreSQL",
        ),
        (
            "PostgreSQL DSN malformed",
            ["alerts", "list"],
            {"SCAYLE_ORDERWISE_STORE__URL": f"postgresql://u:{SECRET}%zz@127.0.0.1:1/x"},
            1,
            "percent-encoded",
        ),
        (
            "postgres extra missing",
            ["status"],
            {"SCAYLE_ORDERWISE_STORE__URL": f"postgresql://u:{SECRET}@127.0.0.1:1/x"},
            2,
            "scayle-orderwise[postgres]",
        ),
        (
            "unsupported store",
            ["status"],
            {"SCAYLE_ORDERWISE_STORE__URL": "mysql://u@h/x"},
            2,
            "unsupported store URL",
        ),
        ("unknown option", ["sync", "--bogus"], {}, 2, "No such option"),
        ("bad date", ["reconcile", "--since", "yesterday"], {}, 2, "yesterday"),
        ("missing credentials", ["sync", "-c", "{tmp}/empty.toml"], {}, 2, "token"),
    ],
)
def test_every_failure_is_one_error_line(
    case: str,
    args: list[str],
    env: dict[str, str],
    code: int,
    needle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "bad.toml").write_text("[store\nurl = 1", encoding="utf-8")
    (tmp_path / "empty.toml").write_text("", encoding="utf-8")
    monkeypatch.delenv("SCAYLE_ORDERWISE_SCAYLE__TOKEN", raising=False)
    monkeypatch.delenv("SCAYLE_ORDERWISE_STORE__URL", raising=False)
    monkeypatch.delenv("SCAYLE_ORDERWISE_CONFIG", raising=False)
    if case == "postgres extra missing":
        _missing_postgres(monkeypatch)
    fill = {k: v.replace("{tmp}", str(tmp_path)) for k, v in env.items()}
    result = runner.invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in args], env=fill)
    assert result.exit_code == code, (case, result.stdout, result.stderr, result.exception)
    line = one_error_line(result.stderr)
    assert needle in line, line
    assert SECRET not in result.stdout + result.stderr


def test_an_unexpected_error_is_one_redacted_line_and_debug_shows_the_traceback(
    ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scayle_orderwise.connector as connector

    monkeypatch.setenv("SCAYLE_ORDERWISE_SCAYLE__TOKEN", SECRET)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"boom with {SECRET} and postgresql://u:{SECRET}x@db/x")

    monkeypatch.setattr(connector, "ledger_health", broken)
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert "unexpected RuntimeError: boom" in line and "--debug" in line
    assert SECRET not in result.stderr
    debug = runner.invoke(app, ["--debug", "status"])
    assert isinstance(debug.exception, RuntimeError)  # the traceback is not swallowed


def test_a_report_that_cannot_be_written_is_one_line(ledger: Path, tmp_path: Path) -> None:
    from scayle_orderwise.cli import _emit

    with pytest.raises(Exception) as info:
        _emit("a,b\n", tmp_path)  # a directory
    assert getattr(info.value, "exit_code", None) == 2
