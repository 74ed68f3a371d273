"""Shared HTTP core of the SCAYLE and OrderWise clients.

One request builder and one response parser (:class:`HttpCore`) serve both the sync and the async
senders (:class:`SyncHttp`, :class:`AsyncHttp`); only the send and the sleep differ.

Typical use inside a client::

    core = HttpCore(base_url, auth_headers=lambda: {"X-Access-Token": token.get_secret_value()},
                    redactor=Redactor([token]), budget=RateBudget(), service="SCAYLE")
    http = SyncHttp(core, transport=transport)
    data = http.send_json(RequestSpec("GET", "/orders/1", scope="ordersRead"))

Rules this module enforces:

* **Retries** (tenacity) only for *safe* requests: reads, and writes flagged ``idempotent=True``
  (stock with ``changedAt``, ``PUT reference-key``), on connection errors, timeouts, 408, 429 and
  5xx. Waits grow exponentially with jitter and honour ``Retry-After`` / ``X-RateLimit-Reset``.
* A **non-idempotent** request (a create) is never repeated blindly. Only failures that prove the
  request was not processed are retried (connection refused, connect timeout, 429). A timeout or a
  5xx/408 after the request was sent raises :class:`~scayle_orderwise.errors.AmbiguousOutcomeError`:
  look the object up before sending it again.
* Status codes map to the error tree of :mod:`scayle_orderwise.errors` with the server's
  ``errorKey`` and message.
* A client-side :class:`RateBudget` per rate-limit scope, fed by ``X-RateLimit-*`` headers, paces
  calls so the connector stays under the limit instead of bouncing off it.
* Secrets (tokens, passwords) are :class:`pydantic.SecretStr` and are redacted from messages, reprs
  and logs (:class:`~scayle_orderwise.redaction.Redactor`).
"""

from __future__ import annotations

import asyncio
import email.utils
import json as _json
import logging
import random
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import attrs
import httpx
import tenacity
from pydantic import SecretStr

from .errors import (
    AmbiguousOutcomeError,
    ApiError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    TransientError,
)
from .redaction import Redactor

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "MIN_WAIT_AFTER_429",
    "RETRY_STATUSES",
    "AsyncHttp",
    "CallEvent",
    "ErrorInfo",
    "HttpCore",
    "RateBudget",
    "Redactor",
    "RequestSpec",
    "RetryPolicy",
    "ScopeState",
    "ServerBusyError",
    "SyncHttp",
    "add_call_observer",
    "parse_error_body",
    "parse_retry_after",
]

logger = logging.getLogger("scayle_orderwise.http")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
"""Default timeouts: 30 s to read/write/pool, 5 s to connect."""

DEFAULT_MAX_RETRIES = 3
"""Default number of retries after the first attempt (so at most 4 attempts)."""

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses worth retrying for a safe request."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# --------------------------------------------------------------------------------------------------
# Secrets and redaction live in :mod:`scayle_orderwise.redaction`; ``Secret`` is a deprecated alias.


class _DeprecatedSecret(SecretStr):
    """``scayle_orderwise._http.Secret`` of 0.1.0: a :class:`pydantic.SecretStr` with ``get()``."""

    def __init__(self, value: str | SecretStr) -> None:
        super().__init__(value.get_secret_value() if isinstance(value, SecretStr) else str(value))

    def get(self) -> str:
        """The secret value (``get_secret_value()`` of ``SecretStr``)."""
        return self.get_secret_value()


def __getattr__(name: str) -> Any:
    if name == "Secret":
        warnings.warn(
            "scayle_orderwise._http.Secret is deprecated: use pydantic.SecretStr",
            DeprecationWarning,
            stacklevel=2,
        )
        return _DeprecatedSecret
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------------
# Requests and retry policy


