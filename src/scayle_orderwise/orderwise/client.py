"""Clients of the OrderWise REST API (OWAPI): :class:`OrderwiseClient` and :class:`AsyncOrderwiseClient`.

Both share one request builder and one response parser (:class:`_OrderwiseCore`); only sending
differs. What they rely on, with the evidence level of ``reference/orderwise-api.md``:

- Token auth [E]: ``GET token/gettoken`` with Basic credentials answers the token as a JSON string;
  every other call sends ``Authorization: Bearer``. The token lifetime is undocumented, so it is a
  setting (``token_ttl``, default 50 minutes) [P]; on a 401 the token is refreshed once and the call
  repeated once (a 401 means the call was not processed).
- ``POST sales/order?session_id=`` [E] is never repeated blindly: an unclear outcome (timeout or 5xx
  after sending) raises :class:`~scayle_orderwise.errors.AmbiguousOutcomeError`; look the order up
  with :meth:`OrderwiseClient.find_orders_by_reference` before sending it again. OrderWise does not
  de-duplicate ``eCommerceOrderNumber`` [I].
- A 400 naming an unknown variant raises :class:`~scayle_orderwise.errors.UnknownVariantError`. The
  wording of OrderWise's error is not public [I], so the code is found with ``unknown_variant_pattern``
  (a setting) or, failing that, by finding one of the order's variant codes quoted in the message.
- Lookups and deltas go through API export definitions [E mechanism, P definitions]; their ids are
  :class:`~scayle_orderwise.orderwise.exports.ExportDefinitions`.
- Cancelling has no public endpoint [I]: ``cancel_endpoint`` (e.g. ``"sales/order/{order_id}/cancel"``)
  must be configured, else :meth:`OrderwiseClient.cancel_sales_order` raises ``ConfigError``.
- Timestamps sent and read are UK wall-clock time without a zone [I]; pass aware datetimes (naive
  ones are taken as UK time).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Self, TypeVar

import attrs
import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from .._http import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    AsyncHttp,
    HttpCore,
    RateBudget,
    Redactor,
    RequestSpec,
    RetryPolicy,
    SyncHttp,
)
from ..errors import (
    AmbiguousOutcomeError,
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    InvalidResponseError,
    PermissionDeniedError,
    UnknownVariantError,
)
from ..redaction import as_secret
from .exports import REFERENCE_SEPARATOR, ExportDefinitions
from .field_evidence import checked_omissions, without_fields
from .models import (
    OrderChangeRow,
    OrderSummary,
    SalesOrderCreate,
    SalesOrderCreated,
    SalesOrderStatus,
    StockRow,
    StockVariantRow,
    VariantStockRow,
    to_orderwise_datetime,
)

__all__ = [
    "DEFAULT_TOKEN_TTL",
    "DEFAULT_UNKNOWN_VARIANT_PATTERN",
    "AsyncOrderwiseClient",
    "ExportDefinitions",
    "InvalidRow",
    "InvalidRowHandler",
    "OrderwiseClient",
]

DEFAULT_TOKEN_TTL = timedelta(minutes=50)
"""How long a token is reused before a new one is fetched [P]: OrderWise does not document it."""

DEFAULT_UNKNOWN_VARIANT_PATTERN = (
    r"variant(?:\s+code)?\s+['\"](?P<code>[^'\"]+)['\"]\s+"
    r"(?:does\s+not\s+exist|was\s+not\s+found|not\s+found|is\s+unknown|is\s+not\s+recogni[sz]ed)"
)
"""Regex finding the variant code in an "unknown variant" 400 (group ``code``) [I]."""


def same_reference(reference: str) -> str:
    """How two e-commerce order numbers are compared: without surrounding spaces, ignoring case
    (OrderWise's SQL Server compares text case-insensitively by default, so its lookups answer
    ``scayle-1001`` for ``SCAYLE-1001``; both are the same order)."""
    return reference.strip().casefold()


REFERENCES_PER_LOOKUP = 100
"""Most references sent in one ``orders_by_references`` call; longer lists take several calls."""

_SCOPE = "orderwise"
_TOKEN_PATH = "token/gettoken"


def _format_param(value: Any) -> Any:
    """An export parameter value as OrderWise expects it (datetimes as UK wall-clock text)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(microsecond=0).isoformat(timespec="seconds")
        return to_orderwise_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _loads(content: bytes) -> Any:
    """JSON with exact decimals (money and stock may be fractional)."""
    return json.loads(content, parse_float=Decimal)


