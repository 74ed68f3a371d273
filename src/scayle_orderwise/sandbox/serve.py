"""Serve both fakes over real HTTP on loopback (stdlib ``ThreadingHTTPServer``).

One port, two prefixes:

* ``http://127.0.0.1:PORT/scayle/api/admin/v1/...`` → the SCAYLE fake (the path after ``/scayle``
  is the path of :attr:`ScayleSandbox.base_url`); token header ``X-Access-Token``;
* ``http://127.0.0.1:PORT/orderwise/OWAPI/...`` → the OrderWise fake (the path after
  ``/orderwise`` is the path of :attr:`OrderwiseSandbox.api_root`).

:func:`serve` starts a server in a background thread and returns it; ``server.scayle_base_url``
and ``server.orderwise_api_root`` are the URLs to give the clients. Injected timeouts and
``SimulatedCrash`` cannot be reproduced across a socket exactly; the server drops the connection
without an answer instead, which a real client sees as a failed request of unknown outcome.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import httpx

from .clock import RealClock
from .core import Sandbox
from .faults import Faults, SimulatedCrash
from .transport import FakeTransport

__all__ = ["SandboxServer", "main", "serve"]

logger = logging.getLogger("scayle_orderwise.sandbox.serve")

SCAYLE_PREFIX = "/scayle"
ORDERWISE_PREFIX = "/orderwise"
_HOP_HEADERS = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "accept-encoding"}
)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class _Handler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK stall every keep-alive response by ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def _route(self) -> tuple[FakeTransport, str] | None:
        sandbox = self.server.sandbox
        path = self.path
        if path.startswith(SCAYLE_PREFIX + "/"):
            return sandbox.scayle.transport, _origin(sandbox.scayle.base_url) + path[
                len(SCAYLE_PREFIX) :
            ]
        if path.startswith(ORDERWISE_PREFIX + "/"):
            target = _origin(sandbox.orderwise.api_root) + path[len(ORDERWISE_PREFIX) :]
            return sandbox.orderwise.transport, target
        return None

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        route = self._route()
        if route is None:
            self._send(404, {"Content-Type": "application/json"}, b'{"message": "unknown prefix"}')
            return
        transport, url = route
        if self.server.delay > 0:
            time.sleep(self.server.delay)  # as a real API takes to answer; calls overlap
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS]
        request = httpx.Request(self.command, url, headers=headers, content=body)
        try:
            response = transport.handle_request(request)
        except (httpx.TimeoutException, SimulatedCrash):
            # Emulate a lost answer: close the connection without responding.
            self.close_connection = True
            return
        self._send(response.status_code, dict(response.headers), response.content)

    def _send(self, status: int, headers: dict[str, str], content: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in _HOP_HEADERS and key.lower() != "content-encoding":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if content:
            self.wfile.write(content)

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle
    do_PATCH = _handle
    do_DELETE = _handle


class SandboxServer(ThreadingHTTPServer):
    """A loopback HTTP server bridging to a :class:`Sandbox`; a context manager."""

    daemon_threads = True

    def __init__(self, host: str, port: int, sandbox: Sandbox, *, delay: float = 0.0) -> None:
        super().__init__((host, port), _Handler)
        self.sandbox = sandbox
        self.delay = max(0.0, delay)
        """Seconds every call waits before the fake handles it (latency, as real APIs have)."""
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port``."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def scayle_base_url(self) -> str:
        """The ``base_url`` to give a SCAYLE client."""
        return self.url + SCAYLE_PREFIX + urlsplit(self.sandbox.scayle.base_url).path

    @property
    def orderwise_api_root(self) -> str:
        """The ``api_root`` to give an OrderWise client."""
        return self.url + ORDERWISE_PREFIX + urlsplit(self.sandbox.orderwise.api_root).path

    def config_toml(self, ledger: str = "sqlite:///sandbox-ledger.db") -> str:
        """A ready-to-use ``scayle-orderwise`` configuration file for this sandbox (no secrets).

        The secrets go in the environment: see :meth:`secret_environment`.
        """
        sandbox = self.sandbox
        exports = sandbox.orderwise.export_definitions
        ids = "\n".join(
            f"{name} = {getattr(exports, name)}"
            for name in (
                "order_changes",
                "order_by_reference",
                "stock_changes",
                "order_details",
                "stock_full",
                "orders_by_references",
            )
            if getattr(exports, name, None) is not None
        )
        return (
            "# scayle-orderwise configuration for the sandbox at "
            f"{self.url} (fake systems: local testing only)\n"
            "[scayle]\n"
            f'base_url = "{self.scayle_base_url}"\n'
            f'shop_key = "{sandbox.scayle.shop_key}"\n'
            f'country_code = "{sandbox.scayle.country_code}"\n'
            f'default_warehouse = "{sandbox.scayle.default_warehouse}"\n\n'
            "[orderwise]\n"
            f'api_root = "{self.orderwise_api_root}"\n'
            f'username = "{sandbox.orderwise.username}"\n'
            f"session_id = {sandbox.orderwise.session_id}\n"
            f'cancel_endpoint = "{sandbox.orderwise.cancel_path}"\n\n'
            f"[orderwise.export_definitions]\n{ids}\n\n"
            "[store]\n"
            f'url = "{ledger}"\n'
        )

    def secret_environment(self) -> dict[str, str]:
        """The sandbox's fake secrets as the environment variables the connector reads them from."""
        return {
            "SCAYLE_ORDERWISE_SCAYLE__TOKEN": self.sandbox.scayle.token,
            "SCAYLE_ORDERWISE_ORDERWISE__PASSWORD": self.sandbox.orderwise.password,
        }

    def start(self) -> Self:
        """Serve in a background daemon thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, name="sandbox-server", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def serve(
    host: str = "127.0.0.1", port: int = 0, sandbox: Sandbox | None = None, *, delay: float = 0.0
) -> SandboxServer:
    """Start serving ``sandbox`` (a fresh real-time one if ``None``) on ``host:port``.

    ``port=0`` picks a free port (read it from ``server.url``). ``delay`` seconds are added to
    every call (the fakes answer in microseconds; real APIs take tens to hundreds of
    milliseconds). Returns the running server; call ``close()`` (or use ``with``) to stop it.
    """
    return SandboxServer(host, port, sandbox or Sandbox(clock=RealClock()), delay=delay).start()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scayle_orderwise.sandbox")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="serve both fakes over HTTP on loopback")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8765)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--orders", type=int, default=0, help="pre-load this many demo orders")
    run.add_argument("--delay", type=float, default=0.0, help="seconds added to every call")
    run.add_argument(
        "--write-config", metavar="PATH", help="also write the configuration file to PATH"
    )
    for name in (
        "error",
        "timeout-before",
        "timeout-after-commit",
        "rate-limit",
        "crash-after-commit",
    ):
        run.add_argument(f"--{name}-rate", type=float, default=0.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry: ``serve --port N`` runs until interrupted."""
    args = _parser().parse_args(argv)
    faults = Faults(
        error_rate=args.error_rate,
        timeout_before_rate=args.timeout_before_rate,
        timeout_after_commit_rate=args.timeout_after_commit_rate,
        rate_limit_rate=args.rate_limit_rate,
        crash_after_commit_rate=args.crash_after_commit_rate,
        seed=args.seed,
    )
    sandbox = Sandbox(seed=args.seed, faults=faults, clock=RealClock())
    if args.orders:
        from .factory import make_order

        for n in range(args.orders):
            sku = f"SKU-DEMO-{n % 3 + 1}"
            sandbox.orderwise.add_variant(sku)
            sandbox.scayle.add_order(
                make_order(40001 + n, [(sku, 2400, 1 + n % 2, "0.20")], shipping=499)
            )
    server = SandboxServer(args.host, args.port, sandbox, delay=args.delay)
    config = server.config_toml()
    name = args.write_config or "scayle-orderwise.toml"
    if args.write_config:
        Path(args.write_config).write_text(config, encoding="utf-8")
    print(f"Sandbox serving at {server.url}: fake SCAYLE and OrderWise, fake credentials.")
    print(f"\n--- {name}" + (" (written)" if args.write_config else "") + " ---")
    print(config.rstrip("\n"))
    print("--- the secrets, in the environment ---")
    for key, value in server.secret_environment().items():
        print(f"export {key}={value}")
    print(
        f"---\nthen: scayle-orderwise sync --config {name}   (Ctrl+C stops the sandbox)", flush=True
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
