"""The example scripts run against the sandbox and do what their docstrings promise.

Each example is imported from ``examples/`` and its ``main``/``run`` called, with assertions on
what really happened (sales orders in OrderWise, shipments, files written, exceptions found); the
scripts are also run as ``python examples/<name>.py`` with no arguments, as a user would.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from scayle_orderwise.config import ConnectorSettings, ScayleSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.reconcile import Tier
from scayle_orderwise.sandbox import Sandbox, make_order
from scayle_orderwise.store import SqliteStore, State

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_script(
    name: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=EXAMPLES.parent,
    )


# ------------------------------------------------------------------------------------ every script


def test_every_example_has_a_docstring_and_a_readme_line() -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for path in sorted(EXAMPLES.glob("*.py")):
        module = load(path.stem)
        assert module.__doc__ and "sandbox" in module.__doc__.lower(), path.name
        assert "Adapting it to real systems" in module.__doc__ or path.stem == "custom_mapper"
        assert f"examples/{path.name}" in readme, f"{path.name} missing from examples/README.md"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("quickstart", "4 SCAYLE orders -> 4 OrderWise sales orders, 2 SCAYLE shipments"),
        ("webhook_receiver", "webhooks recorded 5, duplicates 1, refused 1 (401) and 2 (400)"),
        ("month_end_reconciliation", "exceptions by reason"),
    ],
)
def test_script_runs_without_arguments(name: str, expected: str) -> None:
    done = run_script(name)
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout
    assert "Traceback" not in done.stderr


# -------------------------------------------------------------------------------------- quickstart


def test_quickstart_pushes_ships_and_recovers_the_quarantined_order(tmp_path: Path) -> None:
    example = load("quickstart")
    outcome = example.main([str(tmp_path)])
    assert outcome["orderwise_sales_orders"] == len(example.ORDERS) == 4
    assert outcome["quarantined_first_pass"] == 1
    assert outcome["shipments"] == 2
    assert outcome["ledger"] == {"acknowledged": 4}
    assert outcome["healthy"] is True

    with SqliteStore(tmp_path / "ledger.db") as store:  # the ledger survives the run
        orders = {r.subject: r for r in store.records(kind="order")}
        assert set(orders) == {"5001", "5002", "5003", "5004"}
        assert all(r.state == State.ACKNOWLEDGED and r.external_id for r in orders.values())
        steps = [t.to_state for t in orders["5004"].history]
        assert State.QUARANTINED in steps and steps[-1] == State.ACKNOWLEDGED
        assert "HOODIE-GRY-L" in (
            orders["5004"].history[steps.index(State.QUARANTINED)].reason or ""
        )
        shipments = list(store.records(kind="shipment"))
        assert sorted(r.subject for r in shipments) == ["5001", "5002"]
        assert all(r.state == State.ACKNOWLEDGED for r in shipments)


# ------------------------------------------------------------------------------- month-end close


@pytest.fixture(scope="module")
def month_end(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    example = load("month_end_reconciliation")
    outcome: dict[str, object] = example.main([str(tmp_path_factory.mktemp("month-end"))])
    outcome["module"] = example
    return outcome


def test_month_end_finds_exactly_the_planted_problems(month_end: dict[str, object]) -> None:
    example = month_end["module"]
    report = month_end["report"]
    assert isinstance(example, ModuleType)
    needs_a_person = {
        (e.reference, str(e.reason)) for e in report.exceptions if e.tier != Tier.AUTO_ACCEPT
    }
    assert needs_a_person == {
        (f"SCAYLE-{example.GHOST_ID}", "missing_in_erp"),
        (f"SCAYLE-{example.DUPLICATED_ID}", "duplicate_in_erp"),
        (f"SCAYLE-{example.LATE_CANCEL_ID}", "status_mismatch"),
        (example.HAND_KEYED_REFERENCE, "unknown_in_shop"),
    }
    tiers = {(str(e.reason), str(e.tier)) for e in report.exceptions}
    assert ("missing_in_erp", "block") in tiers and ("duplicate_in_erp", "block") in tiers
    references = {e.reference for e in report.exceptions}
    assert f"SCAYLE-{example.NEXT_MONTH_ID}" not in references  # June is outside the period
    summary = report.summary
    assert summary.shop_orders == example.MONTH_ORDERS + 1  # the month plus the quarantined one
    assert summary.erp_orders == example.MONTH_ORDERS + 2  # plus the duplicate and the hand-keyed
    assert summary.clean >= summary.matched - 3  # clean orders are left alone


def test_month_end_writes_the_four_files(month_end: dict[str, object]) -> None:
    folder = month_end["folder"]
    assert isinstance(folder, Path)
    assert sorted(p.name for p in folder.iterdir()) == [
        "postings.csv",
        "reconciliation.csv",
        "reconciliation.html",
        "reconciliation.json",
    ]
    html = (folder / "reconciliation.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "<script src" not in html and "<link" not in html  # self-contained for finance
    assert "SCAYLE-60100" in html and "May 2026" in html

    rows = list(csv.DictReader(io.StringIO((folder / "reconciliation.csv").read_text("utf-8"))))
    assert {(r["reference"], r["reason"]) for r in rows if r["tier"] == "block"} == {
        ("SCAYLE-60100", "missing_in_erp"),
        ("SCAYLE-60006", "duplicate_in_erp"),
    }
    data = json.loads((folder / "reconciliation.json").read_text("utf-8"))
    assert data["summary"]["by_reason"]["unknown_in_shop"] == 1
    assert len(data["exceptions"]) == len(rows)


def test_month_end_postings_add_up_to_the_booked_orders(month_end: dict[str, object]) -> None:
    example = month_end["module"]
    sandbox = month_end["sandbox"]
    assert isinstance(example, ModuleType) and isinstance(sandbox, Sandbox)
    rows = list(csv.DictReader(io.StringIO(str(month_end["postings"]))))
    assert {r["period"] for r in rows} == {"2026-05"}
    (total,) = [r for r in rows if r["kind"] == "total"]
    booked = [
        i
        for i in range(example.FIRST_ID, example.FIRST_ID + example.MONTH_ORDERS)
        if i != example.LATE_CANCEL_ID  # cancelled by the customer: not posted
    ]
    assert int(total["orders"]) == len(booked)
    expected_gross = sum(sandbox.scayle.orders[i]["cost"]["withTax"] for i in booked)
    assert Decimal(total["gross"]) * 100 == expected_gross
    parts = [r for r in rows if r["kind"] in ("goods", "shipping")]
    assert sum(Decimal(r["gross"]) for r in parts) == Decimal(total["gross"])
    assert sum(Decimal(r["vat"]) for r in parts) == Decimal(total["vat"])
    folder = month_end["folder"]
    assert isinstance(folder, Path)
    assert (folder / "postings.csv").read_text("utf-8") == month_end["postings"]


# -------------------------------------------------------------------------------- webhook receiver


def test_webhook_receiver_script_story() -> None:
    outcome = load("webhook_receiver").main()
    assert outcome["statuses"] == {202: 6, 401: 1, 400: 2}
    assert outcome["outcomes"] == {"recorded": 5, "duplicate": 1}
    assert outcome["sales_orders_per_reference"] == {f"SCAYLE-{i}": 1 for i in range(8001, 8006)}
    assert outcome["pushed"] == 5
    assert outcome["health"]["counts"]["acknowledged"] == 5


@pytest.fixture
def receiver() -> Iterator[tuple[ModuleType, Sandbox, Connector, str]]:
    example = load("webhook_receiver")
    sandbox = Sandbox(seed=4)
    sandbox.orderwise.add_variant("TEE-BLK-M")
    sandbox.scayle.add_order(make_order(9001, [("TEE-BLK-M", 2400, 1, "0.20")], shipping=495))
    settings = ConnectorSettings(
        scayle=ScayleSettings(webhook_username="hook", webhook_password="right")
    )
    connector = Connector.for_sandbox(sandbox, settings=settings)
    server = example.make_server(connector, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield example, sandbox, connector, server.url
    finally:
        server.shutdown()
        server.server_close()


def test_receiver_records_quickly_and_leaves_the_push_to_the_sync(
    receiver: tuple[ModuleType, Sandbox, Connector, str],
) -> None:
    example, sandbox, connector, url = receiver
    envelope = json.dumps(sandbox.scayle.webhooks[0])
    with httpx.Client(base_url=url) as http:
        first = http.post(example.WEBHOOK_PATH, content=envelope, auth=("hook", "right"))
        again = http.post(example.WEBHOOK_PATH, content=envelope, auth=("hook", "right"))
        health = http.get("/healthz")
    assert first.status_code == 202 and first.json() == {
        "event": "order-confirmed",
        "outcome": "recorded",
        "orderId": 9001,
    }
    assert again.status_code == 202 and again.json()["outcome"] == "duplicate"
    assert sandbox.orderwise.requests == []  # the request thread never talks to OrderWise
    record = connector.store.get("order:9001")
    assert record is not None and record.state == State.PENDING
    assert health.status_code == 200 and health.json()["counts"]["pending"] == 1
    assert connector.sync_orders(poll=False).pushed == 1
    assert len(sandbox.orderwise.sales_orders) == 1


def test_receiver_refuses_bad_requests(
    receiver: tuple[ModuleType, Sandbox, Connector, str],
) -> None:
    example, sandbox, connector, url = receiver
    envelope = json.dumps(sandbox.scayle.webhooks[0])
    path = example.WEBHOOK_PATH
    with httpx.Client(base_url=url) as http:
        anonymous = http.post(path, content=envelope)
        wrong = http.post(path, content=envelope, auth=("hook", "wrong"))
        malformed = http.post(path, content=b"[1, 2", auth=("hook", "right"))
        empty = http.post(path, content=b"", auth=("hook", "right"))
        limit = connector.settings.scayle.webhook_max_body_bytes
        huge = http.post(path, content=b"x" * (limit + 1), auth=("hook", "right"))
        no_id = http.post(
            path,
            content=json.dumps({"key": "n", "type": "order-confirmed", "payload": {"id": "x"}}),
            auth=("hook", "right"),
        )
        elsewhere = http.post("/other", content=envelope, auth=("hook", "right"))
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith(
        "Basic"
    )
    assert wrong.status_code == 401 and "right" not in wrong.text
    assert malformed.status_code == 400 and empty.status_code == 400
    assert huge.status_code == 413 and elsewhere.status_code == 404
    assert no_id.status_code == 400 and "order id" in no_id.json()["error"]
    assert connector.store.get("order:9001") is None  # nothing was recorded


def test_receiver_answers_500_when_the_ledger_fails(
    receiver: tuple[ModuleType, Sandbox, Connector, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    example, sandbox, connector, url = receiver

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("database is down")

    monkeypatch.setattr(connector, "ingest_webhook", broken)
    with httpx.Client(base_url=url) as http:
        answer = http.post(example.WEBHOOK_PATH, content=json.dumps(sandbox.scayle.webhooks[0]))
    assert answer.status_code == 500 and "database" not in answer.text  # SCAYLE will retry


def test_order_pusher_pushes_when_woken() -> None:
    example = load("webhook_receiver")
    sandbox = Sandbox(seed=6)
    sandbox.orderwise.add_variant("BOOK-01")
    sandbox.scayle.add_order(make_order(9101, [("BOOK-01", 1250, 2, "0")]))
    connector = Connector.for_sandbox(sandbox)
    connector.ingest_webhook(json.dumps(sandbox.scayle.webhooks[0]))
    pusher = example.OrderPusher(connector, interval=30.0).start()
    try:
        pusher.wake()
        assert example._wait_for(lambda: len(sandbox.orderwise.sales_orders) == 1, timeout=10)
    finally:
        pusher.stop()
    assert pusher.total.pushed == 1 and pusher.passes >= 1


# ----------------------------------------------------------------------------- PostgreSQL workers


def test_postgres_workers_push_each_order_once(pg_dsn: str, pg_schema: Callable[[], str]) -> None:
    example = load("postgres_workers")
    orders = 60
    outcome = example.run(pg_dsn, workers=3, orders=orders, schema=pg_schema())
    assert outcome["duplicates"] == 0 and outcome["missing"] == 0
    assert outcome["sales_orders"] == orders
    assert outcome["ledger"] == {"acknowledged": orders}
    assert sum(outcome["faults_injected"].values()) > 0  # the fakes really misbehaved
    reports = outcome["workers"]
    assert sorted(r["worker"] for r in reports) == ["machine-1", "machine-2", "machine-3"]
    # Every acknowledgement was made by exactly one worker, by a push or by adopting a lost answer.
    done = sum(r["counts"].get("pushed", 0) + r["counts"].get("adopted", 0) for r in reports)
    assert done == orders
    assert sum(outcome["acknowledged_by"].values()) == orders
    assert set(outcome["acknowledged_by"]) <= {r["worker"] for r in reports}


def test_postgres_workers_explain_a_missing_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    names = (
        "SCAYLE_ORDERWISE_STORE__URL",
        "SCAYLE_ORDERWISE_PG_DSN",
        "SCAYLE_ORDERWISE_TEST_PG_DSN",
    )
    env = {k: v for k, v in os.environ.items() if k not in names}
    done = run_script("postgres_workers", env=env)
    assert done.returncode == 2
    assert "SCAYLE_ORDERWISE_STORE__URL" in done.stderr and "Traceback" not in done.stderr
