"""A webhook receiver: SCAYLE posts order events, a background thread pushes orders to OrderWise.

What it shows:

* a small standard-library HTTP app (``ThreadingHTTPServer``, no framework) with one endpoint,
  ``POST /webhooks/scayle``, that hands each request to ``connector.ingest_webhook(body,
  headers)`` and answers at once: **202** when the event is recorded (or recognised as a
  duplicate, or ignored), **401** when the Basic credentials are wrong, **400** when the body is
  not a SCAYLE envelope or an order event names no usable order id (SCAYLE then delivers it
  again instead of it being acknowledged and dropped), **413** when it is over the library's
  ``scayle.webhook_max_body_bytes`` (1 MB by default; the handler also refuses an announced
  ``Content-Length`` over it before reading the body); ``GET /healthz`` returns
  ``connector.health()`` as JSON;
* the request thread never talks to OrderWise: ingesting only writes the ledger, and a background
  :class:`OrderPusher` thread, woken by each recorded event (and every ``interval`` seconds
  anyway), runs ``connector.sync_orders()``, which re-reads each order from SCAYLE and pushes it
  exactly once. A duplicate delivery of the same envelope is recognised through the ledger, so
  several receivers behind a load balancer can share one PostgreSQL ledger.

Run it (starts on 127.0.0.1 on a free port, replays the sandbox's own ``order-confirmed``
envelopes to itself with httpx, one of them twice, plus a request with a wrong password, a
malformed one and one whose order id is not a number, waits for the orders to reach OrderWise, then shuts down)::

    python examples/webhook_receiver.py

Adapting it to real systems: build the connector with ``Connector.from_settings(...)``, with
``[scayle] webhook_username`` in the TOML file and the password in the environment
(``SCAYLE_ORDERWISE_SCAYLE__WEBHOOK_PASSWORD``); subscribe the URL (with the credentials, as
``https://user:password@host/webhooks/scayle``) to ``order-confirmed`` and ``order-cancelled`` in
SCAYLE; serve it behind your TLS-terminating proxy; keep a poll running as well (the pusher's
``poll=True`` or a scheduled ``scayle-orderwise sync orders``) so an order whose webhook never
arrived is still picked up. In a framework (FastAPI, Flask, Django) the handler is the same three
lines: call ``ingest_webhook``, map ``WebhookAuthError`` to 401, ``WebhookTooLargeError`` to 413
and ``MalformedWebhookError`` to 400, answer 202. ``scayle-orderwise serve`` is the ready-made
service (webhooks, scheduler, health, metrics and a dashboard) built the same way.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from scayle_orderwise.config import ConnectorSettings, FlowSettings, ScayleSettings
from scayle_orderwise.connector import Connector, WebhookOutcome
from scayle_orderwise.errors import MalformedWebhookError, WebhookAuthError, WebhookTooLargeError
from scayle_orderwise.sandbox import Sandbox, make_order
from scayle_orderwise.store import State
from scayle_orderwise.sync import SyncResult

logger = logging.getLogger("webhook_receiver")

WEBHOOK_PATH = "/webhooks/scayle"
USERNAME, PASSWORD = "scayle", "example-only-secret"  # the sandbox's; real ones from the env


class WebhookServer(ThreadingHTTPServer):
    """The HTTP server: holds the connector and counts responses by status and outcome."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        connector: Connector,
        on_recorded: Callable[[WebhookOutcome], None] | None = None,
    ) -> None:
        super().__init__(address, _Handler)
        self.connector = connector
        self.on_recorded = on_recorded
        self.statuses: Counter[int] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def count(self, status: int, outcome: str | None = None) -> None:
        """Count one response (thread-safe)."""
        with self.lock:
            self.statuses[status] += 1
            if outcome is not None:
                self.outcomes[outcome] += 1


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def _reply(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        content = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(content)

    def do_GET(self) -> None:
        if self.path != "/healthz":
            self._reply(404, {"error": "not found"})
            return
        self._reply(200, self.server.connector.health().as_dict())

    def do_POST(self) -> None:
        if self.path != WEBHOOK_PATH:
            self._reply(404, {"error": "not found"})
            return
        limit = self.server.connector.settings.scayle.webhook_max_body_bytes
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > limit:  # do not read what will be refused anyway
            status = 400 if length < 0 else 413
            self.server.count(status)
            self._reply(status, {"error": "bad Content-Length"}, {"Connection": "close"})
            return
        body = self.rfile.read(length)
        try:
            outcome = self.server.connector.ingest_webhook(body, dict(self.headers.items()))
        except WebhookAuthError:
            self.server.count(401)
            self._reply(
                401, {"error": "unauthorised"}, {"WWW-Authenticate": 'Basic realm="scayle"'}
            )
            return
        except WebhookTooLargeError:  # the library's own limit, whatever the header said
            self.server.count(413)
            self._reply(413, {"error": "body too large"}, {"Connection": "close"})
            return
        except MalformedWebhookError as exc:
            self.server.count(400)
            self._reply(400, {"error": str(exc)})
            return
        except Exception:  # the ledger is down, say: SCAYLE retries on 5xx
            logger.exception("webhook could not be recorded")
            self.server.count(500)
            self._reply(500, {"error": "internal error, try again"})
            return
        self.server.count(202, outcome.outcome)
        if outcome.outcome == "recorded" and self.server.on_recorded is not None:
            self.server.on_recorded(outcome)
        self._reply(
            202, {"event": outcome.event, "outcome": outcome.outcome, "orderId": outcome.order_id}
        )


def make_server(
    connector: Connector,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    on_recorded: Callable[[WebhookOutcome], None] | None = None,
) -> WebhookServer:
    """A receiver bound to ``host:port`` (0: a free port); call ``serve_forever()`` to run it."""
    return WebhookServer((host, port), connector, on_recorded)


class OrderPusher:
    """Runs ``connector.sync_orders()`` in a background thread, when woken and every ``interval`` s.

    ``poll=False`` pushes only what webhooks recorded; ``poll=True`` also asks SCAYLE for orders
    (the safety net for webhooks that never arrived). A failing pass is logged, never fatal.
    """

    def __init__(self, connector: Connector, *, interval: float = 60.0, poll: bool = False) -> None:
        self.connector = connector
        self.interval = interval
        self.poll = poll
        self.total = SyncResult("orders")
        self.passes = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="order-pusher", daemon=True)

    def start(self) -> OrderPusher:
        """Start the background thread."""
        self._thread.start()
        return self

    def wake(self, _outcome: object = None) -> None:
        """Ask for a pass soon (called for each recorded webhook)."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the current pass and stop."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                result = self.connector.sync_orders(poll=self.poll)
            except Exception:
                logger.exception("order pass failed; the next pass retries")
                continue
            self.total.merge(result)
            self.passes += 1


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def main() -> dict[str, Any]:
    """Start the receiver, replay the sandbox's webhooks to it, print and return what happened."""
    sandbox = Sandbox(seed=2)
    catalogue = [("TEE-BLK-M", 2400, "0.20"), ("BOOK-01", 1250, "0"), ("MUG-02", 999, "0.20")]
    for sku, _price, _rate in catalogue:
        sandbox.orderwise.add_variant(sku)
    order_ids = list(range(8001, 8006))
    for n, order_id in enumerate(order_ids):
        sku, price, rate = catalogue[n % len(catalogue)]
        sandbox.scayle.add_order(
            make_order(order_id, [(sku, price, 1 + n % 2, rate)], shipping=495)
        )

    settings = ConnectorSettings(
        scayle=ScayleSettings(webhook_username=USERNAME, webhook_password=PASSWORD),
        flows=FlowSettings(backoff_base_seconds=0),
    )
    connector = Connector.for_sandbox(sandbox, settings=settings, worker_id="webhook-receiver")
    pusher = OrderPusher(connector, interval=5.0).start()
    server = make_server(connector, "127.0.0.1", 0, on_recorded=pusher.wake)
    serving = threading.Thread(target=server.serve_forever, name="webhook-server", daemon=True)
    serving.start()
    print(f"receiving SCAYLE webhooks at {server.url}{WEBHOOK_PATH}")

    envelopes = [json.dumps(e) for e in sandbox.scayle.webhooks]
    requests: list[tuple[str, bytes | str, tuple[str, str]]] = [
        *(
            (f"order-confirmed {oid}", body, (USERNAME, PASSWORD))
            for oid, body in zip(order_ids, envelopes, strict=True)
        ),
        (f"same envelope again ({order_ids[0]})", envelopes[0], (USERNAME, PASSWORD)),
        ("wrong password", envelopes[1], (USERNAME, "guess")),
        ("malformed body", b'{"type": "order-confirmed", "payload": ', (USERNAME, PASSWORD)),
        (
            "order id that is no number",
            json.dumps({"key": "k-x", "type": "order-confirmed", "payload": {"id": "8001.0"}}),
            (USERNAME, PASSWORD),
        ),
    ]
    answers: list[tuple[str, int, str]] = []
    try:
        with httpx.Client(base_url=server.url, timeout=5.0) as http:
            for label, body, auth in requests:
                response = http.post(
                    WEBHOOK_PATH,
                    content=body,
                    auth=auth,
                    headers={"Content-Type": "application/json"},
                )
                payload = response.json()
                answers.append(
                    (
                        label,
                        response.status_code,
                        payload.get("outcome") or payload.get("error", ""),
                    )
                )
            pushed = _wait_for(
                lambda: connector.store.counts(kind="order")[State.ACKNOWLEDGED] >= len(order_ids)
            )
            health = http.get("/healthz").json()
    finally:
        server.shutdown()
        server.server_close()
        pusher.stop()
        connector.close()

    print(f"\n{'request':<32} {'status':>6}  answer")
    for label, status, text in answers:
        print(f"{label:<32} {status:>6}  {text}")
    per_ref = Counter(
        b["orderHeader"]["eCommerceOrderNumber"] for b in sandbox.orderwise.sales_orders
    )
    print(
        f"\nwebhooks recorded {server.outcomes['recorded']}, duplicates {server.outcomes['duplicate']}, "
        f"refused {server.statuses[401]} (401) and {server.statuses[400]} (400)"
    )
    print(
        f"background pusher: {pusher.passes} pass(es), {pusher.total.pushed} pushed; "
        f"OrderWise now holds {len(sandbox.orderwise.sales_orders)} sales orders "
        f"({sum(1 for n in per_ref.values() if n > 1)} duplicated); all acknowledged: {pushed}"
    )
    print(f"ledger: {health['counts']}")
    return {
        "answers": answers,
        "statuses": dict(server.statuses),
        "outcomes": dict(server.outcomes),
        "sales_orders_per_reference": dict(per_ref),
        "pushed": pusher.total.pushed,
        "health": health,
    }


if __name__ == "__main__":
    main()
