"""Helpers to run ``scayle-orderwise serve`` as a real subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
from prometheus_client.parser import text_string_to_metric_families

from scayle_orderwise.sandbox import Sandbox
from scayle_orderwise.sandbox.serve import SandboxServer


def free_port() -> int:
    """A port nobody listens on right now (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, step: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


class ServiceProcess:
    """``python -m scayle_orderwise.cli <args>`` with its output in ``folder``; a context manager."""

    def __init__(
        self,
        args: Sequence[str],
        folder: Path,
        *,
        port: int,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = folder / f"service-{port}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("SCAYLE_ORDERWISE_")}
        environment.update(env or {})
        environment["PYTHONUNBUFFERED"] = "1"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scayle_orderwise.cli", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=folder,
            env=environment,
        )

    def logs(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_up(self, timeout: float = 60.0) -> None:
        """Wait until ``/healthz`` answers; fail with the logs if the process died."""

        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"service exited {self.process.returncode}:\n{self.logs()}")
            try:
                return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(up, timeout), f"service did not come up:\n{self.logs()}"

    def client(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client for the service."""
        return httpx.Client(base_url=self.url, timeout=10, **kwargs)

    def terminate(self, timeout: float = 60.0) -> int:
        """Send SIGTERM and wait for the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of a Prometheus text exposition, parsed by prometheus-client's own parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def write_config(
    path: Path, served: SandboxServer, ledger: Path, *, extra: str = "", flows: str = ""
) -> dict[str, str]:
    """A TOML configuration for ``served``; returns the environment with the secrets."""
    sandbox: Sandbox = served.sandbox
    ow = sandbox.orderwise
    path.write_text(
        f"""
worker_id = "service-test"

[scayle]
base_url = "{served.scayle_base_url}"
shop_key = "{sandbox.scayle.shop_key}"
country_code = "{sandbox.scayle.country_code}"
default_warehouse = "{sandbox.scayle.default_warehouse}"
webhook_username = "scayle"

[orderwise]
api_root = "{served.orderwise_api_root}"
username = "{ow.username}"
session_id = {ow.session_id}
cancel_endpoint = "{ow.cancel_path}"

[orderwise.export_definitions]
order_changes = {ow.export_definitions.order_changes}
order_by_reference = {ow.export_definitions.order_by_reference}
stock_changes = {ow.export_definitions.stock_changes}
order_details = {ow.export_definitions.order_details}
stock_full = {ow.export_definitions.stock_full}
orders_by_references = {ow.export_definitions.orders_by_references}

[store]
url = "sqlite:///{ledger}"

[flows]
backoff_base_seconds = 0
resend_grace_seconds = 0
{flows}

[service]
dashboard_username = "ops"
reports_dir = "{path.parent / "reports"}"
shutdown_grace_seconds = 20
{extra}
""",
        encoding="utf-8",
    )
    return {
        "SCAYLE_ORDERWISE_SCAYLE__TOKEN": sandbox.scayle.token,
        "SCAYLE_ORDERWISE_ORDERWISE__PASSWORD": ow.password,
        "SCAYLE_ORDERWISE_SCAYLE__WEBHOOK_PASSWORD": "hook-secret",
        "SCAYLE_ORDERWISE_SERVICE__DASHBOARD_PASSWORD": "dash-secret",
    }
