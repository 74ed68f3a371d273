"""``create_app(connector, ...)``: the ASGI application (Starlette) of the service.

Routes (relative to wherever the app is mounted):

* ``POST /webhooks/scayle``: :meth:`Connector.ingest_webhook`; 202 with the outcome (recorded,
  duplicate, ignored), 400 malformed, 401 wrong credentials, 413 too large, 503 when the ledger
  failed (SCAYLE delivers again). It never talks to OrderWise; a recorded event wakes the flow.
* ``GET /healthz``: the process answers. ``GET /readyz``: the ledger answers and every scheduled
  sync flow had a good pass within its stall threshold (503 with the reasons otherwise).
* ``GET /metrics``: Prometheus text (see :mod:`.metrics`).
* ``GET /``: the exceptions dashboard; ``GET /records/{key}``: one record and its history;
  ``POST /records/{key}/release`` and ``POST /alerts/resolve``: the actions, each asking for a
  reason; ``GET /reports/latest``: the latest scheduled reconciliation report. All need the
  dashboard credentials (see :mod:`.auth`).

The app runs as it is (``scayle-orderwise serve``) or mounted in a user's Starlette/FastAPI app
(``Mount("/integration", app=create_app(connector))``); blocking ledger work runs in the thread pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from ..errors import (
    ConfigError,
    ConnectorError,
    MalformedWebhookError,
    WebhookAuthError,
    WebhookTooLargeError,
)
from ..scayle.models import WebhookEvent
from ..scayle.webhooks import classify
from .actions import release, resolve_alert
from .auth import DashboardAuth
from .dashboard import build_view, describe_age
from .metrics import ServiceMetrics
from .passes import PassLog
from .reports import last_reconciliation
from .scheduler import FLOW_NAMES, SYNC_FLOWS, FlowScheduler

if TYPE_CHECKING:
    from ..connector import Connector, WebhookOutcome

__all__ = ["ServiceState", "create_app", "readiness"]

logger = logging.getLogger("scayle_orderwise.service")

_templates = Environment(
    loader=PackageLoader("scayle_orderwise.service", "templates"),
    autoescape=select_autoescape(["html"], default=True),
)


class ServiceState:
    """What the routes share: connector, scheduler (optional), metrics, dashboard access."""

    def __init__(
        self,
        connector: Connector,
        *,
        scheduler: FlowScheduler | None,
        auth: DashboardAuth,
        sandbox: bool,
        reports_dir: Path | None,
    ) -> None:
        self.connector = connector
        self.scheduler = scheduler
        self.auth = auth
        self.sandbox = sandbox
        self.reports_dir = reports_dir
        self.started_at = connector.context.clock()
        self.flows = scheduler.flows if scheduler is not None else _enabled_flows(connector)
        self.metrics = ServiceMetrics(connector, self.flows)

    def on_recorded(self, outcome: WebhookOutcome) -> None:
        """Wake the flow that does the work of a recorded webhook."""
        if self.scheduler is None:
            return
        # Routed as the connector routes it (so new routes, e.g. out-of-stock events, follow).
        kind = classify(WebhookEvent.model_validate({"type": outcome.event}))
        self.scheduler.wake("cancellations" if kind == "cancellation" else "orders")


def _enabled_flows(connector: Connector) -> list[str]:
    service = connector.settings.service
    return [name for name in FLOW_NAMES if getattr(service, name).enabled]


def readiness(state: ServiceState) -> tuple[bool, list[str], dict[str, Any]]:
    """``(ready, reasons, details)``: the ledger answers and no scheduled sync flow is stalled.

    A flow is stalled when its last good pass (by any process sharing the ledger, or this process's
    start when later) is older than its ``stall_after_seconds`` (default
    ``flows.sync_stalled_after_seconds``).
    """
    connector = state.connector
    now = connector.context.clock()
    reasons: list[str] = []
    details: dict[str, Any] = {}
    try:
        connector.store.counts(kind="order")
        log = PassLog(connector.store)
        infos = {name: log.get(name) for name in state.flows}
    except Exception as exc:  # any failure of the ledger means "not ready"
        return False, [f"ledger: {type(exc).__name__}"], {}
    service = connector.settings.service
    for name, info in infos.items():
        details[name] = info.as_dict()
        if name not in SYNC_FLOWS:
            continue
        schedule = getattr(service, name)
        stall = schedule.stall_after_seconds or connector.settings.flows.sync_stalled_after_seconds
        since = state.started_at
        if info.last_good_at is not None and info.last_good_at > since:
            since = info.last_good_at
        if now - since > timedelta(seconds=stall):
            last = info.last_good_at.isoformat() if info.last_good_at else "never"
            error = f" (last error: {info.last_error})" if info.last_error else ""
            reasons.append(f"{name}: no good pass for over {stall} s (last good: {last}){error}")
    return not reasons, reasons, details


def create_app(
    connector: Connector,
    *,
    scheduler: FlowScheduler | None = None,
    dashboard_username: str | None = None,
    dashboard_password: str | None = None,
    open_dashboard: bool = False,
    reports_dir: str | Path | None = None,
    sandbox: bool = False,
) -> Starlette:
    """The service's ASGI app for ``connector`` (see the module doc for the routes).

    ``scheduler``: the :class:`FlowScheduler` running in this process, if any (woken by webhooks,
    started and stopped with the app's lifespan when the app runs on its own). Dashboard
    credentials default to ``settings.service`` (the password from the environment only);
    ``open_dashboard`` lets anyone in (only for the loopback sandbox). ``reports_dir`` (default
    ``settings.service.reports_dir``) is where the latest reconciliation report is read from.
    """
    service = connector.settings.service
    password = dashboard_password
    if password is None and service.dashboard_password is not None:
        password = service.dashboard_password.get_secret_value()
    auth = DashboardAuth(
        dashboard_username or service.dashboard_username, password, open_access=open_dashboard
    )
    state = ServiceState(
        connector,
        scheduler=scheduler,
        auth=auth,
        sandbox=sandbox,
        reports_dir=Path(reports_dir if reports_dir is not None else service.reports_dir),
    )
    if scheduler is not None:
        previous = scheduler.on_pass
        metrics = state.metrics

        def on_pass(*args: Any) -> None:
            metrics.observe_pass(*args)
            if previous is not None:
                previous(*args)

        scheduler.on_pass = on_pass

    routes = [
        Route("/webhooks/scayle", _webhook, methods=["POST"], name="webhook"),
        Route("/healthz", _healthz, methods=["GET"], name="healthz"),
        Route("/readyz", _readyz, methods=["GET"], name="readyz"),
        Route("/metrics", _metrics, methods=["GET"], name="metrics"),
        Route("/", _dashboard, methods=["GET"], name="dashboard"),
        Route("/records/{key:path}/release", _release, methods=["POST"], name="release"),
        Route("/records/{key:path}", _record, methods=["GET"], name="record"),
        Route("/alerts/resolve", _resolve, methods=["POST"], name="resolve"),
        Route("/reports/latest", _latest_report, methods=["GET"], name="latest_report"),
    ]
    app = Starlette(routes=routes, exception_handlers={ConnectorError: _ledger_unavailable})
    app.state.service = state
    return app


async def _ledger_unavailable(request: Request, exc: Exception) -> Response:
    """A page or action that could not read or write the ledger: 503, no details (they may name
    the database)."""
    logger.error(
        "%s %s failed: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
        extra={"event": "request_failed", "outcome": type(exc).__name__},
    )
    return PlainTextResponse(
        "The ledger is not answering; try again shortly.",
        status_code=503,
        headers={"Retry-After": "30"},
    )


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


# ------------------------------------------------------------------------------------------ webhook


async def _webhook(request: Request) -> Response:
    state = _state(request)
    limit = state.connector.settings.scayle.webhook_max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and not (declared.isascii() and declared.isdigit()):
        return _webhook_answer(state, 400, "malformed", {"error": "bad Content-Length"})
    if declared is not None and int(declared) > limit:
        return _too_large(state, limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return _too_large(state, limit)
    headers = dict(request.headers.items())
    try:
        outcome = await run_in_threadpool(state.connector.ingest_webhook, bytes(body), headers)
    except WebhookAuthError:
        return _webhook_answer(
            state,
            401,
            "unauthorised",
            {"error": "unauthorised"},
            {"WWW-Authenticate": 'Basic realm="scayle-webhooks"'},
        )
    except WebhookTooLargeError:
        return _too_large(state, limit)
    except MalformedWebhookError as exc:
        return _webhook_answer(state, 400, "malformed", {"error": str(exc)})
    except ConnectorError as exc:
        logger.error(
            "webhook not recorded: %s",
            type(exc).__name__,
            extra={"event": "webhook", "outcome": "error"},
        )
        return _webhook_answer(state, 503, "error", {"error": "not recorded; deliver again"})
    if outcome.outcome == "recorded":
        state.on_recorded(outcome)
    return _webhook_answer(
        state,
        202,
        outcome.outcome,
        {"event": outcome.event, "outcome": outcome.outcome, "orderId": outcome.order_id},
    )


def _too_large(state: ServiceState, limit: int) -> Response:
    return _webhook_answer(
        state,
        413,
        "too_large",
        {"error": f"body over {limit} bytes"},
        {"Connection": "close"},
    )


def _webhook_answer(
    state: ServiceState,
    status: int,
    outcome: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> Response:
    state.metrics.webhooks.labels(outcome).inc()
    return JSONResponse(body, status_code=status, headers=headers)


# ----------------------------------------------------------------------------------------- health


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "alive"})


async def _readyz(request: Request) -> Response:
    ready, reasons, details = await run_in_threadpool(readiness, _state(request))
    body = {"ready": ready, "reasons": reasons, "flows": details}
    return JSONResponse(body, status_code=200 if ready else 503)


async def _metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    data = await run_in_threadpool(_state(request).metrics.render)
    return Response(data, media_type=CONTENT_TYPE_LATEST)


# -------------------------------------------------------------------------------------- dashboard


def _user(request: Request) -> str | Response:
    auth = _state(request).auth
    if not auth.enabled:
        return PlainTextResponse(
            "The dashboard is closed: set SCAYLE_ORDERWISE_SERVICE__DASHBOARD_PASSWORD "
            "(and [service] dashboard_username) to open it.",
            status_code=403,
        )
    user = auth.user(request.headers.get("authorization"))
    if user is None:
        return PlainTextResponse(
            "Sign in with the dashboard credentials.",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="scayle-orderwise dashboard"'},
        )
    return user


def _page(request: Request, template: str, user: str, **context: Any) -> HTMLResponse:
    state = _state(request)
    clock: Callable[[], datetime] = state.connector.context.clock
    now = clock()
    page = _templates.get_template(template).render(
        user=user,
        sandbox=state.sandbox,
        token=state.auth.form_token(user),
        home_url=request.url_for("dashboard").path,
        metrics_url=request.url_for("metrics").path,
        ready_url=request.url_for("readyz").path,
        resolve_url=request.url_for("resolve").path,
        report_url=request.url_for("latest_report").path,
        record_url=lambda key: request.url_for("record", key=quote(key, safe=":")).path,
        release_url=lambda key: request.url_for("release", key=quote(key, safe=":")).path,
        age=lambda then: describe_age(now, then),
        notice=request.query_params.get("notice"),
        notice_error=request.query_params.get("error") == "1",
        **context,
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


async def _dashboard(request: Request) -> Response:
    user = _user(request)
    if isinstance(user, Response):
        return user
    state = _state(request)
    connector = state.connector
    view = await run_in_threadpool(
        build_view,
        connector.store,
        connector.settings,
        clock=connector.context.clock,
        flows=state.flows,
    )
    return _page(request, "dashboard.html", user, view=view)


async def _record(request: Request) -> Response:
    user = _user(request)
    if isinstance(user, Response):
        return user
    key = request.path_params["key"]
    record = await run_in_threadpool(_state(request).connector.store.get, key)
    if record is None:
        return PlainTextResponse(f"{key} is not in the ledger", status_code=404)
    return _page(request, "record.html", user, record=record)


async def _form(request: Request) -> tuple[str, dict[str, str]] | Response:
    """The signed-in user and the fields of an action's form, or the answer that refuses it."""
    user = _user(request)
    if isinstance(user, Response):
        return user
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not _state(request).auth.check_form_token(user, fields.get("token")):
        return PlainTextResponse("This form has expired: reload the page.", status_code=403)
    return user, fields


def _back(request: Request, target: str, notice: str, *, error: bool = False) -> Response:
    query = f"?notice={quote(notice)}" + ("&error=1" if error else "")
    return RedirectResponse(target + query, status_code=303)


async def _release(request: Request) -> Response:
    submitted = await _form(request)
    if isinstance(submitted, Response):
        return submitted
    user, fields = submitted
    state = _state(request)
    key = request.path_params["key"]
    home = request.url_for("dashboard").path
    try:
        await run_in_threadpool(
            release, state.connector.store, key, actor=user, reason=fields.get("reason", "")
        )
    except ConnectorError as exc:  # not quarantined (any more), no reason, or the ledger failed
        return _back(request, home, f"{key} was not released: {_plain(exc)}", error=True)
    _log_action("release", key, user)
    return _back(request, home, f"{key} released; the next pass takes it up again")


async def _resolve(request: Request) -> Response:
    submitted = await _form(request)
    if isinstance(submitted, Response):
        return submitted
    user, fields = submitted
    state = _state(request)
    kind, subject = fields.get("kind", ""), fields.get("subject", "")
    home = request.url_for("dashboard").path
    try:
        await run_in_threadpool(
            resolve_alert,
            state.connector.store,
            kind,
            subject,
            actor=user,
            reason=fields.get("reason", ""),
        )
    except ConnectorError as exc:
        return _back(request, home, f"alert not resolved: {_plain(exc)}", error=True)
    _log_action("resolve_alert", f"{kind}:{subject}", user)
    return _back(request, home, f"alert {kind} for {subject} resolved")


def _plain(exc: ConnectorError) -> str:
    return str(exc) if isinstance(exc, ConfigError) else type(exc).__name__


def _log_action(action: str, subject: str, user: str) -> None:
    logger.info(
        "%s %s by %s",
        action,
        subject,
        user,
        extra={"event": action, "subject": subject, "actor": user, "outcome": "done"},
    )


async def _latest_report(request: Request) -> Response:
    user = _user(request)
    if isinstance(user, Response):
        return user
    state = _state(request)
    latest = await run_in_threadpool(last_reconciliation, state.connector.store)
    if latest is None or not latest.html or state.reports_dir is None:
        return PlainTextResponse("No reconciliation report yet.", status_code=404)
    path = (state.reports_dir / Path(latest.html).name).resolve()
    if path.parent != state.reports_dir.resolve() or not path.is_file():
        return PlainTextResponse(
            "The latest report is not in this process's reports folder.", status_code=404
        )
    return FileResponse(path, media_type="text/html")
