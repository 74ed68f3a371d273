"""An httpx transport, usable by sync and async clients alike, that serves a fake API in process."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx

from .faults import FaultInjector, FaultKind, SimulatedCrash

__all__ = ["FakeTransport", "RequestLog"]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

RequestLog = list[tuple[str, str, int]]


class FakeTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Dispatches requests to ``handler`` under one lock, injecting faults around it.

    ``handler(request) -> httpx.Response`` implements the fake API and must commit its changes before
    returning. ``rate_limited(request) -> httpx.Response`` builds the 429 answer of that API.
    ``exempt(request) -> bool`` marks requests that never get faults (e.g. test-only endpoints).
    ``changes_state(request) -> bool`` marks requests that can get after-commit faults (default:
    every POST, PUT, PATCH and DELETE; a POST that only reads, such as OrderWise's export
    definitions, commits nothing).
    ``path_of(request) -> str`` chooses the path written to the log (default: the URL path).
    Every request is logged as ``(method, path, status_code)``; a request that timed out or crashed
    is logged with status 0 (before commit) or the committed status (after commit).
    """

    def __init__(
        self,
        handler: Callable[[httpx.Request], httpx.Response],
        injector: FaultInjector,
        *,
        lock: threading.RLock,
        log: RequestLog,
        rate_limited: Callable[[httpx.Request], httpx.Response],
        server_error: Callable[[httpx.Request], httpx.Response],
        exempt: Callable[[httpx.Request], bool] = lambda _r: False,
        path_of: Callable[[httpx.Request], str] | None = None,
        changes_state: Callable[[httpx.Request], bool] | None = None,
    ) -> None:
        self._handler = handler
        self._injector = injector
        self._lock = lock
        self._log = log
        self._rate_limited = rate_limited
        self._server_error = server_error
        self._exempt = exempt
        self._path_of = path_of or (lambda r: r.url.path)
        self._changes_state = changes_state or (lambda r: r.method in WRITE_METHODS)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        exempt = self._exempt(request)
        path = self._path_of(request)
        fault = None if exempt else self._injector.before_commit(request.url.path)
        with self._lock:
            if fault is FaultKind.TIMEOUT_BEFORE:
                self._log.append((request.method, path, 0))
                raise httpx.ConnectTimeout("sandbox: timeout before the request reached the server")
            if fault is FaultKind.ERROR:
                response = self._server_error(request)
            elif fault is FaultKind.RATE_LIMIT:
                response = self._rate_limited(request)
            else:
                response = self._handler(request)
            self._log.append((request.method, path, response.status_code))
        if fault is None and not exempt and self._changes_state(request):
            after = self._injector.after_commit(request.url.path)
            if after is FaultKind.TIMEOUT_AFTER_COMMIT:
                raise httpx.ReadTimeout("sandbox: the server committed but the answer was lost")
            if after is FaultKind.CRASH_AFTER_COMMIT:
                raise SimulatedCrash(f"sandbox: process died after {request.method} {path}")
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        response = self.handle_request(request)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=response.content,
            request=request,
        )


def json_response(
    status: int, body: Any = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A JSON answer (``body=None`` and status 201/204 give an empty body)."""
    if body is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=body, headers=headers)
