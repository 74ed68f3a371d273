"""Both fakes over real HTTP on loopback, started by the tests themselves."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from scayle_orderwise.errors import AuthenticationError
from scayle_orderwise.sandbox import Faults, RealClock, Sandbox, make_order
from scayle_orderwise.sandbox.serve import serve
from scayle_orderwise.scayle.client import AsyncScayleClient, ScayleClient


@pytest.fixture
def sandbox() -> Sandbox:
    sb = Sandbox(seed=2, clock=RealClock())
    sb.scayle.add_order(make_order(40015, [("SKU-A/1", 2400, 2, "0.20")], shipping=499))
    return sb


def test_scayle_client_over_real_loopback_http(sandbox: Sandbox) -> None:
    with serve("127.0.0.1", 0, sandbox) as server:
        assert server.scayle_base_url.startswith("http://127.0.0.1:")
        with ScayleClient(
            server.scayle_base_url, sandbox.scayle.token, shop_key="ac", country_code="GB"
        ) as client:
            order = client.get_order(40015)
            assert order.id == 40015 and len(order.items) == 2
            client.set_reference_key(40015, "OW-40015")
            client.create_shipment(40015, [40015001], carrier="DPD", shipment_key="TRK-9")
            stored = client.set_stock("SKU-A/1", "WH1", 8, datetime(2026, 5, 4, 10, tzinfo=UTC))
            assert stored.quantity == 8
            assert [o.id for o in client.iter_orders(limit=1)] == [40015]
        bad = ScayleClient(server.scayle_base_url, "nope", shop_key="ac", country_code="GB")
        with pytest.raises(AuthenticationError):
            bad.get_order(40015)
        bad.close()
        raw = httpx.get(server.url + "/elsewhere")
        assert raw.status_code == 404
    assert sandbox.scayle.orders[40015]["referenceKey"] == "OW-40015"
    assert sandbox.scayle.stock("SKU-A/1") == 8
    assert ("POST", "/fulfillment/shipments", 201) in sandbox.scayle.requests


async def test_async_client_and_faults_over_loopback(sandbox: Sandbox) -> None:
    with serve("127.0.0.1", 0, sandbox) as server:
        async with AsyncScayleClient(
            server.scayle_base_url, sandbox.scayle.token, shop_key="ac", country_code="GB"
        ) as client:
            assert (await client.get_order(40015)).id == 40015
            sandbox.faults = Faults(timeout_after_commit_rate=1.0)
            from scayle_orderwise.errors import AmbiguousOutcomeError

            with pytest.raises(AmbiguousOutcomeError):
                await client.create_cancellation(40015, [40015002])
            sandbox.faults = Faults()
            assert (await client.get_order(40015)).item(40015002).is_cancelled


def test_orderwise_fake_is_reachable_under_its_prefix(sandbox: Sandbox) -> None:
    with serve("127.0.0.1", 0, sandbox) as server:
        assert server.orderwise_api_root.endswith(
            "/orderwise" + httpx.URL(sandbox.orderwise.api_root).path
        )
        response = httpx.get(server.orderwise_api_root + "/token/gettoken", auth=("wrong", "creds"))
        assert response.status_code == 401
        assert any(r[2] == 401 for r in sandbox.orderwise.requests)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _lines(stdout: IO[str], timeout: float = 20.0) -> Iterator[str]:
    """The lines of a child's output as they come; stops at its end or after ``timeout`` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in stdout], daemon=True).start()
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            yield lines.get(timeout=left)
        except queue.Empty:
            return


def read_printed_config(stdout: IO[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The configuration file and the ``export`` lines that ``sandbox serve`` prints."""
    toml_lines: list[str] = []
    secrets: dict[str, str] = {}
    section = ""
    for line in _lines(stdout):
        if line.startswith("then:"):
            break
        if line.startswith("---"):
            section = line
        elif "secrets" in section and line.startswith("export "):
            key, _, value = line.removeprefix("export ").strip().partition("=")
            secrets[key] = value
        elif section:
            toml_lines.append(line)
    return tomllib.loads("".join(toml_lines)), secrets


def test_module_command_serves_until_stopped() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scayle_orderwise.sandbox",
            "serve",
            "--port",
            str(port),
            "--orders",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        header = proc.stdout.readline()
        assert "Sandbox" in header
        config, secrets = read_printed_config(proc.stdout)
        base = config["scayle"]["base_url"]
        deadline = time.monotonic() + 10
        while True:
            try:
                r = httpx.get(
                    base + "/shops/ac/countries/GB/orders",
                    headers={"X-Access-Token": secrets["SCAYLE_ORDERWISE_SCAYLE__TOKEN"]},
                )
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert r.status_code == 200
        assert [o["id"] for o in r.json()["entities"]] == [40001, 40002]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_every_call_waits_the_configured_delay(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scayle_orderwise.sandbox import serve as serve_module

    waited: list[float] = []
    monkeypatch.setattr(serve_module.time, "sleep", waited.append)
    with (
        serve("127.0.0.1", 0, sandbox, delay=0.25) as server,
        ScayleClient(
            server.scayle_base_url, sandbox.scayle.token, shop_key="ac", country_code="GB"
        ) as client,
    ):
        client.get_order(40015)
        client.set_reference_key(40015, "OW-1")
        assert server.delay == 0.25
    assert waited == [0.25, 0.25]


def test_sandbox_serve_prints_a_config_that_the_command_line_runs_with(tmp_path: Path) -> None:
    """Issue 15 B9: the printed configuration (export ids, cancel endpoint, ...) works as it is."""
    port = free_port()
    written = tmp_path / "sandbox.toml"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "scayle_orderwise.cli", "sandbox", "serve"),
            *("--port", str(port), "--orders", "3", "--write-config", str(written)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        assert "Sandbox" in proc.stdout.readline()
        printed, secrets = read_printed_config(proc.stdout)
        assert tomllib.loads(written.read_text(encoding="utf-8")) == printed
        assert printed["orderwise"]["cancel_endpoint"] == "sales/order/{order_id}/cancel"
        assert set(printed["orderwise"]["export_definitions"]) >= {
            "order_changes",
            "order_by_reference",
            "stock_changes",
            "order_details",
        }
        # The batch lookup the orders flow runs before every create (one call per claimed batch).
        assert printed["orderwise"]["export_definitions"]["orders_by_references"] == 106
        assert set(secrets) == {
            "SCAYLE_ORDERWISE_SCAYLE__TOKEN",
            "SCAYLE_ORDERWISE_ORDERWISE__PASSWORD",
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCAYLE_ORDERWISE_")}
        synced = subprocess.run(
            [sys.executable, "-m", "scayle_orderwise.cli", "sync", "--config", str(written)],
            capture_output=True,
            text=True,
            env={**env, **secrets},
            cwd=tmp_path,
            timeout=60,
        )
        assert synced.returncode == 0, synced.stderr
        assert "orders: discovered=3, pushed=3" in synced.stdout
        assert "failed_pass" not in synced.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