@attrs.frozen
class InvalidRow:
    """An export row its wire model refused (see the ``on_invalid`` argument of ``iter_*``)."""

    export: str
    """Which export it came from, e.g. ``"order_changes"``."""
    index: int
    """Its position in the export's answer."""
    raw: Mapping[str, Any]
    """The row as OrderWise sent it (export columns; no credentials)."""
    reason: str
    """What was wrong, e.g. ``"despatchedAt: Input should be a valid datetime"``."""


InvalidRowHandler = Callable[[InvalidRow], None]
"""Receives each refused row; the iteration then goes on with the next row."""

_M = TypeVar("_M", bound=BaseModel)


def _validation_reason(exc: ValidationError) -> str:
    """The problems of a refused row, without the offending values."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"]) or "row"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _rows_as(
    model: type[_M],
    rows: Iterable[Any],
    export: str,
    on_invalid: InvalidRowHandler | None,
) -> Iterator[_M]:
    """Validate export rows one by one. A refused row raises ``InvalidResponseError`` (naming the
    row's index) or, with ``on_invalid``, is handed to it and skipped."""
    for index, raw in enumerate(rows):
        try:
            yield model.model_validate(raw)
        except ValidationError as exc:
            reason = _validation_reason(exc)
            if on_invalid is None:
                raise InvalidResponseError(
                    f"OrderWise {export} export row {index} is malformed ({reason})",
                    entity_id=index,
                ) from None
            row = raw if isinstance(raw, Mapping) else {"row": raw}
            on_invalid(InvalidRow(export, index, row, reason))


class _TokenCache:
    """The current bearer token and its expiry; thread-safe. The token is kept as a ``SecretStr``."""

    def __init__(self, ttl: timedelta, monotonic: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._ttl = ttl.total_seconds()
        self._monotonic = monotonic
        self._token: SecretStr | None = None
        self._expires_at = 0.0

    def current(self) -> SecretStr | None:
        with self._lock:
            if self._token is not None and self._monotonic() < self._expires_at:
                return self._token
            return None

    def store(self, token: SecretStr) -> None:
        with self._lock:
            self._token = token
            self._expires_at = self._monotonic() + self._ttl

    def invalidate(self, token: SecretStr | None) -> None:
        """Drop ``token`` unless another caller already replaced it."""
        with self._lock:
            if token is None or self._token == token:
                self._token = None
                self._expires_at = 0.0


class _OrderwiseCore:
    """Settings, request builders and response parsers shared by the sync and async clients."""

    def __init__(
        self,
        api_root: str,
        username: str,
        password: str | SecretStr,
        *,
        session_id: int,
        export_definitions: ExportDefinitions | None,
        timeout: httpx.Timeout | float,
        max_retries: int,
        retry: RetryPolicy | None,
        token_ttl: timedelta,
        cancel_endpoint: str | None,
        unknown_variant_pattern: str | re.Pattern[str],
        requests_per_second: float | None,
        monotonic: Callable[[], float],
        omit_fields: Collection[str] = (),
    ) -> None:
        if not api_root or not api_root.startswith(("http://", "https://")):
            raise ConfigError(f"api_root must be an http(s) URL, got {api_root!r}")
        if not username:
            raise ConfigError("username is required (an OrderWise API user)")
        self.api_root = api_root.rstrip("/")
        self.username = username
        self._password = as_secret(password)
        self.session_id = session_id
        self.export_definitions = export_definitions or ExportDefinitions()
        self.cancel_endpoint = cancel_endpoint
        self.omit_fields = checked_omissions(omit_fields)
        self.unknown_variant_pattern = re.compile(unknown_variant_pattern, re.IGNORECASE)
        basic = base64.b64encode(
            f"{username}:{self._password.get_secret_value()}".encode()
        ).decode()
        self._basic = SecretStr(basic)
        self.redactor = Redactor([self._password, self._basic])
        self.tokens = _TokenCache(token_ttl, monotonic)
        budget = None
        if requests_per_second is not None:
            if requests_per_second <= 0:
                raise ConfigError("requests_per_second must be positive")
            per_window = max(1, int(requests_per_second))
            budget = RateBudget(
                limits={_SCOPE: (per_window, per_window / requests_per_second)},
                clock=monotonic,
            )
        self.http = HttpCore(
            self.api_root,
            auth_headers=self._auth_headers,
            timeout=timeout,
            retry=retry or RetryPolicy(max_retries=max_retries),
            budget=budget,
            redactor=self.redactor,
            service="OrderWise",
        )

    def __repr__(self) -> str:
        return (
            f"api_root={self.api_root!r}, username={self.username!r}, "
            f"password='***', session_id={self.session_id!r}"
        )

    def _auth_headers(self) -> dict[str, str]:
        token = self.tokens.current()
        return {"Authorization": f"Bearer {token.get_secret_value()}"} if token is not None else {}

    # -- builders --------------------------------------------------------------------------------

    def token_spec(self) -> RequestSpec:
        return RequestSpec(
            "GET",
            _TOKEN_PATH,
            headers={"Authorization": f"Basic {self._basic.get_secret_value()}"},
            auth=False,
            scope=_SCOPE,
        )

    def create_spec(self, order: SalesOrderCreate) -> RequestSpec:
        return RequestSpec(
            "POST",
            "sales/order",
            params={"session_id": self.session_id},
            json=without_fields(order.to_wire(), self.omit_fields),
            idempotent=False,
            scope=_SCOPE,
        )

    def export_spec(self, export_id: int, params: Mapping[str, Any]) -> RequestSpec:
        body = [
            {"name": name if name.startswith("@") else f"@{name}", "value": _format_param(value)}
            for name, value in params.items()
        ] or [{"name": "", "value": None}]
        # An export definition is a SELECT: safe to repeat.
        return RequestSpec(
            "POST",
            f"system/export-definition/{int(export_id)}",
            json=body,
            idempotent=True,
            scope=_SCOPE,
        )

    def status_spec(self, order_id: int, *, lines: bool, deliveries: bool) -> RequestSpec:
        return RequestSpec(
            "GET",
            f"sales/order/{int(order_id)}/status",
            params={
                "include_lines": "true" if lines else None,
                "include_delivery": "true" if deliveries else None,
            },
            scope=_SCOPE,
        )

    def cancel_spec(self, order_id: int) -> RequestSpec:
        if not self.cancel_endpoint:
            raise ConfigError(
                "cancel_endpoint is not configured: OrderWise publishes no cancel endpoint, so set "
                "it to your installation's path (e.g. 'sales/order/{order_id}/cancel') or cancel "
                "in OrderWise by hand"
            )
        try:
            path = self.cancel_endpoint.format(order_id=int(order_id))
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"cancel_endpoint must contain only the placeholder {{order_id}}: {exc}"
            ) from None
        # The real semantics are unknown: never repeated blindly.
        return RequestSpec("POST", path, idempotent=False, scope=_SCOPE)

    def variants_spec(self, limit: int, last_id: int | None) -> RequestSpec:
        return RequestSpec(
            "GET", "stock/variants", params={"limit": limit, "last_id": last_id}, scope=_SCOPE
        )

    def variant_stock_spec(self, variant_id: int) -> RequestSpec:
        return RequestSpec("GET", f"stock/{int(variant_id)}", scope=_SCOPE)

    # -- parsers ---------------------------------------------------------------------------------

    def parse_token(self, response: httpx.Response) -> SecretStr:
        text = response.text.strip()
        value: Any
        try:
            value = json.loads(text) if text else None
        except ValueError:
            value = text
        if isinstance(value, dict):
            value = value.get("access_token") or value.get("token")
        if not isinstance(value, str) or not value.strip():
            raise AuthenticationError(
                "OrderWise answered the token request without a token",
                status_code=response.status_code,
                method="GET",
                path=response.request.url.path,
            )
        token = SecretStr(value.strip())
        self.redactor.add(token)
        return token

    def parse_created(self, response: httpx.Response) -> SalesOrderCreated:
        try:
            return SalesOrderCreated.model_validate(_loads(response.content))
        except (ValueError, ValidationError):
            raise AmbiguousOutcomeError(
                "OrderWise accepted the sales order but its answer has no order id; "
                "look it up by reference before re-sending",
                status_code=response.status_code,
                method="POST",
                path=response.request.url.path,
                body=self.redactor(response.text[:500]),
            ) from None

    def parse_rows(self, response: httpx.Response) -> list[dict[str, Any]]:
        data = _loads(response.content) if response.content.strip() else []
        if isinstance(data, dict):
            for key in ("data", "rows", "results", "Data", "Rows", "Results"):
                if isinstance(data.get(key), list):
                    data = data[key]
                    break
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ApiError(
                "OrderWise export definition answered something other than a list of rows",
                status_code=response.status_code,
                path=response.request.url.path,
            )
        return data

    def parse_status(self, response: httpx.Response) -> SalesOrderStatus:
        data = _loads(response.content) if response.content.strip() else {}
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        return SalesOrderStatus.model_validate(data)

    @staticmethod
    def variant_page(page: list[Any], last_id: int | None) -> list[StockVariantRow]:
        """One ``stock/variants`` page; ``InvalidResponseError`` when it does not move past
        ``last_id`` (keyset paging: every id of a page is larger than the last one before)."""
        rows = [StockVariantRow.model_validate(r) for r in page]
        if last_id is not None and rows and min(r.variant_id for r in rows) <= last_id:
            raise InvalidResponseError(
                f"OrderWise answered GET stock/variants?last_id={last_id} with variant ids from "
                f"{min(r.variant_id for r in rows)}: the installation ignores last_id, so the "
                "variant list cannot be paged (it would repeat for ever); ask for a larger "
                "page_size or page the list another way",
                entity_id=last_id,
            )
        return rows

    def parse_list(self, response: httpx.Response) -> list[Any]:
        data = _loads(response.content) if response.content.strip() else []
        return data if isinstance(data, list) else [data]

    def create_error(self, exc: BadRequestError, order: SalesOrderCreate) -> BadRequestError:
        """Turn a 400 naming an unknown variant into :class:`UnknownVariantError`."""
        if isinstance(exc, UnknownVariantError) or exc.status_code != 400:
            return exc
        text = exc.message or ""
        code: str | None = None
        match = self.unknown_variant_pattern.search(text)
        if match is not None:
            code = match.groupdict().get("code") or match.group(0)
        elif "variant" in text.lower():
            codes = {line.variant_code for line in order.order_lines}
            quoted = [c for c in codes if f"'{c}'" in text or f'"{c}"' in text]
            if len(quoted) == 1:
                code = quoted[0]
        if code is None:
            return exc
        return UnknownVariantError(
            f"OrderWise does not know variant code {code!r}: {text}",
            variant_code=code,
            status_code=exc.status_code,
            error_key=exc.error_key,
            method=exc.method,
            path=exc.path,
            body=exc.body,
        )

    def token_error(self, exc: AuthenticationError) -> AuthenticationError:
        if isinstance(exc, PermissionDeniedError):
            return exc
        return AuthenticationError(
            "OrderWise refused the API credentials (check the username and password, and that the "
            "user belongs to an API user group)",
            status_code=exc.status_code,
            method=exc.method,
            path=exc.path,
        )

    # -- typed results ---------------------------------------------------------------------------

    @staticmethod
    def matching_reference(rows: list[dict[str, Any]], reference: str) -> list[OrderSummary]:
        wanted = same_reference(reference)
        kept = [
            r
            for r in rows
            if r.get("externalRef") is None or same_reference(str(r["externalRef"])) == wanted
        ]
        return OrderSummary.from_rows(kept)

    def reference_chunks(self, references: Iterable[str]) -> tuple[list[list[str]], list[str]]:
        """``(batches for orders_by_references, references to look up one by one)``.

        A reference holding the separator cannot travel in ``@refs``; without the batch
        definition every reference is looked up on its own.
        """
        wanted = list(dict.fromkeys(r.strip() for r in references))
        if self.export_definitions.orders_by_references is None:
            return [], wanted
        single = [r for r in wanted if REFERENCE_SEPARATOR in r]
        batched = [r for r in wanted if REFERENCE_SEPARATOR not in r]
        chunks = [
            batched[i : i + REFERENCES_PER_LOOKUP]
            for i in range(0, len(batched), REFERENCES_PER_LOOKUP)
        ]
        return chunks, single

    @staticmethod
    def by_reference(
        rows: list[dict[str, Any]], references: Iterable[str]
    ) -> dict[str, list[OrderSummary]]:
        """Rows of an ``orders_by_references`` call grouped per wanted reference (all keys present)."""
        wanted = {r: same_reference(r) for r in references}
        found: dict[str, list[dict[str, Any]]] = {key: [] for key in wanted.values()}
        for row in rows:
            ref = row.get("externalRef")
            if ref is None:
                raise InvalidResponseError(
                    "the orders_by_references export definition returned a row without "
                    "externalRef; its SQL must return the e-commerce order number as externalRef"
                )
            key = same_reference(str(ref))
            if key in found:
                found[key].append(row)
        return {ref: OrderSummary.from_rows(found[key]) for ref, key in wanted.items()}

    def stock_full_id(self) -> int:
        if self.export_definitions.stock_full is None:
            raise ConfigError("export_definitions.stock_full is not configured")
        return self.export_definitions.stock_full


class _ClientBase:
    """Constructor and read-only settings shared by both clients."""

    _core: _OrderwiseCore

    def __init__(
        self,
        api_root: str,
        username: str,
        password: str | SecretStr,
        *,
        session_id: int,
        export_definitions: ExportDefinitions | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry: RetryPolicy | None = None,
        token_ttl: timedelta = DEFAULT_TOKEN_TTL,
        cancel_endpoint: str | None = None,
        unknown_variant_pattern: str | re.Pattern[str] = DEFAULT_UNKNOWN_VARIANT_PATTERN,
        requests_per_second: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        omit_fields: Collection[str] = (),
    ) -> None:
        self._core = _OrderwiseCore(
            api_root,
            username,
            password,
            session_id=session_id,
            export_definitions=export_definitions,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            token_ttl=token_ttl,
            cancel_endpoint=cancel_endpoint,
            unknown_variant_pattern=unknown_variant_pattern,
            requests_per_second=requests_per_second,
            monotonic=monotonic,
            omit_fields=omit_fields,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._core!r})"

    @property
    def api_root(self) -> str:
        """The API root, e.g. ``https://acme.orderwisecloud.com/OWAPI``."""
        return self._core.api_root

    @property
    def username(self) -> str:
        """The OrderWise API user."""
        return self._core.username

    @property
    def session_id(self) -> int:
        """The e-commerce session orders are created in."""
        return self._core.session_id

    @property
    def export_definitions(self) -> ExportDefinitions:
        """Ids of the export definitions used for lookups and deltas."""
        return self._core.export_definitions

    @property
    def omit_fields(self) -> frozenset[str]:
        """Paths of ``POST sales/order`` fields left out of every body (see
        :mod:`~scayle_orderwise.orderwise.field_evidence`)."""
        return self._core.omit_fields

    @property
    def cancel_endpoint(self) -> str | None:
        """Path template of the cancel call (``{order_id}`` placeholder), or ``None``."""
        return self._core.cancel_endpoint


