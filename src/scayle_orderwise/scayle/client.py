"""Typed clients of the SCAYLE Admin API: :class:`ScayleClient` and its twin :class:`AsyncScayleClient`.

Both share one request builder and one response parser (:class:`_ScayleBase`); only sending
differs. Transport rules (retries, rate budget, error mapping, redaction) live in
:mod:`scayle_orderwise._http`:

* reads, ``set_stock`` (idempotent through ``changedAt``) and ``set_reference_key`` (a PUT) are
  retried on timeouts, 408, 429 and 5xx with backoff;
* shipments, cancellations and return items are never repeated blindly: an unclear outcome raises
  :class:`~scayle_orderwise.errors.AmbiguousOutcomeError`; look the order up (``get_order``:
  ``items[].shippedAt`` / ``cancelledAt``, ``packages[].shipmentKey``) before sending again.

Identifiers: an ``int`` is a numeric SCAYLE id; a ``str`` is a reference key and is sent as
``key=<value>`` URL-encoded as a whole (``key%3DSKU-1``), as the API expects.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, get_args
from urllib.parse import quote

import httpx
import pydantic
from pydantic import SecretStr

from .. import __version__
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
from ..errors import ApiError, ConfigError, InvalidResponseError
from ..redaction import as_secret
from .models import (
    CancellationCreate,
    CancellationItem,
    Carrier,
    CursorPage,
    Order,
    OrderCollection,
    OrderStatusResponse,
    ReferenceKeyUpdate,
    ReturnItem,
    ReturnItemsCreate,
    ShipmentCreate,
    ShipmentItem,
    VariantStock,
    VariantStockCreate,
    VariantStockPage,
    Warehouse,
    WebhookEventDefinition,
    WebhookSubscription,
    WebhookSubscriptionCreate,
)

__all__ = [
    "AsyncCursorPager",
    "AsyncScayleClient",
    "CursorPager",
    "ScayleClient",
    "identifier",
]

T = TypeVar("T")
M = TypeVar("M", bound=pydantic.BaseModel)
P = TypeVar("P", bound=CursorPage[Any])

# Rate-limit scopes per endpoint family (reference §1.5); the X-RateLimit-Scope header wins.
SCOPE_ORDERS_READ = "ordersRead"
SCOPE_ORDERS_WRITE = "ordersWrite"
SCOPE_FULFILLMENT_WRITE = "fulfillmentWrite"
SCOPE_STOCKS_READ = "stocksRead"
SCOPE_STOCKS_WRITE = "stocksWrite"
SCOPE_GLOBAL_READ = "globalRead"
SCOPE_GLOBAL_WRITE = "globalWrite"


def identifier(value: int | str) -> str:
    """A path identifier: ``123`` → ``"123"``; ``"SKU 1"`` → ``"key%3DSKU%201"``."""
    if isinstance(value, bool):
        raise TypeError("an identifier is an int id or a str reference key")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"SCAYLE ids are positive integers, got {value}")
        return str(value)
    if not value:
        raise ValueError("a reference key must not be empty")
    return quote("key=" + value, safe="")


class CursorPager(Generic[T]):
    """Iterates a cursor collection to the end; ``pages()`` yields whole pages.

    Iterating it yields the entities of every page in order, fetching the next page only when the
    previous one is used up. A cursor the server repeats raises :class:`ApiError` rather than
    looping for ever.
    """

    def __init__(self, fetch: Callable[[str | None], CursorPage[T]]) -> None:
        self._fetch = fetch
        self.rejected: list[tuple[Any, str]] = []
        """Entities the model refused on the pages read so far: ``(id or None, reason)``."""

    def pages(self) -> Iterator[CursorPage[T]]:
        """Every page, first to last."""
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = self._fetch(cursor)
            self.rejected.extend(page.rejected)
            yield page
            cursor = page.next_cursor
            if not cursor:
                return
            if cursor in seen:
                raise ApiError(f"SCAYLE repeated the pagination cursor {cursor!r}")
            seen.add(cursor)

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.entities


class AsyncCursorPager(Generic[T]):
    """Async twin of :class:`CursorPager`: ``async for item in pager`` / ``pager.pages()``."""

    def __init__(self, fetch: Callable[[str | None], Awaitable[CursorPage[T]]]) -> None:
        self._fetch = fetch

    async def pages(self) -> AsyncIterator[CursorPage[T]]:
        """Every page, first to last."""
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = await self._fetch(cursor)
            yield page
            cursor = page.next_cursor
            if not cursor:
                return
            if cursor in seen:
                raise ApiError(f"SCAYLE repeated the pagination cursor {cursor!r}")
            seen.add(cursor)

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for entity in page.entities:
                yield entity

    async def collect(self) -> builtins.list[T]:
        """All entities of all pages as a list."""
        return [entity async for entity in self]


def _parse(model: type[M], data: Any, spec: RequestSpec) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidResponseError(
            f"SCAYLE answered with an unexpected body ({where}: {first['msg']}; "
            f"{exc.error_count()} validation errors)",
            method=spec.method,
            path=spec.path,
            entity_id=data.get("id") if isinstance(data, dict) else None,
        ) from exc


def _parse_page(model: type[P], data: Any, spec: RequestSpec) -> P:
    """A cursor page; a malformed entity is set aside in ``page.rejected`` instead of failing all."""
    try:
        return _parse(model, data, spec)
    except InvalidResponseError:
        if not isinstance(data, dict) or not isinstance(data.get("entities"), list):
            raise
    page = _parse(model, {**data, "entities": []}, spec)
    item_model = model.model_fields["entities"].annotation
    entity_model = get_args(item_model)[0]
    for raw in data["entities"]:
        try:
            page.entities.append(entity_model.model_validate(raw))
        except pydantic.ValidationError as exc:
            entity_id = raw.get("id") if isinstance(raw, dict) else None
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "entity"
            page.rejected.append((entity_id, f"{where}: {first['msg']}"))
    return page


def _entities(model: type[M], data: Any, spec: RequestSpec) -> builtins.list[M]:
    raw = data.get("entities") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise ApiError(
            "SCAYLE answered without an 'entities' list", method=spec.method, path=spec.path
        )
    return [_parse(model, entity, spec) for entity in raw]


def _aware(when: datetime, name: str) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(
            f"{name} must be timezone-aware (SCAYLE compares instants; naive is ambiguous)"
        )
    return when


def _shipment_items(
    items: Sequence[int | ShipmentItem | Mapping[str, Any]],
) -> builtins.list[ShipmentItem]:
    out = []
    for item in items:
        if isinstance(item, ShipmentItem):
            out.append(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            # The docs recommend the order item id itself as the return key.
            out.append(ShipmentItem(order_item_id=item, return_key=str(item)))
        else:
            out.append(ShipmentItem.model_validate(item))
    if not out:
        raise ValueError("a shipment needs at least one order item")
    return out


class _ScayleBase:
    """Configuration, request builders and response parsers shared by both clients."""

    def __init__(
        self,
        base_url: str,
        token: str | SecretStr,
        *,
        shop_key: str | None = None,
        country_code: str | None = None,
        company_id: int | None = None,
        merchant_reference_key: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry: RetryPolicy | None = None,
        budget: RateBudget | None = None,
    ) -> None:
        if not base_url:
            raise ConfigError("SCAYLE base_url is required")
        self._token = as_secret(token)
        if not self._token:
            raise ConfigError("SCAYLE token is required")
        self.base_url = base_url.rstrip("/")
        self.shop_key = shop_key
        self.country_code = country_code
        self.company_id = company_id
        self.merchant_reference_key = merchant_reference_key
        policy = retry if retry is not None else RetryPolicy(max_retries=max_retries)
        self.budget = budget if budget is not None else RateBudget()
        self._core = HttpCore(
            self.base_url,
            headers={"User-Agent": f"scayle-orderwise/{__version__}"},
            auth_headers=lambda: {"X-Access-Token": self._token.get_secret_value()},
            timeout=timeout,
            retry=policy,
            budget=self.budget,
            redactor=Redactor([self._token]),
            service="SCAYLE",
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, shop_key={self.shop_key!r}, "
            f"country_code={self.country_code!r}, token=***)"
        )

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy in force."""
        return self._core.retry

    # -- paths ---------------------------------------------------------------------------------

    def _shop(self, shop_key: str | None, country_code: str | None) -> tuple[str, str]:
        shop = shop_key or self.shop_key
        country = country_code or self.country_code
        if not shop or not country:
            raise ConfigError(
                "this call needs a shop country: pass shop_key= and country_code= or set them "
                "on the client"
            )
        return shop, country

    def _orders_path(self, shop_key: str | None, country_code: str | None) -> str:
        shop, country = self._shop(shop_key, country_code)
        return f"/shops/{quote(shop, safe='')}/countries/{quote(country, safe='')}/orders"

    def _company_headers(self, company_id: int | None) -> dict[str, str]:
        company = company_id if company_id is not None else self.company_id
        return {} if company is None else {"X-Company-Id": str(int(company))}

    # -- request builders ------------------------------------------------------------------------

    def _spec_get_order(
        self, order: int | str, shop_key: str | None, country_code: str | None
    ) -> RequestSpec:
        return RequestSpec(
            "GET",
            f"{self._orders_path(shop_key, country_code)}/{identifier(order)}",
            scope=SCOPE_ORDERS_READ,
        )

    def _spec_list_orders(
        self,
        limit: int | None,
        cursor: str | None,
        shop_key: str | None,
        country_code: str | None,
        params: Mapping[str, Any] | None,
    ) -> RequestSpec:
        query: dict[str, Any] = dict(params or {})
        query.update({"limit": limit, "cursor": cursor})
        return RequestSpec(
            "GET", self._orders_path(shop_key, country_code), params=query, scope=SCOPE_ORDERS_READ
        )

    def _spec_order_status(
        self, order: int | str, shop_key: str | None, country_code: str | None
    ) -> RequestSpec:
        path = f"{self._orders_path(shop_key, country_code)}/{identifier(order)}/status"
        return RequestSpec("GET", path, scope=SCOPE_ORDERS_READ)

    def _spec_reference_key(
        self, order_id: int, reference: str, shop_key: str | None, country_code: str | None
    ) -> RequestSpec:
        if isinstance(order_id, bool) or not isinstance(order_id, int):
            raise TypeError("set_reference_key needs the numeric SCAYLE order id")
        body = ReferenceKeyUpdate(reference_key=reference).to_wire()
        path = f"{self._orders_path(shop_key, country_code)}/{identifier(order_id)}/reference-key"
        return RequestSpec("PUT", path, json=body, idempotent=True, scope=SCOPE_ORDERS_WRITE)

    def _build_shipment(
        self,
        order_id: int,
        items: Sequence[int | ShipmentItem | Mapping[str, Any]],
        carrier: str,
        shipment_key: str,
        delivery_date: datetime | None,
        return_ident_code: str | None,
        merchant_reference_key: str | None,
        shop_key: str | None,
        country_code: str | None,
    ) -> ShipmentCreate:
        shop, country = self._shop(shop_key, country_code)
        return ShipmentCreate(
            shop_key=shop,
            country_code=country,
            order_id=order_id,
            carrier=carrier,
            shipment_key=shipment_key,
            delivery_date=_aware(delivery_date, "delivery_date") if delivery_date else None,
            return_ident_code=return_ident_code,
            merchant_reference_key=merchant_reference_key or self.merchant_reference_key,
            items=_shipment_items(items),
        )

    def _spec_shipment(self, body: ShipmentCreate, company_id: int | None) -> RequestSpec:
        return RequestSpec(
            "POST",
            "/fulfillment/shipments",
            json=body.to_wire(),
            headers=self._company_headers(company_id),
            idempotent=False,
            scope=SCOPE_FULFILLMENT_WRITE,
        )

    def _build_cancellation(
        self,
        order_id: int,
        items: Sequence[int],
        merchant_reference_key: str | None,
        shop_key: str | None,
        country_code: str | None,
    ) -> CancellationCreate:
        shop, country = self._shop(shop_key, country_code)
        if not items:
            raise ValueError("a cancellation needs at least one order item")
        return CancellationCreate(
            shop_key=shop,
            country_code=country,
            order_id=order_id,
            items=[CancellationItem(order_item_id=i) for i in items],
            merchant_reference_key=merchant_reference_key or self.merchant_reference_key,
        )

    def _spec_cancellation(self, body: CancellationCreate, company_id: int | None) -> RequestSpec:
        return RequestSpec(
            "POST",
            "/fulfillment/cancellations",
            json=body.to_wire(),
            headers=self._company_headers(company_id),
            idempotent=False,
            scope=SCOPE_FULFILLMENT_WRITE,
        )

    def _build_returns(self, items: Sequence[ReturnItem | Mapping[str, Any]]) -> ReturnItemsCreate:
        if not items:
            raise ValueError("a return needs at least one item")
        parsed = [i if isinstance(i, ReturnItem) else ReturnItem.model_validate(i) for i in items]
        if self.merchant_reference_key:
            parsed = [
                i
                if i.merchant_reference_key
                else i.model_copy(update={"merchant_reference_key": self.merchant_reference_key})
                for i in parsed
            ]
        return ReturnItemsCreate(parsed)

    def _spec_returns(self, body: ReturnItemsCreate, company_id: int | None) -> RequestSpec:
        return RequestSpec(
            "POST",
            "/fulfillment/return-items",
            json=body.to_wire(),
            headers=self._company_headers(company_id),
            idempotent=False,
            scope=SCOPE_FULFILLMENT_WRITE,
        )

    def _spec_set_stock(
        self,
        sku: str | int,
        warehouse: str,
        quantity: int,
        changed_at: datetime,
        sellable_without_stock: bool | None,
        merchant_reference_key: str | None,
        expected_availability_at: date | None,
    ) -> RequestSpec:
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise TypeError(f"stock quantity must be an int, got {quantity!r}")
        body = VariantStockCreate(
            quantity=quantity,
            warehouse_reference_key=warehouse,
            changed_at=_aware(changed_at, "changed_at"),
            sellable_without_stock=sellable_without_stock,
            merchant_reference_key=merchant_reference_key or self.merchant_reference_key,
            expected_availability_at=expected_availability_at,
        )
        return RequestSpec(
            "POST",
            f"/variants/{identifier(sku)}/stocks",
            json=body.to_wire(),
            idempotent=True,  # the changedAt rule makes a repeat harmless
            scope=SCOPE_STOCKS_WRITE,
        )

    def _spec_get_stocks(self, sku: str | int) -> RequestSpec:
        return RequestSpec("GET", f"/variants/{identifier(sku)}/stocks", scope=SCOPE_STOCKS_READ)

    def _spec_warehouses(self, cursor: str | None, limit: int | None) -> RequestSpec:
        return RequestSpec(
            "GET", "/warehouses", params={"limit": limit, "cursor": cursor}, scope=SCOPE_GLOBAL_READ
        )

    def _spec_carriers(self, cursor: str | None, limit: int | None) -> RequestSpec:
        return RequestSpec(
            "GET", "/carriers", params={"limit": limit, "cursor": cursor}, scope=SCOPE_GLOBAL_READ
        )

    @staticmethod
    def _spec_webhook_events() -> RequestSpec:
        return RequestSpec("GET", "/webhooks/events", scope=SCOPE_GLOBAL_READ)

    @staticmethod
    def _spec_subscriptions(cursor: str | None) -> RequestSpec:
        return RequestSpec(
            "GET", "/webhooks/subscriptions", params={"cursor": cursor}, scope=SCOPE_GLOBAL_READ
        )

    @staticmethod
    def _spec_create_subscription(
        event: str, url: str, version: int, filters: Sequence[Mapping[str, Any]] | None
    ) -> RequestSpec:
        body = WebhookSubscriptionCreate(
            event=event,
            version=version,
            url=url,
            filters=[dict(f) for f in filters] if filters else None,
        )
        return RequestSpec(
            "POST",
            "/webhooks/subscriptions",
            json=body.to_wire(),
            idempotent=False,
            scope=SCOPE_GLOBAL_WRITE,
        )

    @staticmethod
    def _spec_delete_subscription(subscription_id: int) -> RequestSpec:
        return RequestSpec(
            "DELETE",
            f"/webhooks/subscriptions/{identifier(subscription_id)}",
            idempotent=True,
            scope=SCOPE_GLOBAL_WRITE,
        )

    # -- parsers ---------------------------------------------------------------------------------

    @staticmethod
    def _order(data: Any, spec: RequestSpec) -> Order:
        return _parse(Order, data, spec)

    @staticmethod
    def _order_page(data: Any, spec: RequestSpec) -> OrderCollection:
        return _parse_page(OrderCollection, data, spec)

    @staticmethod
    def _status(data: Any, spec: RequestSpec) -> OrderStatusResponse:
        return _parse(OrderStatusResponse, data, spec)

    @staticmethod
    def _stock(data: Any, spec: RequestSpec) -> VariantStock:
        return _parse(VariantStock, data, spec)

    @staticmethod
    def _stocks(data: Any, spec: RequestSpec) -> builtins.list[VariantStock]:
        return _parse(VariantStockPage, data, spec).entities

    @staticmethod
    def _warehouse_page(data: Any, spec: RequestSpec) -> CursorPage[Warehouse]:
        return _parse(CursorPage[Warehouse], data, spec)

    @staticmethod
    def _carrier_page(data: Any, spec: RequestSpec) -> CursorPage[Carrier]:
        return _parse(CursorPage[Carrier], data, spec)

    @staticmethod
    def _subscription_page(data: Any, spec: RequestSpec) -> CursorPage[WebhookSubscription]:
        return _parse(CursorPage[WebhookSubscription], data, spec)