@attrs.frozen
class RequestSpec:
    """One logical API call, independent of sync/async.

    ``path`` is relative to the client's base URL and already encoded
    (e.g. ``/variants/key%3DA/stocks``). ``json`` is the body (``None`` sends no body).
    ``idempotent=None`` means "safe if the method is GET/HEAD/OPTIONS"; pass ``True`` for writes
    that are idempotent by nature (stock with ``changedAt``, PUT reference-key) and ``False`` to
    forbid retries. ``scope`` names the rate-limit scope expected for this endpoint (the
    ``X-RateLimit-Scope`` header of the answer wins).
    ``auth=False`` skips the core's ``auth_headers`` (e.g. a token request with its own header).
    """

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    idempotent: bool | None = None
    scope: str | None = None
    auth: bool = True
    timeout: httpx.Timeout | float | None = None

    @property
    def retry_safe(self) -> bool:
        """True when the request may be repeated after an unclear outcome."""
        if self.idempotent is not None:
            return self.idempotent
        return self.method.upper() in SAFE_METHODS


async def _async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@attrs.frozen
class RetryPolicy:
    """How often and how long to wait between attempts.

    Backoff for attempt ``n`` (1-based): ``min(backoff_max, backoff_initial * 2**(n-1))`` scaled
    by a jitter factor in ``[1 - jitter, 1]``. A server-advised wait (``Retry-After``,
    ``X-RateLimit-Reset``) is used instead when present, capped at ``max_wait``. ``sleep`` /
    ``async_sleep`` / ``random`` are injectable so tests run without real waiting.
    ``retry_unsent_writes`` allows repeating a non-idempotent request when the failure proves it was
    never processed (connection refused, connect timeout, 429).
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    jitter: float = 0.25
    max_wait: float = 60.0
    retry_unsent_writes: bool = True
    sleep: Callable[[float], None] = time.sleep
    async_sleep: Callable[[float], Awaitable[None]] = _async_sleep
    random: Callable[[], float] = random.random

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter for the ``attempt``-th failure (1-based)."""
        base = min(self.backoff_max, self.backoff_initial * float(2 ** max(0, attempt - 1)))
        return base * (1.0 - self.jitter * self.random())

    def wait_for(self, attempt: int, error: BaseException | None) -> float:
        """Seconds to wait after ``error`` on the ``attempt``-th try."""
        advised = getattr(error, "retry_after", None)
        if isinstance(advised, int | float) and advised >= 0:
            # A small positive jitter so that many workers do not return in the same instant.
            return float(min(self.max_wait, advised)) * (1.0 + 0.1 * self.random())
        return self.backoff(attempt)

    def with_(self, **changes: Any) -> RetryPolicy:
        """A copy with some fields changed."""
        return attrs.evolve(self, **changes)


# --------------------------------------------------------------------------------------------------
# Rate budget


MIN_WAIT_AFTER_429 = 1.0
"""Seconds a scope stays closed after a 429 at the least (see :meth:`RateBudget.exhaust`)."""


@attrs.define
class ScopeState:
    """What the budget knows about one rate-limit scope."""

    limit: int | None
    remaining: int
    reset_at: float | None  # clock time the window resets
    window: float | None = None  # seconds per window for statically configured scopes
    in_flight: int = 0  # calls granted by reserve(track=True) and not released yet