class OrderwiseClient(_ClientBase):
    """Blocking OrderWise OWAPI client. Thread-safe; use as a context manager or call :meth:`close`.

    ``api_root`` is the full API root (``https://acme.orderwisecloud.com/OWAPI``); ``username`` and
    ``password`` are those of an OrderWise API user; ``session_id`` the e-commerce session web orders
    enter through. ``export_definitions`` holds the export definition ids (default: the sandbox's).
    ``transport`` / ``client`` plug in an httpx transport (the sandbox) or a configured client.
    ``timeout`` and ``max_retries`` (or a full ``retry`` policy, whose sleep is injectable) govern
    safe requests; ``token_ttl`` how long a token is reused [P]; ``cancel_endpoint`` the path template
    of the (non-public) cancel call [I]; ``unknown_variant_pattern`` the regex that finds the code in
    an unknown-variant 400 [I]; ``requests_per_second`` paces all calls (``None``: no pacing; the
    reference suggests about 2 for production, as the API runs on the ERP server);
    ``omit_fields`` paths of ``POST sales/order`` fields to leave out, for an installation that
    refuses them (see :mod:`~scayle_orderwise.orderwise.field_evidence`).
    """

    def __init__(
        self,
        api_root: str,
        username: str,
        password: str | SecretStr,
        *,
        session_id: int,
        export_definitions: ExportDefinitions | None = None,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry: RetryPolicy | None = None,
        token_ttl: timedelta = DEFAULT_TOKEN_TTL,
        cancel_endpoint: str | None = None,
        unknown_variant_pattern: str | re.Pattern[str] = DEFAULT_UNKNOWN_VARIANT_PATTERN,
        requests_per_second: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        omit_fields: Collection[str] = (),
    ) -> None:
        super().__init__(
            api_root,
            username,
            password,
            session_id=session_id,
            export_definitions=export_definitions,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            token_ttl=token_ttl,
            cancel_endpoint=cancel_endpoint,
            unknown_variant_pattern=unknown_variant_pattern,
            requests_per_second=requests_per_second,
            monotonic=monotonic,
            omit_fields=omit_fields,
        )
        self._http = SyncHttp(self._core.http, transport=transport, client=client)
        self._token_lock = threading.Lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying HTTP client (if this client created it)."""
        self._http.close()

    # -- auth --------------------------------------------------------------------------------------

    def authenticate(self) -> None:
        """Fetch a new token now (normally done on first use and after a 401)."""
        with self._token_lock:
            self._fetch_token()

    def _fetch_token(self) -> SecretStr:
        try:
            response = self._http.send(self._core.token_spec())
        except AuthenticationError as exc:
            raise self._core.token_error(exc) from None
        token = self._core.parse_token(response)
        self._core.tokens.store(token)
        return token

    def _ensure_token(self) -> SecretStr:
        token = self._core.tokens.current()
        if token is not None:
            return token
        with self._token_lock:
            return self._core.tokens.current() or self._fetch_token()

    def _send(self, spec: RequestSpec) -> httpx.Response:
        token = self._ensure_token()
        try:
            return self._http.send(spec)
        except PermissionDeniedError:
            raise
        except AuthenticationError:
            # A 401 means the call was not processed: refresh the token once and repeat once.
            self._core.tokens.invalidate(token)
            self._ensure_token()
            return self._http.send(spec)

    # -- sales orders ------------------------------------------------------------------------------

    def create_sales_order(self, order: SalesOrderCreate) -> SalesOrderCreated:
        """``POST sales/order?session_id=…``; never repeated blindly.

        Raises ``AmbiguousOutcomeError`` when the order may have been created (look it up with
        :meth:`find_orders_by_reference` first), ``UnknownVariantError`` for an unknown variant
        code, ``BadRequestError`` for other refusals, ``TransientError`` when it was surely not sent.
        """
        spec = self._core.create_spec(order)
        try:
            response = self._send(spec)
        except BadRequestError as exc:
            raise self._core.create_error(exc, order) from None
        return self._core.parse_created(response)

    def get_order_status(
        self, order_id: int, *, include_lines: bool = True, include_delivery: bool = True
    ) -> SalesOrderStatus:
        """``GET sales/order/{id}/status`` [E-weak]; ``NotFoundError`` for an unknown (or queued) id."""
        spec = self._core.status_spec(order_id, lines=include_lines, deliveries=include_delivery)
        return self._core.parse_status(self._send(spec))

    def cancel_sales_order(self, order_id: int) -> SalesOrderStatus:
        """Cancel an order through ``cancel_endpoint`` [I]; ``ConfigError`` when not configured.

        A refusal (e.g. picking started, something despatched) raises ``BadRequestError`` with
        ``status_code`` 409; an unclear outcome raises ``AmbiguousOutcomeError`` (check the status).
        """
        return self._core.parse_status(self._send(self._core.cancel_spec(order_id)))

    # -- export definitions ------------------------------------------------------------------------

    def run_export(self, export_id: int, /, **params: Any) -> list[dict[str, Any]]:
        """Run an API export definition; parameters become ``@name`` (datetimes as UK time).

        Returns the rows as dicts (numbers with a fraction as ``Decimal``). Safe to retry.
        """
        return self._core.parse_rows(self._send(self._core.export_spec(export_id, params)))

    def find_orders_by_reference(self, reference: str) -> list[OrderSummary]:
        """Orders whose ``eCommerceOrderNumber`` is ``reference`` (several if it was sent twice)."""
        rows = self.run_export(self.export_definitions.order_by_reference, ref=reference)
        return self._core.matching_reference(rows, reference)

    def find_orders_by_references(self, references: Iterable[str]) -> dict[str, list[OrderSummary]]:
        """Orders per reference for many references at once (every reference asked is a key;
        references are compared without surrounding spaces).

        One ``orders_by_references`` call per :data:`REFERENCES_PER_LOOKUP` references; one
        ``order_by_reference`` call per reference when that definition is not configured.
        """
        asked = list(references)
        chunks, single = self._core.reference_chunks(asked)
        found: dict[str, list[OrderSummary]] = {}
        export_id = self.export_definitions.orders_by_references
        for chunk in chunks:
            assert export_id is not None  # chunks exist only when it is configured
            rows = self.run_export(export_id, refs=REFERENCE_SEPARATOR.join(chunk))
            found.update(self._core.by_reference(rows, chunk))
        for reference in single:
            found[reference] = self.find_orders_by_reference(reference)
        return {reference: found[reference.strip()] for reference in asked}

    def iter_order_changes(
        self, since: datetime, *, on_invalid: InvalidRowHandler | None = None
    ) -> Iterator[OrderChangeRow]:
        """Rows of orders created, amended or despatched at or after ``since`` (one per line/delivery).

        A malformed row raises ``InvalidResponseError`` when reached, or, with ``on_invalid``, is
        passed to it as an :class:`InvalidRow` and skipped (the same for every ``iter_*`` export).
        """
        rows = self.run_export(self.export_definitions.order_changes, since=since)
        return _rows_as(OrderChangeRow, rows, "order_changes", on_invalid)

    def iter_stock_changes(
        self, since: datetime, *, on_invalid: InvalidRowHandler | None = None
    ) -> Iterator[StockRow]:
        """Free stock per variant and location recalculated at or after ``since``."""
        rows = self.run_export(self.export_definitions.stock_changes, since=since)
        return _rows_as(StockRow, rows, "stock_changes", on_invalid)

    def iter_stock_full(self, *, on_invalid: InvalidRowHandler | None = None) -> Iterator[StockRow]:
        """Free stock of every variant (``export_definitions.stock_full``), for a full resync."""
        rows = self.run_export(self._core.stock_full_id())
        return _rows_as(StockRow, rows, "stock_full", on_invalid)

    def iter_order_details(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[OrderSummary]:
        """Orders with totals and lines for reconciliation; ordered in ``[since, until)``."""
        rows = self.run_export(self.export_definitions.order_details, since=since, until=until)
        return iter(OrderSummary.from_rows(rows))

    # -- stock -------------------------------------------------------------------------------------

    def iter_stock_variants(self, *, page_size: int = 1000) -> Iterator[StockVariantRow]:
        """Every variant id and code (``GET stock/variants``, keyset pages by ``last_id``).

        Each page must start after the last id of the one before: an installation that ignores
        ``last_id`` would answer the same page for ever, so a page that does not move on raises
        ``InvalidResponseError`` (the rows before it were yielded).
        """
        last_id: int | None = None
        while True:
            page = self._core.parse_list(self._send(self._core.variants_spec(page_size, last_id)))
            rows = self._core.variant_page(page, last_id)
            yield from rows
            if len(rows) < page_size or not rows:
                return
            last_id = rows[-1].variant_id

    def get_variant_stock(self, variant_id: int) -> list[VariantStockRow]:
        """Free stock of one variant per stock location (``GET stock/{variantId}``) [E-weak]."""
        page = self._core.parse_list(self._send(self._core.variant_stock_spec(variant_id)))
        return [VariantStockRow.model_validate(r) for r in page]


class AsyncOrderwiseClient(_ClientBase):
    """Async twin of :class:`OrderwiseClient`: the same methods, awaited.

    ``iter_*`` methods are async generators (``async for row in client.iter_order_changes(t)``).
    The settings are those of :class:`OrderwiseClient`.
    """

    def __init__(
        self,
        api_root: str,
        username: str,
        password: str | SecretStr,
        *,
        session_id: int,
        export_definitions: ExportDefinitions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry: RetryPolicy | None = None,
        token_ttl: timedelta = DEFAULT_TOKEN_TTL,
        cancel_endpoint: str | None = None,
        unknown_variant_pattern: str | re.Pattern[str] = DEFAULT_UNKNOWN_VARIANT_PATTERN,
        requests_per_second: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        omit_fields: Collection[str] = (),
    ) -> None:
        super().__init__(
            api_root,
            username,
            password,
            session_id=session_id,
            export_definitions=export_definitions,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            token_ttl=token_ttl,
            cancel_endpoint=cancel_endpoint,
            unknown_variant_pattern=unknown_variant_pattern,
            requests_per_second=requests_per_second,
            monotonic=monotonic,
            omit_fields=omit_fields,
        )
        self._http = AsyncHttp(self._core.http, transport=transport, client=client)
        self._token_lock: asyncio.Lock | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying HTTP client (if this client created it)."""
        await self._http.aclose()

    def _lock(self) -> asyncio.Lock:
        if self._token_lock is None:
            self._token_lock = asyncio.Lock()
        return self._token_lock

    async def authenticate(self) -> None:
        """Fetch a new token now (normally done on first use and after a 401)."""
        async with self._lock():
            await self._fetch_token()

    async def _fetch_token(self) -> SecretStr:
        try:
            response = await self._http.send(self._core.token_spec())
        except AuthenticationError as exc:
            raise self._core.token_error(exc) from None
        token = self._core.parse_token(response)
        self._core.tokens.store(token)
        return token

    async def _ensure_token(self) -> SecretStr:
        token = self._core.tokens.current()
        if token is not None:
            return token
        async with self._lock():
            return self._core.tokens.current() or await self._fetch_token()

    async def _send(self, spec: RequestSpec) -> httpx.Response:
        token = await self._ensure_token()
        try:
            return await self._http.send(spec)
        except PermissionDeniedError:
            raise
        except AuthenticationError:
            self._core.tokens.invalidate(token)
            await self._ensure_token()
            return await self._http.send(spec)

    async def create_sales_order(self, order: SalesOrderCreate) -> SalesOrderCreated:
        """See :meth:`OrderwiseClient.create_sales_order`."""
        spec = self._core.create_spec(order)
        try:
            response = await self._send(spec)
        except BadRequestError as exc:
            raise self._core.create_error(exc, order) from None
        return self._core.parse_created(response)

    async def get_order_status(
        self, order_id: int, *, include_lines: bool = True, include_delivery: bool = True
    ) -> SalesOrderStatus:
        """See :meth:`OrderwiseClient.get_order_status`."""
        spec = self._core.status_spec(order_id, lines=include_lines, deliveries=include_delivery)
        return self._core.parse_status(await self._send(spec))

    async def cancel_sales_order(self, order_id: int) -> SalesOrderStatus:
        """See :meth:`OrderwiseClient.cancel_sales_order`."""
        return self._core.parse_status(await self._send(self._core.cancel_spec(order_id)))

    async def run_export(self, export_id: int, /, **params: Any) -> list[dict[str, Any]]:
        """See :meth:`OrderwiseClient.run_export`."""
        spec = self._core.export_spec(export_id, params)
        return self._core.parse_rows(await self._send(spec))

    async def find_orders_by_reference(self, reference: str) -> list[OrderSummary]:
        """See :meth:`OrderwiseClient.find_orders_by_reference`."""
        rows = await self.run_export(self.export_definitions.order_by_reference, ref=reference)
        return self._core.matching_reference(rows, reference)

    async def find_orders_by_references(
        self, references: Iterable[str]
    ) -> dict[str, list[OrderSummary]]:
        """See :meth:`OrderwiseClient.find_orders_by_references`."""
        asked = list(references)
        chunks, single = self._core.reference_chunks(asked)
        found: dict[str, list[OrderSummary]] = {}
        export_id = self.export_definitions.orders_by_references
        for chunk in chunks:
            assert export_id is not None
            rows = await self.run_export(export_id, refs=REFERENCE_SEPARATOR.join(chunk))
            found.update(self._core.by_reference(rows, chunk))
        for reference in single:
            found[reference] = await self.find_orders_by_reference(reference)
        return {reference: found[reference.strip()] for reference in asked}

    async def iter_order_changes(
        self, since: datetime, *, on_invalid: InvalidRowHandler | None = None
    ) -> AsyncIterator[OrderChangeRow]:
        """See :meth:`OrderwiseClient.iter_order_changes`."""
        rows = await self.run_export(self.export_definitions.order_changes, since=since)
        for row in _rows_as(OrderChangeRow, rows, "order_changes", on_invalid):
            yield row

    async def iter_stock_changes(
        self, since: datetime, *, on_invalid: InvalidRowHandler | None = None
    ) -> AsyncIterator[StockRow]:
        """See :meth:`OrderwiseClient.iter_stock_changes`."""
        rows = await self.run_export(self.export_definitions.stock_changes, since=since)
        for row in _rows_as(StockRow, rows, "stock_changes", on_invalid):
            yield row

    async def iter_stock_full(
        self, *, on_invalid: InvalidRowHandler | None = None
    ) -> AsyncIterator[StockRow]:
        """See :meth:`OrderwiseClient.iter_stock_full`."""
        rows = await self.run_export(self._core.stock_full_id())
        for row in _rows_as(StockRow, rows, "stock_full", on_invalid):
            yield row

    async def iter_order_details(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> AsyncIterator[OrderSummary]:
        """See :meth:`OrderwiseClient.iter_order_details`."""
        rows = await self.run_export(
            self.export_definitions.order_details, since=since, until=until
        )
        for summary in OrderSummary.from_rows(rows):
            yield summary

    async def iter_stock_variants(self, *, page_size: int = 1000) -> AsyncIterator[StockVariantRow]:
        """See :meth:`OrderwiseClient.iter_stock_variants`."""
        last_id: int | None = None
        while True:
            spec = self._core.variants_spec(page_size, last_id)
            page = self._core.parse_list(await self._send(spec))
            rows = self._core.variant_page(page, last_id)
            for row in rows:
                yield row
            if len(rows) < page_size or not rows:
                return
            last_id = rows[-1].variant_id

    async def get_variant_stock(self, variant_id: int) -> list[VariantStockRow]:
        """See :meth:`OrderwiseClient.get_variant_stock`."""
        page = self._core.parse_list(await self._send(self._core.variant_stock_spec(variant_id)))
        return [VariantStockRow.model_validate(r) for r in page]