class ScayleClient(_ScayleBase):
    """Blocking SCAYLE Admin API client. Use as a context manager or call :meth:`close`.

    ``ScayleClient(base_url, token, *, shop_key=None, country_code=None, company_id=None,
    merchant_reference_key=None, transport=None, timeout=..., max_retries=3, retry=None,
    budget=None)``. ``base_url`` is ``https://{tenant}-{space}.admin.api.scayle.cloud/api/admin/v1``.
    ``shop_key``/``country_code`` are the defaults for calls that need a shop country;
    ``company_id`` is sent as ``X-Company-Id`` on fulfilment calls (multi-company tenants).
    ``retry`` (a :class:`~scayle_orderwise._http.RetryPolicy`) overrides ``max_retries``;
    ``budget`` shares a :class:`~scayle_orderwise._http.RateBudget` between clients.
    """

    def __init__(
        self,
        base_url: str,
        token: str | SecretStr,
        *,
        shop_key: str | None = None,
        country_code: str | None = None,
        company_id: int | None = None,
        merchant_reference_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry: RetryPolicy | None = None,
        budget: RateBudget | None = None,
    ) -> None:
        super().__init__(
            base_url,
            token,
            shop_key=shop_key,
            country_code=country_code,
            company_id=company_id,
            merchant_reference_key=merchant_reference_key,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            budget=budget,
        )
        self._http = SyncHttp(self._core, transport=transport)

    def _call(self, spec: RequestSpec) -> Any:
        return self._http.send_json(spec)

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- orders ----------------------------------------------------------------------------------

    def get_order(
        self, order_id: int, *, shop_key: str | None = None, country_code: str | None = None
    ) -> Order:
        """``GET …/orders/{id}``: the order (not filtered by shop country, but the path needs one)."""
        spec = self._spec_get_order(order_id, shop_key, country_code)
        return self._order(self._call(spec), spec)

    def get_order_by_reference(
        self, reference: str, *, shop_key: str | None = None, country_code: str | None = None
    ) -> Order:
        """``GET …/orders/key%3D{reference}``: the order whose ``referenceKey`` is ``reference``."""
        spec = self._spec_get_order(str(reference), shop_key, country_code)
        return self._order(self._call(spec), spec)

    def list_orders(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        shop_key: str | None = None,
        country_code: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> OrderCollection:
        """One page of orders; pass ``page.next_cursor`` as ``cursor`` for the next one."""
        spec = self._spec_list_orders(limit, cursor, shop_key, country_code, params)
        return self._order_page(self._call(spec), spec)

    def iter_orders(
        self,
        *,
        limit: int | None = None,
        shop_key: str | None = None,
        country_code: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> CursorPager[Order]:
        """All orders of the shop country, following the cursor to the end (lazily)."""
        self._shop(shop_key, country_code)  # fail early on a missing shop country

        def fetch(cursor: str | None) -> CursorPage[Order]:
            return self.list_orders(
                limit=limit,
                cursor=cursor,
                shop_key=shop_key,
                country_code=country_code,
                params=params,
            )

        return CursorPager(fetch)

    def get_order_status(
        self, order_id: int | str, *, shop_key: str | None = None, country_code: str | None = None
    ) -> OrderStatusResponse:
        """``GET …/orders/{id}/status``: ``{status, detailedStatus}`` (cheap status poll)."""
        spec = self._spec_order_status(order_id, shop_key, country_code)
        return self._status(self._call(spec), spec)

    def set_reference_key(
        self,
        order_id: int,
        reference: str,
        *,
        shop_key: str | None = None,
        country_code: str | None = None,
    ) -> Order:
        """``PUT …/orders/{id}/reference-key``: store the ERP order number; returns the order."""
        spec = self._spec_reference_key(order_id, reference, shop_key, country_code)
        return self._order(self._call(spec), spec)

    # -- fulfilment ------------------------------------------------------------------------------

    def create_shipment(
        self,
        order_id: int,
        items: Sequence[int | ShipmentItem | Mapping[str, Any]],
        *,
        carrier: str,
        shipment_key: str,
        delivery_date: datetime | None = None,
        return_ident_code: str | None = None,
        merchant_reference_key: str | None = None,
        company_id: int | None = None,
        shop_key: str | None = None,
        country_code: str | None = None,
    ) -> ShipmentCreate:
        """``POST /fulfillment/shipments`` for one package; returns the body that was accepted.

        ``items`` are order item ids (one per unit; the return key defaults to the id) or
        :class:`ShipmentItem`. Put the carrier's tracking number in ``shipment_key``. Not retried
        after an unclear outcome (raises ``AmbiguousOutcomeError``).
        """
        body = self._build_shipment(
            order_id,
            items,
            carrier,
            shipment_key,
            delivery_date,
            return_ident_code,
            merchant_reference_key,
            shop_key,
            country_code,
        )
        return self.send_shipment(body, company_id=company_id)

    def send_shipment(
        self, body: ShipmentCreate, *, company_id: int | None = None
    ) -> ShipmentCreate:
        """Send a prepared :class:`ShipmentCreate` body."""
        self._call(self._spec_shipment(body, company_id))
        return body

    def create_cancellation(
        self,
        order_id: int,
        items: Sequence[int],
        *,
        merchant_reference_key: str | None = None,
        company_id: int | None = None,
        shop_key: str | None = None,
        country_code: str | None = None,
    ) -> CancellationCreate:
        """``POST /fulfillment/cancellations`` for the given order item ids; returns the body."""
        body = self._build_cancellation(
            order_id, items, merchant_reference_key, shop_key, country_code
        )
        self._call(self._spec_cancellation(body, company_id))
        return body

    def create_return_items(
        self, items: Sequence[ReturnItem | Mapping[str, Any]], *, company_id: int | None = None
    ) -> ReturnItemsCreate:
        """``POST /fulfillment/return-items`` (an array, one entry per returned unit)."""
        body = self._build_returns(items)
        self._call(self._spec_returns(body, company_id))
        return body

    # -- stock and warehouses ----------------------------------------------------------------------

    def set_stock(
        self,
        sku: str | int,
        warehouse: str,
        quantity: int,
        changed_at: datetime,
        *,
        sellable_without_stock: bool | None = None,
        merchant_reference_key: str | None = None,
        expected_availability_at: date | None = None,
    ) -> VariantStock:
        """``POST /variants/key%3D{sku}/stocks``: absolute sellable quantity true at ``changed_at``.

        Returns the **stored** stock: when SCAYLE already holds a newer ``changedAt`` it ignores
        the update and answers the stored record, so compare the result with what you sent.
        ``changed_at`` must be timezone-aware. ``sellable_without_stock`` is left out of the body
        unless given, so a stock push never changes the flag merchants set in the Panel for
        pre-orders (SCAYLE's bulk stock operations leave it out too).
        """
        spec = self._spec_set_stock(
            sku,
            warehouse,
            quantity,
            changed_at,
            sellable_without_stock,
            merchant_reference_key,
            expected_availability_at,
        )
        return self._stock(self._call(spec), spec)

    def get_stocks(self, sku: str | int) -> builtins.list[VariantStock]:
        """``GET /variants/{id}/stocks``: the stored stock per warehouse."""
        spec = self._spec_get_stocks(sku)
        return self._stocks(self._call(spec), spec)

    def iter_warehouses(self, *, limit: int | None = None) -> CursorPager[Warehouse]:
        """All warehouses (cursor collection)."""

        def fetch(cursor: str | None) -> CursorPage[Warehouse]:
            spec = self._spec_warehouses(cursor, limit)
            return self._warehouse_page(self._call(spec), spec)

        return CursorPager(fetch)

    def list_warehouses(self) -> builtins.list[Warehouse]:
        """All warehouses as a list (cache ``id`` ↔ ``reference_key`` from it)."""
        return list(self.iter_warehouses())

    # -- carriers ----------------------------------------------------------------------------------

    def iter_carriers(self, *, limit: int | None = None) -> CursorPager[Carrier]:
        """All carriers of the tenant (``GET /carriers``, cursor collection): the keys a shipment's
        ``carrier`` may name."""

        def fetch(cursor: str | None) -> CursorPage[Carrier]:
            spec = self._spec_carriers(cursor, limit)
            return self._carrier_page(self._call(spec), spec)

        return CursorPager(fetch)

    def list_carriers(self) -> builtins.list[Carrier]:
        """All carriers as a list."""
        return list(self.iter_carriers())

    # -- webhooks --------------------------------------------------------------------------------

    def list_webhook_events(self) -> builtins.list[WebhookEventDefinition]:
        """``GET /webhooks/events``: the event names and versions this tenant offers."""
        spec = self._spec_webhook_events()
        return _entities(WebhookEventDefinition, self._call(spec), spec)

    def create_webhook_subscription(
        self,
        event: str,
        url: str,
        *,
        version: int = 1,
        filters: Sequence[Mapping[str, Any]] | None = None,
    ) -> WebhookSubscription:
        """``POST /webhooks/subscriptions``; Basic-auth credentials go in ``url`` (masked on read)."""
        spec = self._spec_create_subscription(event, url, version, filters)
        return _parse(WebhookSubscription, self._call(spec), spec)

    def list_webhook_subscriptions(self) -> builtins.list[WebhookSubscription]:
        """All webhook subscriptions."""

        def fetch(cursor: str | None) -> CursorPage[WebhookSubscription]:
            spec = self._spec_subscriptions(cursor)
            return self._subscription_page(self._call(spec), spec)

        return list(CursorPager(fetch))

    def delete_webhook_subscription(self, subscription_id: int) -> None:
        """``DELETE /webhooks/subscriptions/{id}``."""
        self._call(self._spec_delete_subscription(subscription_id))


class AsyncScayleClient(_ScayleBase):
    """Async twin of :class:`ScayleClient`: same constructor and methods, awaited.

    ``iter_orders()`` returns an :class:`AsyncCursorPager` (``async for order in ...``). Use
    ``async with`` or ``await client.aclose()``.
    """

    def __init__(
        self,
        base_url: str,
        token: str | SecretStr,
        *,
        shop_key: str | None = None,
        country_code: str | None = None,
        company_id: int | None = None,
        merchant_reference_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry: RetryPolicy | None = None,
        budget: RateBudget | None = None,
    ) -> None:
        super().__init__(
            base_url,
            token,
            shop_key=shop_key,
            country_code=country_code,
            company_id=company_id,
            merchant_reference_key=merchant_reference_key,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            budget=budget,
        )
        self._http = AsyncHttp(self._core, transport=transport)

    async def _call(self, spec: RequestSpec) -> Any:
        return await self._http.send_json(spec)

    # -- lifecycle -------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def close(self) -> None:
        """Alias of :meth:`aclose`."""
        await self.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- orders ----------------------------------------------------------------------------------

    async def get_order(
        self, order_id: int, *, shop_key: str | None = None, country_code: str | None = None
    ) -> Order:
        """``GET …/orders/{id}``."""
        spec = self._spec_get_order(order_id, shop_key, country_code)
        return self._order(await self._call(spec), spec)

    async def get_order_by_reference(
        self, reference: str, *, shop_key: str | None = None, country_code: str | None = None
    ) -> Order:
        """``GET …/orders/key%3D{reference}``."""
        spec = self._spec_get_order(str(reference), shop_key, country_code)
        return self._order(await self._call(spec), spec)

    async def list_orders(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        shop_key: str | None = None,
        country_code: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> OrderCollection:
        """One page of orders."""
        spec = self._spec_list_orders(limit, cursor, shop_key, country_code, params)
        return self._order_page(await self._call(spec), spec)

    def iter_orders(
        self,
        *,
        limit: int | None = None,
        shop_key: str | None = None,
        country_code: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> AsyncCursorPager[Order]:
        """All orders, following the cursor to the end: ``async for order in client.iter_orders()``."""
        self._shop(shop_key, country_code)

        async def fetch(cursor: str | None) -> CursorPage[Order]:
            return await self.list_orders(
                limit=limit,
                cursor=cursor,
                shop_key=shop_key,
                country_code=country_code,
                params=params,
            )

        return AsyncCursorPager(fetch)

    async def get_order_status(
        self, order_id: int | str, *, shop_key: str | None = None, country_code: str | None = None
    ) -> OrderStatusResponse:
        """``GET …/orders/{id}/status``."""
        spec = self._spec_order_status(order_id, shop_key, country_code)
        return self._status(await self._call(spec), spec)

    async def set_reference_key(
        self,
        order_id: int,
        reference: str,
        *,
        shop_key: str | None = None,
        country_code: str | None = None,
    ) -> Order:
        """``PUT …/orders/{id}/reference-key``."""
        spec = self._spec_reference_key(order_id, reference, shop_key, country_code)
        return self._order(await self._call(spec), spec)

    # -- fulfilment ------------------------------------------------------------------------------

    async def create_shipment(
        self,
        order_id: int,
        items: Sequence[int | ShipmentItem | Mapping[str, Any]],
        *,
        carrier: str,
        shipment_key: str,
        delivery_date: datetime | None = None,
        return_ident_code: str | None = None,
        merchant_reference_key: str | None = None,
        company_id: int | None = None,
        shop_key: str | None = None,
        country_code: str | None = None,
    ) -> ShipmentCreate:
        """``POST /fulfillment/shipments`` (see :meth:`ScayleClient.create_shipment`)."""
        body = self._build_shipment(
            order_id,
            items,
            carrier,
            shipment_key,
            delivery_date,
            return_ident_code,
            merchant_reference_key,
            shop_key,
            country_code,
        )
        return await self.send_shipment(body, company_id=company_id)

    async def send_shipment(
        self, body: ShipmentCreate, *, company_id: int | None = None
    ) -> ShipmentCreate:
        """Send a prepared :class:`ShipmentCreate` body."""
        await self._call(self._spec_shipment(body, company_id))
        return body

    async def create_cancellation(
        self,
        order_id: int,
        items: Sequence[int],
        *,
        merchant_reference_key: str | None = None,
        company_id: int | None = None,
        shop_key: str | None = None,
        country_code: str | None = None,
    ) -> CancellationCreate:
        """``POST /fulfillment/cancellations``."""
        body = self._build_cancellation(
            order_id, items, merchant_reference_key, shop_key, country_code
        )
        await self._call(self._spec_cancellation(body, company_id))
        return body

    async def create_return_items(
        self, items: Sequence[ReturnItem | Mapping[str, Any]], *, company_id: int | None = None
    ) -> ReturnItemsCreate:
        """``POST /fulfillment/return-items``."""
        body = self._build_returns(items)
        await self._call(self._spec_returns(body, company_id))
        return body

    # -- stock and warehouses ----------------------------------------------------------------------

    async def set_stock(
        self,
        sku: str | int,
        warehouse: str,
        quantity: int,
        changed_at: datetime,
        *,
        sellable_without_stock: bool | None = None,
        merchant_reference_key: str | None = None,
        expected_availability_at: date | None = None,
    ) -> VariantStock:
        """``POST /variants/key%3D{sku}/stocks``; returns the stored stock (see the sync twin)."""
        spec = self._spec_set_stock(
            sku,
            warehouse,
            quantity,
            changed_at,
            sellable_without_stock,
            merchant_reference_key,
            expected_availability_at,
        )
        return self._stock(await self._call(spec), spec)

    async def get_stocks(self, sku: str | int) -> builtins.list[VariantStock]:
        """``GET /variants/{id}/stocks``."""
        spec = self._spec_get_stocks(sku)
        return self._stocks(await self._call(spec), spec)

    def iter_warehouses(self, *, limit: int | None = None) -> AsyncCursorPager[Warehouse]:
        """All warehouses (async cursor collection)."""

        async def fetch(cursor: str | None) -> CursorPage[Warehouse]:
            spec = self._spec_warehouses(cursor, limit)
            return self._warehouse_page(await self._call(spec), spec)

        return AsyncCursorPager(fetch)

    async def list_warehouses(self) -> builtins.list[Warehouse]:
        """All warehouses as a list."""
        return await self.iter_warehouses().collect()

    # -- carriers ----------------------------------------------------------------------------------

    def iter_carriers(self, *, limit: int | None = None) -> AsyncCursorPager[Carrier]:
        """All carriers of the tenant (async cursor collection)."""

        async def fetch(cursor: str | None) -> CursorPage[Carrier]:
            spec = self._spec_carriers(cursor, limit)
            return self._carrier_page(await self._call(spec), spec)

        return AsyncCursorPager(fetch)

    async def list_carriers(self) -> builtins.list[Carrier]:
        """All carriers as a list."""
        return await self.iter_carriers().collect()

    # -- webhooks --------------------------------------------------------------------------------

    async def list_webhook_events(self) -> builtins.list[WebhookEventDefinition]:
        """``GET /webhooks/events``."""
        spec = self._spec_webhook_events()
        return _entities(WebhookEventDefinition, await self._call(spec), spec)

    async def create_webhook_subscription(
        self,
        event: str,
        url: str,
        *,
        version: int = 1,
        filters: Sequence[Mapping[str, Any]] | None = None,
    ) -> WebhookSubscription:
        """``POST /webhooks/subscriptions``."""
        spec = self._spec_create_subscription(event, url, version, filters)
        return _parse(WebhookSubscription, await self._call(spec), spec)

    async def list_webhook_subscriptions(self) -> builtins.list[WebhookSubscription]:
        """All webhook subscriptions."""

        async def fetch(cursor: str | None) -> CursorPage[WebhookSubscription]:
            spec = self._spec_subscriptions(cursor)
            return self._subscription_page(await self._call(spec), spec)

        return await AsyncCursorPager(fetch).collect()

    async def delete_webhook_subscription(self, subscription_id: int) -> None:
        """``DELETE /webhooks/subscriptions/{id}``."""
        await self._call(self._spec_delete_subscription(subscription_id))
