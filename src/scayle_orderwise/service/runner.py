"""``scayle-orderwise serve``: the app on uvicorn plus the flow scheduler, in one process.

SIGTERM (or Ctrl-C) closes the scheduler's claim gate at once (no new work is taken), lets uvicorn
finish the requests in progress, waits up to ``service.shutdown_grace_seconds`` for running passes,
releases the claims still held (as ``sent``: looked up before any re-send) and returns 0. Keep the
grace below ``flows.lease_seconds`` so the process is gone before its leases would expire anyway.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType

import uvicorn

from ..connector import Connector
from ..errors import ConfigError
from .app import create_app
from .reports import ReconciliationJob
from .scheduler import FlowScheduler, Pacer

__all__ = ["is_loopback", "listen", "run_service"]

logger = logging.getLogger("scayle_orderwise.service")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; ``ConfigError`` with the reason when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn, but a signal also stops the scheduler taking work, and is not re-raised on exit
    (uvicorn re-raises it, which would end the process with the signal instead of status 0)."""

    def __init__(self, config: uvicorn.Config, scheduler: FlowScheduler) -> None:
        super().__init__(config)
        self._scheduler = scheduler

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(sig: int, frame: FrameType | None) -> None:
            logger.info(
                "signal %s: no new work; finishing the passes in progress",
                signal.Signals(sig).name,
                extra={"event": "shutdown", "outcome": "stopping"},
            )
            self._scheduler.gate.closed.set()
            self.handle_exit(sig, frame)

        originals = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, original in originals.items():
                signal.signal(sig, original)


def run_service(
    connector: Connector,
    *,
    host: str,
    port: int,
    sandbox: bool = False,
    pacers: Mapping[str, Pacer] | None = None,
) -> int:
    """Serve ``connector`` until SIGTERM/SIGINT; returns the exit status (0 after a clean stop)."""
    service = connector.settings.service
    if sandbox and not is_loopback(host):
        raise ConfigError(
            f"--sandbox serves an open dashboard; use a loopback --host (127.0.0.1), not {host}"
        )
    reports_dir = Path(service.reports_dir)
    if sandbox and not reports_dir.is_absolute():
        reports_dir = Path(tempfile.mkdtemp(prefix="scayle-orderwise-sandbox-"))
    sock = listen(host, port)
    scheduler = FlowScheduler(
        connector,
        pacers=pacers,
        reconcile=ReconciliationJob(connector, reports_dir, days=service.reconcile_days),
    )
    app = create_app(
        connector,
        scheduler=scheduler,
        open_dashboard=sandbox,
        sandbox=sandbox,
        reports_dir=reports_dir,
    )
    if not sandbox and service.dashboard_password is None:
        logger.warning(
            "the dashboard is closed: set SCAYLE_ORDERWISE_SERVICE__DASHBOARD_PASSWORD to open it"
        )
    config = uvicorn.Config(
        app,
        log_config=None,
        lifespan="off",
        timeout_graceful_shutdown=max(1, int(service.shutdown_grace_seconds)),
        server_header=False,
    )
    server = _Server(config, scheduler)
    bound_port = sock.getsockname()[1]
    logger.info(
        "serving on http://%s:%s (flows: %s)%s",
        host,
        bound_port,
        ", ".join(scheduler.flows) or "none",
        " with the sandbox's demo data, dashboard open on loopback" if sandbox else "",
        extra={"event": "serving", "outcome": "started"},
    )
    scheduler.start()
    try:
        server.run(sockets=[sock])
    finally:
        finished = scheduler.stop()
        app.state.service.metrics.close()
        connector.close()
        sock.close()
        logger.info(
            "stopped%s",
            "" if finished else " (passes cut short; their claims were released)",
            extra={"event": "shutdown", "outcome": "stopped"},
        )
    return 0