class RateBudget:
    """Client-side rate budget per SCAYLE rate-limit scope, for one process. Thread-safe.

    Fed by the ``X-RateLimit-Scope/Limit/Remaining/Reset`` headers of every answer (``Reset`` =
    seconds until the window resets). Before a call, :meth:`reserve` takes one unit of the scope's
    remaining budget, or returns how many seconds to wait until the window resets when nothing (or
    no more than ``headroom``) is left. ``limits`` configures scopes statically before any header
    was seen: ``{"ordersWrite": (300, 60.0)}`` (requests per window seconds); the same mechanism
    serves as a simple pacer for APIs without rate-limit headers (OrderWise). ``clock`` is
    injectable. Workers sharing a ledger share one budget instead:
    :class:`~scayle_orderwise.store.shared_budget.SharedRateBudget` (same methods).
    """

    def __init__(
        self,
        *,
        limits: Mapping[str, tuple[int, float]] | None = None,
        headroom: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._headroom = headroom
        self._states: dict[str, ScopeState] = {}
        self._aliases: dict[str, str] = {}
        for scope, (limit, window) in (limits or {}).items():
            self._states[scope] = ScopeState(
                limit=limit, remaining=limit, reset_at=None, window=window
            )

    @property
    def clock(self) -> Callable[[], float]:
        """The clock the budget uses (seconds, monotonic)."""
        return self._clock

    def _resolve(self, scope: str) -> str:
        return self._aliases.get(scope, scope)

    def state(self, scope: str) -> ScopeState | None:
        """A copy of what is known about ``scope`` (or ``None``)."""
        with self._lock:
            st = self._states.get(self._resolve(scope))
            return None if st is None else attrs.evolve(st)

    def reserve(self, scope: str | None) -> float:
        """Take one call from ``scope``'s budget: ``0.0`` = go, ``> 0`` = wait that long first."""
        return self._reserve(scope, False)[0]

    def reserve_tracked(self, scope: str | None) -> tuple[float, bool]:
        """Like :meth:`reserve`; also returns whether a granted call must be :meth:`release`-d.

        Calls granted this way and still unanswered when the window resets are held back from
        the new window: the server counts a call when it arrives, and one granted at the very end
        of a window may arrive in the next.
        """
        return self._reserve(scope, True)

    def peek(self, scope: str | None) -> float:
        """Seconds until a call in ``scope`` could go (``0.0``: now), taking nothing.

        Lets a caller choose other work instead of waiting, e.g. let a reference write-back
        wait in the ledger while ``ordersWrite`` is spent.
        """
        if scope is None:
            return 0.0
        now = self._clock()
        with self._lock:
            st = self._states.get(self._resolve(scope))
            if st is None:
                return 0.0
            if st.reset_at is not None and now >= st.reset_at:
                left = st.limit - st.in_flight if st.limit is not None else self._headroom + 1
            else:
                left = st.remaining
            if left > self._headroom_for(st):
                return 0.0
            if st.reset_at is None or now >= st.reset_at:
                return st.window or 1.0
            return max(st.reset_at - now, 0.001)

    def release(self, scope: str | None) -> None:
        """The answer to a call granted by :meth:`reserve_tracked` arrived (or it failed)."""
        if scope is None:
            return
        with self._lock:
            st = self._states.get(self._resolve(scope))
            if st is not None and st.in_flight > 0:
                st.in_flight -= 1

    def _headroom_for(self, st: ScopeState) -> int:
        """The headroom, less when the limit does not cover it: one call per window still goes."""
        if st.limit is None:
            return self._headroom
        return max(0, min(self._headroom, st.limit - 1))

    def _reserve(self, scope: str | None, track: bool) -> tuple[float, bool]:
        if scope is None:
            return 0.0, False
        now = self._clock()
        with self._lock:
            st = self._states.get(self._resolve(scope))
            if st is None:
                return 0.0, False
            if st.reset_at is not None and now >= st.reset_at:
                # The window has reset: the full limit is available again, less the calls still
                # in flight (granted in the old window, they may yet be counted in the new one).
                if st.limit is None:
                    # Limit unknown: forget the scope until the next answer tells us more.
                    del self._states[self._resolve(scope)]
                    return 0.0, False
                st.remaining = max(0, st.limit - st.in_flight)
                st.reset_at = None
            if st.remaining > self._headroom_for(st):
                st.remaining -= 1
                if st.reset_at is None and st.window is not None:
                    st.reset_at = now + st.window
                if track:
                    st.in_flight += 1
                return 0.0, track
            if st.reset_at is None:
                # Exhausted but no known reset: a short pause, then the next answer tells us more.
                st.reset_at = now + (st.window or 1.0)
            return max(st.reset_at - now, 0.001), False

    def update(self, headers: Mapping[str, str], scope_hint: str | None = None) -> None:
        """Learn from an answer's ``X-RateLimit-*`` headers (no-op when they are absent)."""
        feedback = rate_limit_feedback(headers, scope_hint)
        if feedback is None:
            return
        scope, remaining, limit, reset = feedback
        now = self._clock()
        reset_at = now + reset if reset is not None else None
        with self._lock:
            if scope_hint and scope_hint != scope:
                self._aliases[scope_hint] = scope
            st = self._states.get(scope)
            if st is None:
                self._states[scope] = ScopeState(
                    limit=limit, remaining=remaining, reset_at=reset_at
                )
                return
            same_window = (
                st.reset_at is not None
                and reset_at is not None
                and abs(st.reset_at - reset_at) < 1.5
                and now < st.reset_at
            )
            # In the same window, answers may arrive out of order: keep the lower count. So too
            # right after a local window reset (``reset_at`` cleared by :meth:`reserve`): the local
            # count already holds the calls still in flight, which the answer may not count yet.
            fresh = st.reset_at is None and st.limit is not None
            st.remaining = min(st.remaining, remaining) if same_window or fresh else remaining
            if limit is not None:
                st.limit = limit
            if reset_at is not None:
                st.reset_at = reset_at

    def exhaust(self, scope: str, retry_after: float | None) -> None:
        """Record a 429 for ``scope``: nothing left until ``retry_after`` seconds from now.

        At least :data:`MIN_WAIT_AFTER_429` seconds: ``X-RateLimit-Reset`` counts whole seconds, so
        a refusal saying ``0`` means "under a second", not "go ahead now".
        """
        now = self._clock()
        with self._lock:
            key = self._resolve(scope)
            st = self._states.setdefault(key, ScopeState(limit=None, remaining=0, reset_at=None))
            st.remaining = 0
            wait = retry_after if retry_after is not None else (st.window or 1.0)
            st.reset_at = now + max(wait, MIN_WAIT_AFTER_429)

    def __repr__(self) -> str:
        return f"RateBudget(scopes={sorted(self._states)})"


class RateLimitFeedback(NamedTuple):
    """What an answer's ``X-RateLimit-*`` headers say about its scope (``reset`` in seconds)."""

    scope: str
    remaining: int
    limit: int | None
    reset: float | None


def rate_limit_feedback(
    headers: Mapping[str, str], scope_hint: str | None = None
) -> RateLimitFeedback | None:
    """The ``X-RateLimit-*`` feedback of an answer; ``None`` without a scope or a remaining count."""
    scope = headers.get("x-ratelimit-scope") or scope_hint
    remaining = _int_header(headers, "x-ratelimit-remaining")
    if scope is None or remaining is None:
        return None
    return RateLimitFeedback(
        scope,
        remaining,
        _int_header(headers, "x-ratelimit-limit"),
        _float_header(headers, "x-ratelimit-reset"),
    )


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _float_header(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or HTTP date); ``None`` if unusable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# --------------------------------------------------------------------------------------------------
# Error parsing and mapping


@attrs.frozen
class ErrorInfo:
    """What an error answer says: human message, machine key, and the parsed body."""

    message: str | None
    error_key: str | None
    body: Any


def parse_error_body(response: httpx.Response) -> ErrorInfo:
    """Best-effort reading of an error body.

    Understands SCAYLE's ``{"errors": [{"errorKey", "message", "context"}]}`` (all messages kept,
    the first key used), ``{"message"|"Message"|"error"|"error_description": ...}``, a JSON string,
    and plain text.
    """
    text = response.text
    try:
        body: Any = response.json() if text.strip() else None
    except (ValueError, UnicodeDecodeError):
        body = text or None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            keys = [e.get("errorKey") for e in errors if isinstance(e, dict) and e.get("errorKey")]
            msgs = [
                str(e.get("message")) for e in errors if isinstance(e, dict) and e.get("message")
            ]
            return ErrorInfo("; ".join(msgs) or None, str(keys[0]) if keys else None, body)
        for name in ("message", "Message", "error_description", "error", "detail", "title"):
            value = body.get(name)
            if isinstance(value, str) and value:
                key = body.get("errorKey") or body.get("code")
                return ErrorInfo(value, str(key) if key else None, body)
        return ErrorInfo(None, None, body)
    if isinstance(body, str) and body.strip():
        return ErrorInfo(body.strip()[:500], None, body)
    return ErrorInfo(None, None, body)


class ServerBusyError(TransientError):
    """A 5xx/408 on a safe request, with the server's ``Retry-After`` (seconds) when it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


@attrs.frozen
class CallEvent:
    """One answered (or failed) attempt of an API call, as call observers see it.

    ``service`` is the API (``"SCAYLE"``, ``"OrderWise"``), ``scope`` the rate-limit scope the
    server named (or the one expected for the endpoint; ``None`` when unknown), ``status_code``
    the HTTP status, ``None`` when no answer came (connection error, timeout).
    """

    service: str
    scope: str | None
    method: str
    status_code: int | None


_observers: list[Callable[[CallEvent], None]] = []
_observers_lock = threading.Lock()


def add_call_observer(observer: Callable[[CallEvent], None]) -> Callable[[], None]:
    """Call ``observer`` after every attempt of every API call in this process (metrics, tracing).

    Returns a function that removes it again. Observers run on the calling thread and must be
    quick and never raise (an exception is logged and swallowed).
    """
    with _observers_lock:
        _observers.append(observer)

    def remove() -> None:
        with _observers_lock:
            if observer in _observers:
                _observers.remove(observer)

    return remove


def _notify(event: CallEvent) -> None:
    for observer in tuple(_observers):
        try:
            observer(event)
        except Exception:  # an observer must never break a call
            logger.exception("call observer %r failed", observer)


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class HttpCore:
    """Builds requests and parses answers for one API; shared by the sync and async senders.

    ``auth_headers`` is called for every attempt (so a refreshed token is picked up); ``headers``
    are static extra headers. ``error_parser`` reads an error body; ``service`` names the API in
    messages.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth_headers: Callable[[], Mapping[str, str]] | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        budget: RateBudget | None = None,
        redactor: Redactor | None = None,
        error_parser: Callable[[httpx.Response], ErrorInfo] = parse_error_body,
        service: str = "API",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.auth_headers = auth_headers
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.retry = retry or RetryPolicy()
        self.budget = budget
        self.redactor = redactor or Redactor()
        self.error_parser = error_parser
        self.service = service

    def __repr__(self) -> str:
        return f"HttpCore({self.service}, base_url={self.base_url!r})"

    # -- building ----------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` (kept verbatim, so pre-encoded segments stay encoded)."""
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + "/" + path.lstrip("/")

    def build_request(
        self, client: httpx.Client | httpx.AsyncClient, spec: RequestSpec
    ) -> httpx.Request:
        """The httpx request for one attempt of ``spec``."""
        headers: dict[str, str] = {"Accept": "application/json, */*"}
        headers.update(self.headers)
        if spec.auth and self.auth_headers is not None:
            headers.update(self.auth_headers())
        headers.update(spec.headers)
        params = {k: v for k, v in (spec.params or {}).items() if v is not None}
        timeout = spec.timeout if spec.timeout is not None else self.timeout
        return client.build_request(
            spec.method.upper(),
            self.url(spec.path),
            params=params,
            json=spec.json,
            headers=headers,
            timeout=timeout,
        )

    # -- parsing -----------------------------------------------------------------------------------

    def handle_response(self, spec: RequestSpec, response: httpx.Response) -> httpx.Response:
        """Feed the rate budget, log, and return a 2xx answer or raise the mapped error."""
        if self.budget is not None:
            self.budget.update(response.headers, spec.scope)
        status = response.status_code
        if _observers:
            scope = response.headers.get("x-ratelimit-scope") or spec.scope
            _notify(CallEvent(self.service, scope, spec.method.upper(), status))
        logger.debug("%s %s %s -> %s", self.service, spec.method, response.request.url.path, status)
        if 200 <= status < 300:
            return response
        raise self.error_from_response(spec, response)

    def error_from_response(self, spec: RequestSpec, response: httpx.Response) -> ApiError:
        """The error of the tree that matches a non-2xx answer."""
        status = response.status_code
        info = self.error_parser(response)
        message = (
            self.redactor(info.message)
            if info.message
            else f"{self.service} answered HTTP {status}"
        )
        common: dict[str, Any] = {
            "status_code": status,
            "error_key": info.error_key,
            "method": spec.method.upper(),
            "path": response.request.url.path,
            "body": self.redactor.data(info.body),
        }
        if status == 429:
            scope = response.headers.get("x-ratelimit-scope") or spec.scope
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if retry_after is None:
                retry_after = _float_header(response.headers, "x-ratelimit-reset")
            if self.budget is not None and scope is not None:
                self.budget.exhaust(scope, retry_after)
            reset_at = (
                datetime.now(UTC) + timedelta(seconds=retry_after)
                if retry_after is not None
                else None
            )
            return RateLimitedError(
                message, retry_after=retry_after, reset_at=reset_at, scope=scope, **common
            )
        if status == 408 or status >= 500:
            if not spec.retry_safe:
                return AmbiguousOutcomeError(
                    f"{message}; the request may have been processed, look it up before re-sending",
                    **common,
                )
            return ServerBusyError(
                message,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                **common,
            )
        if status == 401:
            return AuthenticationError(message, **common)
        if status == 403:
            return PermissionDeniedError(message, **common)
        if status == 404:
            return NotFoundError(message, **common)
        if 400 <= status < 500:
            return BadRequestError(message, **common)
        return ApiError(message, **common)

    def error_from_exception(self, spec: RequestSpec, exc: httpx.HTTPError) -> ApiError:
        """Map a transport failure: not sent -> ``TransientError``; maybe sent -> by safety."""
        kind = type(exc).__name__
        if _observers:
            _notify(CallEvent(self.service, spec.scope, spec.method.upper(), None))
        common: dict[str, Any] = {"method": spec.method.upper(), "path": _path_of(spec, exc)}
        if isinstance(exc, _NOT_SENT):
            return TransientError(f"{self.service} not reachable ({kind})", **common)
        if spec.retry_safe:
            return TransientError(f"{self.service} request failed ({kind})", **common)
        return AmbiguousOutcomeError(
            f"{self.service} request failed after sending ({kind}); it may have been processed, "
            "look it up before re-sending",
            **common,
        )

    # -- retry decisions ---------------------------------------------------------------------------

    def should_retry(self, spec: RequestSpec, error: BaseException) -> bool:
        """Whether ``error`` from ``spec`` may be retried."""
        if not isinstance(error, TransientError):
            return False
        if spec.retry_safe:
            return True
        # Only errors that prove nothing was processed reach here for unsafe requests.
        return self.retry.retry_unsent_writes

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return self.retry.wait_for(state.attempt_number, error)

    def _retrying_kwargs(self, spec: RequestSpec) -> dict[str, Any]:
        return {
            "stop": tenacity.stop_after_attempt(self.retry.max_retries + 1),
            "retry": tenacity.retry_if_exception(lambda e: self.should_retry(spec, e)),
            "wait": self._wait,
            "reraise": True,
            "before_sleep": self._log_retry,
        }

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        logger.info("%s retry %d after %s", self.service, state.attempt_number, error)

    def budget_wait(self, spec: RequestSpec) -> float:
        """Seconds to wait before sending ``spec`` (0 means a unit of budget was taken)."""
        if self.budget is None:
            return 0.0
        return self.budget.reserve(spec.scope)

    def budget_take(self, spec: RequestSpec) -> tuple[float, bool]:
        """Like :meth:`budget_wait`; ``True`` when the unit must be given back by
        :meth:`budget_done` once the answer is in (or the call failed)."""
        if self.budget is None:
            return 0.0, False
        return self.budget.reserve_tracked(spec.scope)

    def budget_done(self, spec: RequestSpec) -> None:
        """The call granted by :meth:`budget_take` is over."""
        if self.budget is not None:
            self.budget.release(spec.scope)


def _path_of(spec: RequestSpec, exc: httpx.HTTPError) -> str:
    try:
        return exc.request.url.path
    except RuntimeError:
        return spec.path.split("?")[0]


def _json_or_none(response: httpx.Response) -> Any:
    if not response.content or not response.content.strip():
        return None
    ctype = response.headers.get("content-type", "")
    if "json" not in ctype and response.content.lstrip()[:1] not in (b"{", b"[", b'"'):
        return response.text
    try:
        return response.json()
    except (ValueError, _json.JSONDecodeError):
        return response.text


class SyncHttp:
    """Blocking sender over :class:`HttpCore`; owns an ``httpx.Client`` unless one is given."""

    def __init__(
        self,
        core: HttpCore,
        *,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.core = core
        self._owns = client is None
        self._client = client or httpx.Client(transport=transport, timeout=core.timeout)

    def __repr__(self) -> str:
        return f"SyncHttp({self.core!r})"

    def send(self, spec: RequestSpec) -> httpx.Response:
        """Send with pacing and retries; return the 2xx answer or raise the mapped error."""
        for attempt in tenacity.Retrying(
            sleep=self.core.retry.sleep, **self.core._retrying_kwargs(spec)
        ):
            with attempt:
                return self._send_once(spec)
        raise AssertionError("unreachable")  # pragma: no cover

    def send_json(self, spec: RequestSpec) -> Any:
        """Like :meth:`send`, returning the parsed JSON body (``None`` for an empty body)."""
        return _json_or_none(self.send(spec))

    def _send_once(self, spec: RequestSpec) -> httpx.Response:
        while True:
            wait, tracked = self.core.budget_take(spec)
            if wait <= 0:
                break
            logger.debug("%s pacing %s for %.3fs", self.core.service, spec.scope, wait)
            self.core.retry.sleep(wait)
        try:
            request = self.core.build_request(self._client, spec)
            try:
                response = self._client.send(request)
            except httpx.HTTPError as exc:
                raise self.core.error_from_exception(spec, exc) from exc
            return self.core.handle_response(spec, response)
        finally:
            if tracked:
                self.core.budget_done(spec)

    def close(self) -> None:
        """Close the underlying client if this sender created it."""
        if self._owns:
            self._client.close()


class AsyncHttp:
    """Async twin of :class:`SyncHttp`: same core, awaited send and sleep."""

    def __init__(
        self,
        core: HttpCore,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.core = core
        self._owns = client is None
        self._client = client or httpx.AsyncClient(transport=transport, timeout=core.timeout)

    def __repr__(self) -> str:
        return f"AsyncHttp({self.core!r})"

    async def send(self, spec: RequestSpec) -> httpx.Response:
        """Send with pacing and retries; return the 2xx answer or raise the mapped error."""
        retrying = tenacity.AsyncRetrying(
            sleep=self.core.retry.async_sleep, **self.core._retrying_kwargs(spec)
        )
        async for attempt in retrying:
            with attempt:
                return await self._send_once(spec)
        raise AssertionError("unreachable")  # pragma: no cover

    async def send_json(self, spec: RequestSpec) -> Any:
        """Like :meth:`send`, returning the parsed JSON body (``None`` for an empty body)."""
        return _json_or_none(await self.send(spec))

    async def _send_once(self, spec: RequestSpec) -> httpx.Response:
        while True:
            wait, tracked = self.core.budget_take(spec)
            if wait <= 0:
                break
            logger.debug("%s pacing %s for %.3fs", self.core.service, spec.scope, wait)
            await self.core.retry.async_sleep(wait)
        try:
            request = self.core.build_request(self._client, spec)
            try:
                response = await self._client.send(request)
            except httpx.HTTPError as exc:
                raise self.core.error_from_exception(spec, exc) from exc
            return self.core.handle_response(spec, response)
        finally:
            if tracked:
                self.core.budget_done(spec)

    async def aclose(self) -> None:
        """Close the underlying client if this sender created it."""
        if self._owns:
            await self._client.aclose()
