"""``scayle-orderwise serve`` as a real subprocess on a free loopback port: sandbox mode and a config
file, webhook → order in OrderWise, readiness, metrics that move, SIGTERM mid-pass losing nothing."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flow_helpers import CATALOGUE, order_json
from scayle_orderwise.sandbox import Faults, Sandbox
from scayle_orderwise.sandbox.clock import RealClock
from scayle_orderwise.sandbox.serve import SandboxServer, serve
from scayle_orderwise.store import SqliteStore, State
from service_process import ServiceProcess, free_port, metric_values, wait_for, write_config

pytestmark = pytest.mark.slow

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _total(samples: Samples, name: str) -> float:
    return sum(v for (n, _labels), v in samples.items() if n == name)


def _per_reference(sandbox: Sandbox) -> Counter[str]:
    return Counter(b["orderHeader"]["eCommerceOrderNumber"] for b in sandbox.orderwise.sales_orders)


# --------------------------------------------------------------------------------------- sandbox


def test_sandbox_service_takes_a_webhook_to_orderwise(tmp_path: Path) -> None:
    port = free_port()
    args = ["serve", "--sandbox", "--host", "127.0.0.1", "--port", str(port)]
    with ServiceProcess(args, tmp_path, port=port) as service:
        service.wait_up()
        with service.client() as http:
            assert wait_for(lambda: http.get("/readyz").status_code == 200), service.logs()
            before = metric_values(http.get("/metrics").text)
            page = http.get("/")
            assert page.status_code == 200  # open without credentials on loopback
            assert "order:5004" in page.text and "unknown_variant" in page.text
            assert "no-consignment" in page.text and "cancellation_too_late" in page.text
            assert wait_for(lambda: http.get("/reports/latest").status_code == 200)
            assert "reconciliation" in http.get("/reports/latest").text.lower()

            envelope = {"key": "try-1", "type": "order-confirmed", "payload": {"id": 5101}}
            answer = http.post("/webhooks/scayle", json=envelope)
            assert answer.status_code == 202 and answer.json()["outcome"] == "recorded"
            assert http.post("/webhooks/scayle", json=envelope).json()["outcome"] == "duplicate"
            assert http.post("/webhooks/scayle", content=b"{").status_code == 400

            def acknowledged() -> bool:
                return (
                    '<span class="badge ">acknowledged</span>'
                    in http.get("/records/order:5101").text
                )

            assert wait_for(acknowledged, timeout=30), service.logs()
            after = metric_values(http.get("/metrics").text)
        assert service.terminate() == 0, service.logs()

    assert (
        _value(after, "scayle_orderwise_orders_total", outcome="pushed")
        >= _value(before, "scayle_orderwise_orders_total", outcome="pushed") + 1
    )
    assert _value(after, "scayle_orderwise_webhooks_total", outcome="recorded") == 1
    assert _value(after, "scayle_orderwise_webhooks_total", outcome="duplicate") == 1
    assert _value(after, "scayle_orderwise_webhooks_total", outcome="malformed") == 1
    acked = {"kind": "order", "state": "acknowledged"}
    assert (
        _value(after, "scayle_orderwise_ledger_records", **acked)
        == _value(before, "scayle_orderwise_ledger_records", **acked) + 1
    )
    assert _total(after, "scayle_orderwise_api_calls_total") > _total(
        before, "scayle_orderwise_api_calls_total"
    )
    assert _value(after, "scayle_orderwise_pass_duration_seconds_count", flow="orders") > _value(
        before, "scayle_orderwise_pass_duration_seconds_count", flow="orders"
    )
    assert _value(after, "scayle_orderwise_open_alerts", kind="order_quarantined") == 1
    assert _value(after, "scayle_orderwise_ledger_records", kind="order", state="quarantined") == 1


def test_sandbox_mode_refuses_a_public_address(tmp_path: Path) -> None:
    port = free_port()
    args = ["serve", "--sandbox", "--host", "0.0.0.0", "--port", str(port)]
    with ServiceProcess(args, tmp_path, port=port) as service:
        assert service.process.wait(timeout=60) == 2
    lines = [line for line in service.logs().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "loopback" in lines[0]
    assert "Traceback" not in service.logs()


def test_a_port_in_use_is_one_error_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        args = ["serve", "--sandbox", "--host", "127.0.0.1", "--port", str(port)]
        with ServiceProcess(args, tmp_path, port=port) as service:
            assert service.process.wait(timeout=60) == 2
    assert "error: cannot listen on 127.0.0.1:" in service.logs()
    assert "Traceback" not in service.logs()


# ----------------------------------------------------------------------------------- config file


@pytest.fixture
def served() -> Iterator[SandboxServer]:
    sandbox = Sandbox(seed=5, clock=RealClock())
    for sku in CATALOGUE:
        sandbox.orderwise.add_variant(sku)
        sandbox.scayle.add_variant(sku)
    with serve("127.0.0.1", 0, sandbox) as server:
        yield server


FAST_SCHEDULE = """
[service.orders]
interval_seconds = 0.5
stall_after_seconds = 4
[service.cancellations]
interval_seconds = 1
stall_after_seconds = 4
[service.fulfilments]
interval_seconds = 1
stall_after_seconds = 4
[service.inventory]
interval_seconds = 1
stall_after_seconds = 4
[service.reconciliation]
enabled = false
"""


def test_configured_service_pushes_a_webhook_order_and_reports_readiness(
    served: SandboxServer, tmp_path: Path
) -> None:
    sandbox = served.sandbox
    sandbox.scayle.add_order(order_json(601))
    config = tmp_path / "scayle-orderwise.toml"
    env = write_config(
        config, served, tmp_path / "ledger.db", extra=FAST_SCHEDULE, flows="order_poll = false"
    )
    port = free_port()
    args = ["--log-format", "json", "serve", "-c", str(config), "--port", str(port)]
    with ServiceProcess(args, tmp_path, port=port, env=env) as service:
        service.wait_up()
        with service.client() as http:
            assert wait_for(lambda: http.get("/readyz").status_code == 200), service.logs()
            envelope = {"key": "cfg-1", "type": "order-confirmed", "payload": {"id": 601}}
            wrong = http.post("/webhooks/scayle", json=envelope, auth=("scayle", "guess"))
            assert wrong.status_code == 401
            answer = http.post("/webhooks/scayle", json=envelope, auth=("scayle", "hook-secret"))
            assert answer.status_code == 202 and answer.json()["outcome"] == "recorded"
            assert wait_for(lambda: _per_reference(sandbox)["SCAYLE-601"] == 1), service.logs()

            assert http.get("/").status_code == 401
            page = http.get("/", auth=("ops", "dash-secret"))
            assert page.status_code == 200 and "orders" in page.text
            for secret in env.values():
                assert secret not in page.text
            samples = metric_values(http.get("/metrics").text)
            orderwise_calls = sum(
                v
                for (name, labels), v in samples.items()
                if name == "scayle_orderwise_api_calls_total" and ("api", "OrderWise") in labels
            )
            assert orderwise_calls > 0

            # Both APIs answer 5xx from now on: the passes that read them fail (or keep retrying),
            # and after the stall threshold the service says it is not ready, naming the flows.
            sandbox.faults = Faults(error_rate=1.0)
            assert wait_for(lambda: http.get("/readyz").status_code == 503, timeout=60)
            reasons = http.get("/readyz").json()["reasons"]
            stalled = {r.split(":", 1)[0] for r in reasons}
            assert stalled and stalled <= {"cancellations", "fulfilments", "inventory"}, reasons
            assert all(": no good pass for over 4 s" in r for r in reasons), reasons
            assert http.get("/healthz").status_code == 200  # alive all the same
        assert service.terminate() == 0, service.logs()
    assert _per_reference(sandbox) == {"SCAYLE-601": 1}
    logs = service.logs()
    assert '"event": "order.acknowledged"' in logs and '"order_id": 601' in logs
    for secret in env.values():
        assert secret not in logs


def test_serve_warns_at_start_about_what_the_scayle_tenant_lacks(
    served: SandboxServer, tmp_path: Path
) -> None:
    """Like ``sync``, ``serve`` checks the warehouses and carriers the settings name against SCAYLE
    when it starts, and says what is missing (then serves all the same)."""
    config = tmp_path / "scayle-orderwise.toml"
    env = write_config(
        config,
        served,
        tmp_path / "ledger.db",
        extra=FAST_SCHEDULE,
        flows='default_carrier = "NO-SUCH-CARRIER"',
    )
    port = free_port()
    with ServiceProcess(
        ["serve", "-c", str(config), "--port", str(port)], tmp_path, port=port, env=env
    ) as service:
        service.wait_up()
        assert "warning:" in service.logs() and "NO-SUCH-CARRIER" in service.logs(), service.logs()
        assert service.terminate() == 0, service.logs()


# -------------------------------------------------------------------------------------- SIGTERM


def _slow_creates(sandbox: Sandbox, seconds: float) -> None:
    transport = sandbox.orderwise.transport
    original = transport.handle_request

    def slow(request: Any) -> Any:
        if request.method == "POST" and request.url.path.endswith("/sales/order"):
            time.sleep(seconds)
        return original(request)

    transport.handle_request = slow  # type: ignore[method-assign]


def test_sigterm_mid_pass_loses_nothing(served: SandboxServer, tmp_path: Path) -> None:
    sandbox = served.sandbox
    order_ids = list(range(701, 741))
    for order_id in order_ids:
        sandbox.scayle.add_order(order_json(order_id))
    _slow_creates(sandbox, 0.15)
    config = tmp_path / "scayle-orderwise.toml"
    ledger = tmp_path / "ledger.db"
    env = write_config(config, served, ledger, extra=FAST_SCHEDULE, flows="batch_size = 5")

    port = free_port()
    args = ["serve", "-c", str(config), "--port", str(port)]
    with ServiceProcess(args, tmp_path, port=port, env=env) as first:
        first.wait_up()
        assert wait_for(lambda: len(sandbox.orderwise.sales_orders) >= 3), first.logs()
        signalled = time.monotonic()
        assert first.terminate(timeout=60) == 0, first.logs()
        took = time.monotonic() - signalled
    assert took < 20 + 10, first.logs()  # within the grace, well inside the 300 s lease
    assert "signal SIGTERM" in first.logs()

    with SqliteStore(ledger) as store:
        records = list(store.records(kind="order"))
    assert {r.state for r in records} <= {State.PENDING, State.SENT, State.ACKNOWLEDGED}
    done_first = sum(1 for r in records if r.state == State.ACKNOWLEDGED)
    assert 0 < done_first < len(order_ids), "the pass should have been cut short by SIGTERM"
    assert sum(_per_reference(sandbox).values()) == done_first  # nothing sent without its record

    port = free_port()
    args = ["serve", "-c", str(config), "--port", str(port)]
    with ServiceProcess(args, tmp_path, port=port, env=env) as second:
        second.wait_up()
        assert wait_for(lambda: len(_per_reference(sandbox)) == len(order_ids), timeout=120), (
            second.logs()
        )
        assert second.terminate() == 0, second.logs()
    per_reference = _per_reference(sandbox)
    assert set(per_reference) == {f"SCAYLE-{i}" for i in order_ids}
    assert set(per_reference.values()) == {1}  # nothing lost, nothing twice
    with SqliteStore(ledger) as store:
        assert store.counts(kind="order")[State.ACKNOWLEDGED] == len(order_ids)


def test_the_webhook_endpoint_is_reachable_from_httpx_of_another_process(
    served: SandboxServer, tmp_path: Path
) -> None:
    """Regression guard for the body limit over real HTTP (chunked, no Content-Length)."""
    config = tmp_path / "scayle-orderwise.toml"
    env = write_config(
        config,
        served,
        tmp_path / "ledger.db",
        extra=FAST_SCHEDULE.replace("[service.orders]", "[service.orders]\nenabled = false", 1)
        + "\n",
    )
    env["SCAYLE_ORDERWISE_SCAYLE__WEBHOOK_MAX_BODY_BYTES"] = "2000"
    port = free_port()
    with ServiceProcess(
        ["serve", "-c", str(config), "--port", str(port)], tmp_path, port=port, env=env
    ) as service:
        service.wait_up()

        def chunks() -> Iterator[bytes]:
            for _ in range(10):
                yield b"z" * 500

        with httpx.Client(base_url=service.url, timeout=10) as http:
            big = http.post("/webhooks/scayle", content=chunks(), auth=("scayle", "hook-secret"))
        assert big.status_code == 413
        assert service.terminate() == 0


# ------------------------------------------------------------------- two processes, one PostgreSQL


@pytest.fixture
def pg_database(pg_dsn: str) -> Iterator[str]:
    """A fresh PostgreSQL database (the service's store URL names a database, not a schema)."""
    import uuid

    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    name = f"svc_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(pg_dsn)
    auth = str(params.get("user", "postgres"))
    if params.get("password"):
        auth += f":{params['password']}"
    host, port = params.get("host", "127.0.0.1"), params.get("port", 5432)
    try:
        yield f"postgresql://{auth}@{host}:{port}/{name}"
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.mark.postgres
def test_two_services_share_one_postgres_ledger(
    served: SandboxServer, tmp_path: Path, pg_database: str
) -> None:
    sandbox = served.sandbox
    order_ids = list(range(801, 841))
    for order_id in order_ids:
        sandbox.scayle.add_order(order_json(order_id))
    _slow_creates(sandbox, 0.02)
    config = tmp_path / "scayle-orderwise.toml"
    env = write_config(config, served, tmp_path / "unused.db", extra=FAST_SCHEDULE)
    env["SCAYLE_ORDERWISE_STORE__URL"] = pg_database
    services = []
    try:
        for n in (1, 2):
            port = free_port()
            worker_env = {**env, "SCAYLE_ORDERWISE_WORKER_ID": f"service-{n}"}
            args = ["serve", "-c", str(config), "--port", str(port)]
            services.append(ServiceProcess(args, tmp_path, port=port, env=worker_env))
        for service in services:
            service.wait_up()
        # The same envelope reaches both processes: one records it, the other sees a duplicate.
        envelope = {"key": "both-1", "type": "order-confirmed", "payload": {"id": 801}}
        outcomes = sorted(
            httpx.post(
                s.url + "/webhooks/scayle", json=envelope, auth=("scayle", "hook-secret")
            ).json()["outcome"]
            for s in services
        )
        assert outcomes == ["duplicate", "recorded"]
        assert wait_for(lambda: len(_per_reference(sandbox)) == len(order_ids), timeout=120), (
            services[0].logs() + services[1].logs()
        )
        for service in services:
            assert httpx.get(service.url + "/readyz").status_code == 200
        for service in services:
            assert service.terminate() == 0, service.logs()
    finally:
        for service in services:
            service.__exit__(None, None, None)
    per_reference = _per_reference(sandbox)
    assert set(per_reference.values()) == {1}, per_reference  # no order twice
    from scayle_orderwise.store import PostgresStore

    with PostgresStore(pg_database) as store:
        records = list(store.records(kind="order"))
    assert len(records) == len(order_ids)
    assert {r.state for r in records} == {State.ACKNOWLEDGED}
    workers = {t.owner for r in records for t in r.history if t.to_state == State.ACKNOWLEDGED}
    assert workers <= {"service-1", "service-2"}


def test_serve_without_the_service_extra_is_one_error_line() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['starlette'] = None; "  # as if the extra were not installed
        "sys.argv = ['scayle-orderwise', 'serve', '--sandbox']; "
        "from scayle_orderwise.cli import main; main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: the service needs the 'service' extra (starlette")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
