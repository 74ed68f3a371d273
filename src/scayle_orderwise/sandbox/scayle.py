"""An in-process fake of the SCAYLE Admin API, faithful to ``reference/scayle-admin-api.md`` §8.

Served through :class:`~scayle_orderwise.sandbox.transport.FakeTransport`, so the sync and async
clients talk to it exactly as to a tenant. What it emulates:

* ``X-Access-Token`` auth (401 with an ``errors`` body), ``X-RateLimit-*`` headers on every answer,
  per-scope fixed-window limits (configurable, injectable clock) and 429 ``RATE_LIMIT_EXCEED``;
* cursor collections ``{"entities": [...], "cursor": {"next": ...}}`` honouring ``limit``/``cursor``;
* numeric or ``key=``-prefixed identifiers (URL-decoded per path segment);
* orders with per-unit items, ``PUT reference-key``, ``GET status``;
* shipments that mark items shipped (``shippedAt``, ``packageId``; the item status and the order
  status stay as they were, as in SCAYLE's SDK fixtures) and add packages ``{shipmentKey,
  carrierKey, tracking}``, cancellations, return items, ``detailedStatus`` moves and webhook
  envelopes in :attr:`webhooks`;
* stock per (variant, warehouse, merchant) where an older ``changedAt`` is ignored and the stored
  record is answered, and a push that leaves ``sellableWithoutStock`` out keeps the stored flag;
  404 for an unknown variant or warehouse; warehouses; carriers (:data:`DEFAULT_CARRIERS`, or
  ``carriers=``); webhook subscriptions.

Choices where the reference says "(unknown)": fulfilment calls answer ``201`` with an empty body; a
stock POST answers ``200`` with the stored record; a second shipment of an already shipped unit is
accepted and recorded (so tests can count duplicates) without changing the unit again; shipping a
cancelled unit answers 400 ``ORDER_ITEM_CANCELLED``; the order list is filtered by shop country.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from .clock import RealClock, SandboxClock
from .faults import FaultInjector, Faults
from .transport import FakeTransport

__all__ = ["DEFAULT_CARRIERS", "DEFAULT_RATE_LIMITS", "ScayleSandbox"]

DEFAULT_RATE_LIMITS: Mapping[str, int] = {
    "ordersRead": 1000,
    "ordersWrite": 300,
    "fulfillmentWrite": 300,
    "stocksRead": 2500,
    "stocksWrite": 2500,
    "globalRead": 1000,
    "globalWrite": 300,
}
"""Requests per window (one minute by default) per scope, as SCAYLE publishes them."""

DEFAULT_CARRIERS: Mapping[str, tuple[str, str | None]] = {
    "ROYAL_MAIL": ("Royal Mail", "https://www.royalmail.com/track-your-item#/tracking-results/"),
    "PARCELFORCE": (
        "Parcelforce Worldwide",
        "https://www.parcelforce.com/track-trace?trackNumber=",
    ),
    "DPD": ("DPD", "https://track.dpd.co.uk/parcels/"),
    "DHL": ("DHL", "https://www.dhl.com/gb-en/home/tracking.html?tracking-id="),
    "EVRI": ("Evri", "https://www.evri.com/track/parcel/"),
    "HERMES": ("Hermes", None),
    "UPS": ("UPS", "https://www.ups.com/track?tracknum="),
    "FEDEX": ("FedEx", "https://www.fedex.com/fedextrack/?trknbr="),
    "YODEL": ("Yodel", "https://www.yodel.co.uk/tracking/"),
}
"""The carriers of the sandbox tenant (key → name, tracking URL): a UK tenant's usual couriers."""

WEBHOOK_EVENTS = (
    "order-confirmed",
    "order-cancelled",
    "order-item-cancelled",
    "order-item-out-of-stock",
    "order-package-shipped",
    "order-item-returned",
    "product-variant-stock-updated",
)


class _ApiError(Exception):
    def __init__(self, status: int, key: str, message: str, context: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.key = key
        self.message = message
        self.context = {} if context is None else context


class _OrderDict(dict[int, dict[str, Any]]):
    """Orders by id; also accepts the id as a string (``orders["40015"]``)."""

    @staticmethod
    def _key(key: object) -> object:
        if isinstance(key, str) and key.strip().isdigit():
            return int(key)
        return key

    def __getitem__(self, key: object) -> dict[str, Any]:
        return super().__getitem__(self._key(key))  # type: ignore[index]

    def __contains__(self, key: object) -> bool:
        return super().__contains__(self._key(key))

    def get(self, key: object, default: Any = None) -> Any:
        return super().get(self._key(key), default)  # type: ignore[call-overload]


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        value = int(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _ApiError(400, "INVALID_CURSOR", f"invalid cursor {cursor!r}") from exc
    if value < 0:
        raise _ApiError(400, "INVALID_CURSOR", f"invalid cursor {cursor!r}")
    return value


def _parse_time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise _ApiError(400, "INVALID_PARAMETER", f"{field} must be an ISO 8601 date-time string")
    text = value.strip().replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _ApiError(400, "INVALID_PARAMETER", f"{field} is not a valid date-time") from exc
    if when.tzinfo is None:
        raise _ApiError(400, "INVALID_PARAMETER", f"{field} must carry a UTC offset")
    return when


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class ScayleSandbox:
    """A faithful in-process fake of the SCAYLE Admin API (see the module docstring).

    Test-facing API: :meth:`add_order`, :meth:`cancel_order`, :meth:`remove_out_of_stock`,
    :attr:`orders`, :attr:`shipments`,
    :attr:`cancellations`, :attr:`returns`, :attr:`webhooks`, :meth:`add_variant`,
    :meth:`add_warehouse`, :meth:`stock`, :attr:`stock_updates`, :attr:`requests`, and the settings
    :attr:`base_url`, :attr:`token`, :attr:`shop_key`, :attr:`country_code`,
    :attr:`default_warehouse`. Thread-safe: one ``RLock`` guards all state.

    ``carriers`` are the tenant's carrier keys (default :data:`DEFAULT_CARRIERS`);
    ``unknown_warehouse_error_key`` is the ``errorKey`` of the 404 for a stock push to a warehouse
    the tenant lacks (SCAYLE's own is not evidenced: only ``VARIANT_NOT_FOUND`` is).
    ``rate_limits`` overrides the per-scope limits of :data:`DEFAULT_RATE_LIMITS` (per
    ``rate_window`` seconds of ``clock``); ``company_ids`` makes the tenant multi-company, so
    ``/fulfillment/*`` calls need an ``X-Company-Id`` header naming one of them.
    """

    def __init__(
        self,
        injector: FaultInjector | None = None,
        *,
        seed: int = 0,
        base_url: str = "https://acme-sandbox.admin.api.scayle.cloud/api/admin/v1",
        token: str = "sandbox-scayle-token",
        shop_key: str = "ac",
        country_code: str = "GB",
        shop_countries: Iterable[tuple[str, str]] = (),
        default_warehouse: str = "WH1",
        warehouses: Mapping[str, int] | None = None,
        carriers: Iterable[str] | None = None,
        unknown_warehouse_error_key: str = "WAREHOUSE_NOT_FOUND",
        rate_limits: Mapping[str, int] | None = None,
        rate_window: float = 60.0,
        fault_reset_seconds: int = 1,
        company_ids: Iterable[int] | None = None,
        tenant_key: str = "acme",
        clock: SandboxClock | None = None,
        lock: threading.RLock | None = None,
    ) -> None:
        self.lock = lock or threading.RLock()
        self.injector = injector or FaultInjector(Faults(), seed=seed)
        self.clock = clock or RealClock()
        self.base_url = base_url.rstrip("/")
        self._base_path = urlsplit(self.base_url).path.rstrip("/")
        self.token = token
        self.shop_key = shop_key
        self.country_code = country_code
        self.shop_countries = {(shop_key.lower(), country_code.lower())} | {
            (s.lower(), c.lower()) for s, c in shop_countries
        }
        self.default_warehouse = default_warehouse
        self.tenant_key = tenant_key
        self.company_ids = None if company_ids is None else frozenset(company_ids)
        self.rate_limits: dict[str, int] = {**DEFAULT_RATE_LIMITS, **(rate_limits or {})}
        self.rate_window = rate_window
        self.fault_reset_seconds = fault_reset_seconds
        self._random = random.Random(seed)

        self.orders: _OrderDict = _OrderDict()
        self.shipments: list[dict[str, Any]] = []
        self.cancellations: list[dict[str, Any]] = []
        self.returns: list[dict[str, Any]] = []
        self.webhooks: list[dict[str, Any]] = []
        self.stock_updates: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, int]] = []
        self.subscriptions: dict[int, dict[str, Any]] = {}
        self.company_headers: list[int | None] = []

        self._variants: dict[str, int] = {}  # referenceKey (SKU) -> variant id
        self._variant_keys: dict[int, str] = {}  # variant id -> referenceKey
        self._warehouses: dict[str, int] = dict(warehouses or {default_warehouse: 12})
        if default_warehouse not in self._warehouses:
            self._warehouses[default_warehouse] = max(self._warehouses.values(), default=11) + 1
        self.unknown_warehouse_error_key = unknown_warehouse_error_key
        self._carriers: dict[str, dict[str, Any]] = {}
        for key in DEFAULT_CARRIERS if carriers is None else carriers:
            self.add_carrier(key)
        self._stocks: dict[tuple[int, str, str | None], dict[str, Any]] = {}
        self._windows: dict[str, tuple[float, int]] = {}  # scope -> (window start, count)
        self._return_keys: dict[str, tuple[int, int]] = {}  # returnKey -> (order id, item id)
        self._next_package_id = 9000
        self._next_subscription_id = 1

        self.transport = FakeTransport(
            self._handle,
            self.injector,
            lock=self.lock,
            log=self.requests,
            rate_limited=self._fault_rate_limited,
            server_error=self._fault_server_error,
            path_of=self._relative_path,
        )

    def __repr__(self) -> str:
        return (
            f"ScayleSandbox(base_url={self.base_url!r}, shop={self.shop_key}/{self.country_code}, "
            f"orders={len(self.orders)})"
        )

    @property
    def faults(self) -> Faults:
        """The fault settings of this fake (reassignable)."""
        return self.injector.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self.injector.faults = value

    # ---------------------------------------------------------------------------------------------
    # Test-facing API

    def add_order(self, order_json: Mapping[str, Any]) -> dict[str, Any]:
        """Store an order (deep copy), register its variants and emit ``order-confirmed``.

        Returns the stored JSON. Adding an order id again replaces it (and emits again).
        """
        order = copy.deepcopy(dict(order_json))
        if not _is_int(order.get("id")):
            raise ValueError("a SCAYLE order needs an integer 'id'")
        items = order.get("items")
        if not isinstance(items, list):
            raise ValueError("a SCAYLE order needs a list of 'items' (one per unit)")
        order.setdefault("referenceKey", None)
        order.setdefault("packages", [])
        with self.lock:
            for item in items:
                variant = item.get("variant") or {}
                sku = variant.get("referenceKey")
                if isinstance(sku, str):
                    vid = variant.get("id")
                    self._register_variant(sku, vid if _is_int(vid) else None)
            self.orders[order["id"]] = order
            self._emit("order-confirmed", order)
            return order

    def cancel_order(self, order_id: int | str) -> dict[str, Any]:
        """The customer cancels in the shop: every unit not yet shipped is cancelled.

        Emits ``order-cancelled`` when nothing is left, else ``order-item-cancelled``.
        """
        with self.lock:
            order = self.orders[order_id]
            now = _iso(self.clock.utcnow())
            cancelled = []
            for item in order["items"]:
                if item.get("shippedAt") or item.get("status") in ("cancelled", "returned"):
                    continue
                item["status"] = "cancelled"
                item["cancelledAt"] = now
                cancelled.append(item["id"])
            self._after_item_change(order, now)
            self._emit(
                "order-cancelled" if self._all_cancelled(order) else "order-item-cancelled", order
            )
            return order

    def remove_out_of_stock(self, order_id: int | str, item_ids: Iterable[int]) -> dict[str, Any]:
        """Delegation found these units out of stock: SCAYLE removes them from the order (its
        totals and card payment shrink by their price) and emits ``order-item-out-of-stock``
        with ``{"order": ..., "items": [removed units]}``. Returns the order.
        """
        wanted = set(item_ids)
        with self.lock:
            order = self.orders[order_id]
            removed = [i for i in order["items"] if i["id"] in wanted and not i.get("shippedAt")]
            if len(removed) != len(wanted):
                raise ValueError(f"not open units of order {order['id']}: {sorted(wanted)}")
            order["items"] = [i for i in order["items"] if i["id"] not in wanted]
            gross = sum(int((i.get("price") or {}).get("withTax") or 0) for i in removed)
            net = sum(int((i.get("price") or {}).get("withoutTax") or 0) for i in removed)
            cost = order.setdefault("cost", {})
            for field, amount in (
                ("withTax", gross),
                ("withoutTax", net),
                ("withTaxWithMembershipDiscountWithoutServiceCosts", gross),
                ("withoutTaxWithMembershipDiscount", net),
                ("costCapture", gross),
            ):
                if isinstance(cost.get(field), int):
                    cost[field] -= amount
            vat = (cost.get("tax") or {}).get("vat")
            if isinstance(vat, dict) and isinstance(vat.get("amount"), int):
                vat["amount"] -= gross - net
            card = next((p for p in order.get("payment") or [] if not p.get("isGiftCard")), None)
            if card is not None and isinstance(card.get("amount"), int):
                card["amount"] -= gross
            order["updatedAt"] = _iso(self.clock.utcnow())
            self._emit("order-item-out-of-stock", {"order": order, "items": removed})
            return order

    def add_variant(self, sku: str, variant_id: int | None = None) -> int:
        """Register a variant by reference key (SKU); returns its numeric id."""
        with self.lock:
            return self._register_variant(sku, variant_id)

    def add_warehouse(self, reference_key: str, warehouse_id: int | None = None) -> int:
        """Register a warehouse by reference key; returns its numeric id."""
        with self.lock:
            if reference_key not in self._warehouses:
                wid = warehouse_id or max(self._warehouses.values(), default=11) + 1
                self._warehouses[reference_key] = wid
            return self._warehouses[reference_key]

    def add_carrier(
        self, key: str, name: str | None = None, tracking_url: str | None = None
    ) -> dict[str, Any]:
        """Register a carrier by key (``GET /carriers`` lists it); returns its JSON."""
        with self.lock:
            if key not in self._carriers:
                known_name, known_url = DEFAULT_CARRIERS.get(key, (key.replace("_", " "), None))
                self._carriers[key] = {
                    "id": len(self._carriers) + 1,
                    "key": key,
                    "name": name or known_name,
                    "trackingUrl": tracking_url or known_url,
                }
            return dict(self._carriers[key])

    @property
    def carriers(self) -> dict[str, dict[str, Any]]:
        """Known carriers: key -> carrier JSON (a copy)."""
        with self.lock:
            return {k: dict(v) for k, v in self._carriers.items()}

    @property
    def variants(self) -> dict[str, int]:
        """Known variants: reference key (SKU) -> numeric id (a copy)."""
        with self.lock:
            return dict(self._variants)

    @property
    def warehouses(self) -> dict[str, int]:
        """Known warehouses: reference key -> numeric id (a copy)."""
        with self.lock:
            return dict(self._warehouses)

    def stock(self, sku: str, warehouse: str | None = None) -> int | None:
        """The stored quantity of ``sku`` in ``warehouse`` (default warehouse if ``None``)."""
        record = self.stock_record(sku, warehouse)
        return None if record is None else int(record["quantity"])

    def stock_record(self, sku: str, warehouse: str | None = None) -> dict[str, Any] | None:
        """The stored stock record (``ProductVariantStock`` JSON) or ``None``."""
        wh = warehouse or self.default_warehouse
        with self.lock:
            vid = self._variants.get(sku)
            if vid is None:
                return None
            for (v, w, _m), record in self._stocks.items():
                if v == vid and w == wh:
                    return dict(record)
            return None

    def set_stock(
        self,
        sku: str,
        quantity: int,
        warehouse: str | None = None,
        changed_at: str | None = None,
        *,
        sellable_without_stock: bool = False,
    ) -> None:
        """Seed stock directly (as if set earlier), registering the variant if new.

        ``sellable_without_stock`` is the flag a merchant sets in the Panel (pre-orders).
        """
        wh = warehouse or self.default_warehouse
        with self.lock:
            vid = self._register_variant(sku, None)
            self.add_warehouse(wh)
            self._stocks[(vid, wh, None)] = {
                "quantity": quantity,
                "warehouseReferenceKey": wh,
                "changedAt": changed_at or _iso(self.clock.utcnow()),
                "sellableWithoutStock": sellable_without_stock,
                "merchantReferenceKey": None,
                "expectedAvailabilityAt": None,
            }

    # ---------------------------------------------------------------------------------------------
    # Internals: registry, webhooks, status

    def _register_variant(self, sku: str, variant_id: int | None) -> int:
        if sku in self._variants:
            vid = self._variants[sku]
            if variant_id is not None and variant_id not in self._variant_keys:
                self._variant_keys[variant_id] = sku  # an alias id for the same variant
            return vid
        if variant_id is None or variant_id in self._variant_keys:
            variant_id = max(self._variant_keys, default=50000) + 1
        self._variants[sku] = variant_id
        self._variant_keys[variant_id] = sku
        return variant_id

    def _emit(self, event: str, payload: Mapping[str, Any]) -> None:
        key = str(uuid.UUID(int=self._random.getrandbits(128), version=4))
        self.webhooks.append(
            {
                "key": key,
                "meta": {"tenantKey": self.tenant_key, "xRequestId": key[:8]},
                "occurredAt": _iso(self.clock.utcnow()),
                "type": event,
                "version": 1,
                "payload": copy.deepcopy(dict(payload)),
            }
        )

    def _subscribed(self, event: str) -> bool:
        return any(s.get("event") == event for s in self.subscriptions.values())

    @staticmethod
    def _all_cancelled(order: Mapping[str, Any]) -> bool:
        return all(item.get("status") == "cancelled" for item in order["items"])

    def _after_item_change(self, order: dict[str, Any], now: str) -> None:
        items = order["items"]
        live = [i for i in items if i.get("status") != "cancelled"]
        detailed = order.setdefault("detailedStatus", {})
        order["updatedAt"] = now
        if not live:
            order["status"] = "cancellation_completed"
            detailed["order"] = {"code": "order_cancelled", "name": "Cancelled"}
            detailed["billing"] = {"code": "billing_payment_cancelled", "name": "Payment cancelled"}
            return
        # As SCAYLE's SDK fixtures show it: a completed shipment keeps the order's status and
        # detailed order status; only the shipping status says the goods left.
        if all(i.get("shippedAt") for i in live):
            detailed["shipping"] = {"code": "shipping_delivered", "name": "Shipped"}
        if any(i.get("returnedAt") for i in items):
            detailed["shipping"] = {
                "code": "shipping_partially_returned",
                "name": "Partially returned",
            }

    # ---------------------------------------------------------------------------------------------
    # HTTP plumbing

    def _relative_path(self, request: httpx.Request) -> str:
        raw = request.url.raw_path.decode("ascii").split("?", 1)[0]
        if raw.startswith(self._base_path):
            raw = raw[len(self._base_path) :]
        return unquote(raw) or "/"

    def _segments(self, request: httpx.Request) -> list[str] | None:
        raw = request.url.raw_path.decode("ascii").split("?", 1)[0]
        if not (raw == self._base_path or raw.startswith(self._base_path + "/")):
            return None
        rest = raw[len(self._base_path) :].strip("/")
        return [unquote(s) for s in rest.split("/")] if rest else []

    def _rate_headers(self, scope: str | None) -> dict[str, str]:
        if scope is None:
            return {}
        limit = self.rate_limits.get(scope)
        if limit is None:
            return {}
        now = self.clock.monotonic()
        start, count = self._windows.get(scope, (now, 0))
        # The same test as _take_rate (``now >= start + window``, not ``now - start >= window``:
        # in floating point the two can disagree, and a refusal must never advertise a reset of 0).
        if now >= start + self.rate_window:
            start, count = now, 0
        reset = max(0, int(-(-(start + self.rate_window - now) // 1)))
        return {
            "X-RateLimit-Scope": scope,
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, limit - count)),
            "X-RateLimit-Reset": str(reset),
        }

    def _take_rate(self, scope: str | None) -> bool:
        """Count one request in ``scope``'s window; False when the limit is exceeded."""
        if scope is None or scope not in self.rate_limits:
            return True
        now = self.clock.monotonic()
        start, count = self._windows.get(scope, (now, 0))
        if now >= start + self.rate_window:
            start, count = now, 0
        if count >= self.rate_limits[scope]:
            self._windows[scope] = (start, count)
            return False
        self._windows[scope] = (start, count + 1)
        return True

    @staticmethod
    def _error(
        status: int, key: str, message: str, headers: Mapping[str, str], context: Any = None
    ) -> httpx.Response:
        body = {
            "errors": [
                {"errorKey": key, "message": message, "context": {} if context is None else context}
            ]
        }
        return httpx.Response(status, json=body, headers=dict(headers))

    def _fault_rate_limited(self, request: httpx.Request) -> httpx.Response:
        scope = self._route_scope(request)
        headers = self._rate_headers(scope)
        headers.update(
            {
                "X-RateLimit-Scope": scope or "global",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(self.fault_reset_seconds),
            }
        )
        headers.setdefault("X-RateLimit-Limit", str(self.rate_limits.get(scope or "", 0)))
        return self._error(
            429,
            "RATE_LIMIT_EXCEED",
            "The request rate limit exceeded. Please try again later.",
            headers,
        )

    def _fault_server_error(self, request: httpx.Request) -> httpx.Response:
        headers = self._rate_headers(self._route_scope(request))
        return self._error(
            503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable.", headers
        )

    def _route_scope(self, request: httpx.Request) -> str | None:
        segs = self._segments(request)
        if segs is None:
            return None
        return self._match(request.method, segs)[0]

    def _match(
        self, method: str, s: list[str]
    ) -> tuple[str | None, Callable[..., httpx.Response] | None, tuple[Any, ...]]:
        """Route: (scope, handler, args) or (None, None, ()) when nothing matches."""
        n = len(s)
        if n >= 5 and s[0] == "shops" and s[2] == "countries" and s[4] == "orders":
            shop = (s[1], s[3])
            if n == 5 and method == "GET":
                return "ordersRead", self._list_orders, (shop,)
            if n == 6 and method == "GET":
                return "ordersRead", self._get_order, (shop, s[5])
            if n == 7 and s[6] == "status" and method == "GET":
                return "ordersRead", self._get_status, (shop, s[5])
            if n == 7 and s[6] == "reference-key" and method == "PUT":
                return "ordersWrite", self._put_reference_key, (shop, s[5])
        if n == 2 and s[0] == "fulfillment" and method == "POST":
            handler = {
                "shipments": self._post_shipment,
                "cancellations": self._post_cancellation,
                "return-items": self._post_return_items,
            }.get(s[1])
            if handler is not None:
                return "fulfillmentWrite", handler, ()
        if n == 3 and s[0] == "variants" and s[2] == "stocks":
            if method == "POST":
                return "stocksWrite", self._post_stock, (s[1],)
            if method == "GET":
                return "stocksRead", self._get_stocks, (s[1],)
        if n == 1 and s[0] == "warehouses" and method == "GET":
            return "globalRead", self._list_warehouses, ()
        if n == 1 and s[0] == "carriers" and method == "GET":
            return "globalRead", self._list_carriers, ()
        if n == 2 and s[0] == "webhooks" and s[1] == "events" and method == "GET":
            return "globalRead", self._list_webhook_events, ()
        if n >= 2 and s[0] == "webhooks" and s[1] == "subscriptions":
            if n == 2 and method == "GET":
                return "globalRead", self._list_subscriptions, ()
            if n == 2 and method == "POST":
                return "globalWrite", self._post_subscription, ()
            if n == 3 and method == "GET":
                return "globalRead", self._get_subscription, (s[2],)
            if n == 3 and method == "DELETE":
                return "globalWrite", self._delete_subscription, (s[2],)
        return None, None, ()

    def _handle(self, request: httpx.Request) -> httpx.Response:
        segs = self._segments(request)
        scope, handler, args = (
            (None, None, ()) if segs is None else self._match(request.method, segs)
        )
        headers = self._rate_headers(scope)
        if request.headers.get("x-access-token") != self.token:
            return self._error(401, "UNAUTHORIZED", "Missing or invalid access token.", headers)
        if handler is None:
            return self._error(404, "NOT_FOUND", "No such resource.", headers)
        if not self._take_rate(scope):
            return self._error(
                429,
                "RATE_LIMIT_EXCEED",
                "The request rate limit exceeded. Please try again later.",
                self._rate_headers(scope),
            )
        headers = self._rate_headers(scope)
        try:
            response: httpx.Response = handler(request, *args)
        except _ApiError as exc:
            return self._error(exc.status, exc.key, exc.message, headers, exc.context)
        response.headers.update(headers)
        return response

    # ---------------------------------------------------------------------------------------------
    # Helpers for handlers

    @staticmethod
    def _json_body(request: httpx.Request) -> Any:
        if not request.content:
            raise _ApiError(400, "INVALID_BODY", "a JSON body is required")
        try:
            return json.loads(request.content)
        except ValueError as exc:
            raise _ApiError(400, "INVALID_BODY", "the body is not valid JSON") from exc

    def _check_shop(self, shop: tuple[str, str]) -> None:
        if (shop[0].lower(), shop[1].lower()) not in self.shop_countries:
            raise _ApiError(
                404, "SHOP_COUNTRY_NOT_FOUND", f"shop country {shop[0]}/{shop[1]} not found"
            )

    def _find_order(self, identifier: str) -> dict[str, Any]:
        if identifier.startswith("key="):
            ref = identifier[4:]
            for order in self.orders.values():
                if order.get("referenceKey") == ref:
                    return order
        elif identifier.isdigit() and int(identifier) in self.orders:
            return self.orders[int(identifier)]
        raise _ApiError(404, "ORDER_NOT_FOUND", f"order {identifier} not found")

    def _variant_id(self, identifier: str) -> int:
        if identifier.startswith("key="):
            vid = self._variants.get(identifier[4:])
        elif identifier.isdigit() and int(identifier) in self._variant_keys:
            vid = self._variants[self._variant_keys[int(identifier)]]
        else:
            vid = None
        if vid is None:
            raise _ApiError(404, "VARIANT_NOT_FOUND", f"variant {identifier} not found")
        return vid

    def _check_company(self, request: httpx.Request) -> None:
        raw = request.headers.get("x-company-id")
        company = int(raw) if raw is not None and raw.strip().isdigit() else None
        if raw is not None and company is None:
            raise _ApiError(400, "INVALID_COMPANY_ID", "X-Company-Id must be an integer")
        if self.company_ids is not None:
            if company is None:
                raise _ApiError(
                    400, "COMPANY_ID_REQUIRED", "X-Company-Id is required on this tenant"
                )
            if company not in self.company_ids:
                raise _ApiError(404, "COMPANY_NOT_FOUND", f"company {company} not found")
        self.company_headers.append(company)

    def _order_for_body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        for field in ("shopKey", "countryCode"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise _ApiError(400, "INVALID_PARAMETER", f"{field} is required")
        self._check_shop((body["shopKey"], body["countryCode"]))
        order_id = body.get("orderId")
        if not _is_int(order_id):
            raise _ApiError(400, "INVALID_PARAMETER", "orderId must be an integer")
        if order_id not in self.orders:
            raise _ApiError(404, "ORDER_NOT_FOUND", f"order {order_id} not found")
        return self.orders[order_id]

    @staticmethod
    def _items_by_id(order: Mapping[str, Any], entries: Any) -> list[dict[str, Any]]:
        if not isinstance(entries, list) or not entries:
            raise _ApiError(400, "INVALID_PARAMETER", "items must be a non-empty array")
        by_id = {item["id"]: item for item in order["items"]}
        found = []
        for entry in entries:
            item_id = entry.get("orderItemId") if isinstance(entry, dict) else None
            if not _is_int(item_id):
                raise _ApiError(400, "INVALID_PARAMETER", "items[].orderItemId must be an integer")
            if item_id not in by_id:
                raise _ApiError(
                    400,
                    "ORDER_ITEM_NOT_FOUND",
                    f"order item {item_id} is not part of order {order['id']}",
                )
            found.append(by_id[item_id])
        return found

    def _collection(self, request: httpx.Request, entities: list[Any]) -> httpx.Response:
        params = request.url.params
        try:
            limit = int(params.get("limit", "100"))
        except ValueError as exc:
            raise _ApiError(400, "INVALID_PARAMETER", "limit must be an integer") from exc
        if not 1 <= limit <= 1000:
            raise _ApiError(400, "INVALID_PARAMETER", "limit must be between 1 and 1000")
        cursor = params.get("cursor")
        start = _decode_cursor(cursor) if cursor else 0
        page = entities[start : start + limit]
        nxt = _encode_cursor(start + limit) if start + limit < len(entities) else None
        return httpx.Response(200, json={"entities": copy.deepcopy(page), "cursor": {"next": nxt}})

    # ---------------------------------------------------------------------------------------------
    # Orders

    def _order_in_shop(self, order: Mapping[str, Any], shop: tuple[str, str]) -> bool:
        sc = order.get("shopCountry")
        if not isinstance(sc, dict) or not sc.get("shopKey") or not sc.get("countryCode"):
            return True
        return (str(sc["shopKey"]).lower(), str(sc["countryCode"]).lower()) == (
            shop[0].lower(),
            shop[1].lower(),
        )

    def _list_orders(self, request: httpx.Request, shop: tuple[str, str]) -> httpx.Response:
        self._check_shop(shop)
        entities = [o for _, o in sorted(self.orders.items()) if self._order_in_shop(o, shop)]
        return self._collection(request, entities)

    def _get_order(
        self, request: httpx.Request, shop: tuple[str, str], ident: str
    ) -> httpx.Response:
        self._check_shop(shop)  # the order itself is not filtered by shop country
        return httpx.Response(200, json=self._find_order(ident))

    def _get_status(
        self, request: httpx.Request, shop: tuple[str, str], ident: str
    ) -> httpx.Response:
        self._check_shop(shop)
        order = self._find_order(ident)
        return httpx.Response(
            200, json={"status": order.get("status"), "detailedStatus": order.get("detailedStatus")}
        )

    def _put_reference_key(
        self, request: httpx.Request, shop: tuple[str, str], ident: str
    ) -> httpx.Response:
        self._check_shop(shop)
        if not ident.isdigit():
            raise _ApiError(400, "INVALID_PARAMETER", "orderId must be the numeric order id")
        order = self._find_order(ident)
        body = self._json_body(request)
        ref = body.get("referenceKey") if isinstance(body, dict) else None
        if not isinstance(ref, str) or not ref:
            raise _ApiError(400, "INVALID_PARAMETER", "referenceKey must be a non-empty string")
        order["referenceKey"] = ref
        order["updatedAt"] = _iso(self.clock.utcnow())
        return httpx.Response(200, json=order)

    # ---------------------------------------------------------------------------------------------
    # Fulfilment

    def _post_shipment(self, request: httpx.Request) -> httpx.Response:
        self._check_company(request)
        body = self._json_body(request)
        if not isinstance(body, dict):
            raise _ApiError(400, "INVALID_BODY", "the body must be an object")
        order = self._order_for_body(body)
        for field in ("carrier", "shipmentKey"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise _ApiError(400, "INVALID_PARAMETER", f"{field} is required")
        items = self._items_by_id(order, body.get("items"))
        for item in items:
            if item.get("status") == "cancelled":
                raise _ApiError(
                    400,
                    "ORDER_ITEM_CANCELLED",
                    f"order item {item['id']} is cancelled and cannot ship",
                )
        now = _iso(self.clock.utcnow())
        delivery = body.get("deliveryDate")
        if delivery is not None:
            _parse_time(delivery, "deliveryDate")
        packages = order.setdefault("packages", [])
        package = next((p for p in packages if p.get("shipmentKey") == body["shipmentKey"]), None)
        if package is None:
            self._next_package_id += 1
            package = {
                "id": self._next_package_id,
                "shipmentKey": body["shipmentKey"],
                "carrierKey": body["carrier"],
                "deliveryStatus": "shipment_completed",
                "deliveryDate": {"minimum": None, "maximum": None},
                "shippedAt": delivery or now,
                "tracking": {"id": body["shipmentKey"], "url": None},
                "returnIdentCode": body.get("returnIdentCode"),
            }
            packages.append(package)
        entries = {e["orderItemId"]: e for e in body["items"]}
        for item in items:
            if item.get("shippedAt"):
                continue  # a duplicate report: accepted, nothing changes
            # The status stays as it was: SCAYLE's fixtures show shipped units as "available"
            # (and as "delivered"), so only shippedAt and the package say a unit shipped.
            item["shippedAt"] = now
            item["packageId"] = package["id"]
            return_key = entries[item["id"]].get("returnKey") or str(item["id"])
            self._return_keys[str(return_key)] = (order["id"], item["id"])
        self._after_item_change(order, now)
        self.shipments.append(body)
        self._emit("order-package-shipped", {"order": order, "package": package})
        return httpx.Response(201)

    def _post_cancellation(self, request: httpx.Request) -> httpx.Response:
        self._check_company(request)
        body = self._json_body(request)
        if not isinstance(body, dict):
            raise _ApiError(400, "INVALID_BODY", "the body must be an object")
        order = self._order_for_body(body)
        items = self._items_by_id(order, body.get("items"))
        now = _iso(self.clock.utcnow())
        for item in items:
            if item.get("status") != "cancelled":
                item["status"] = "cancelled"
                item["cancelledAt"] = now
        self._after_item_change(order, now)
        self.cancellations.append(body)
        self._emit(
            "order-cancelled" if self._all_cancelled(order) else "order-item-cancelled", order
        )
        return httpx.Response(201)

    def _post_return_items(self, request: httpx.Request) -> httpx.Response:
        self._check_company(request)
        body = self._json_body(request)
        if not isinstance(body, list) or not body:
            raise _ApiError(
                400, "INVALID_BODY", "the body must be a non-empty array of return items"
            )
        targets = []
        for entry in body:
            key = entry.get("returnKey") if isinstance(entry, dict) else None
            if not isinstance(key, str) or not key:
                raise _ApiError(400, "INVALID_PARAMETER", "returnKey is required")
            if key not in self._return_keys:
                raise _ApiError(
                    404, "RETURN_KEY_NOT_FOUND", f"no shipped unit has returnKey {key!r}"
                )
            if entry.get("received") is not None and not isinstance(entry["received"], str):
                raise _ApiError(400, "INVALID_PARAMETER", "received must be a date-time string")
            targets.append(self._return_keys[key])
        now = _iso(self.clock.utcnow())
        touched: dict[int, dict[str, Any]] = {}
        for order_id, item_id in targets:
            order = self.orders[order_id]
            for item in order["items"]:
                if item["id"] == item_id:
                    item["status"] = "returned"
                    item["returnedAt"] = now
            touched[order_id] = order
        for order in touched.values():
            self._after_item_change(order, now)
            self._emit("order-item-returned", order)
        self.returns.extend(body)
        return httpx.Response(201)

    # ---------------------------------------------------------------------------------------------
    # Stock and warehouses

    def _post_stock(self, request: httpx.Request, ident: str) -> httpx.Response:
        vid = self._variant_id(ident)
        body = self._json_body(request)
        if not isinstance(body, dict):
            raise _ApiError(400, "INVALID_BODY", "the body must be an object")
        quantity = body.get("quantity")
        if not _is_int(quantity):
            raise _ApiError(400, "INVALID_PARAMETER", "quantity must be an integer")
        wh = body.get("warehouseReferenceKey")
        if not isinstance(wh, str) or not wh:
            raise _ApiError(400, "INVALID_PARAMETER", "warehouseReferenceKey is required")
        if wh not in self._warehouses:
            raise _ApiError(404, self.unknown_warehouse_error_key, f"warehouse {wh} not found")
        changed = _parse_time(body.get("changedAt"), "changedAt")
        sws = body.get("sellableWithoutStock")
        if sws is not None and not isinstance(sws, bool):
            raise _ApiError(400, "INVALID_PARAMETER", "sellableWithoutStock must be a boolean")
        merchant = body.get("merchantReferenceKey")
        key = (vid, wh, merchant if isinstance(merchant, str) else None)
        stored = self._stocks.get(key)
        if sws is None:  # left out: the flag stays as the merchant set it (new records: false)
            sws = bool(stored["sellableWithoutStock"]) if stored is not None else False
        applied = stored is None or changed >= _parse_time(stored["changedAt"], "changedAt")
        if applied:
            stored = {
                "quantity": quantity,
                "warehouseReferenceKey": wh,
                "changedAt": body["changedAt"],
                "sellableWithoutStock": sws,
                "merchantReferenceKey": key[2],
                "expectedAvailabilityAt": body.get("expectedAvailabilityAt"),
            }
            self._stocks[key] = stored
        assert stored is not None
        self.stock_updates.append(
            {"sku": self._variant_keys[vid], "body": body, "applied": applied}
        )
        if applied and self._subscribed("product-variant-stock-updated"):
            self._emit(
                "product-variant-stock-updated",
                {
                    "productVariant": {"id": vid, "referenceKey": self._variant_keys[vid]},
                    "warehouse": {"id": self._warehouses[wh], "referenceKey": wh},
                    "quantity": quantity,
                    "sellableWithoutStock": sws,
                    "createdAt": _iso(self.clock.utcnow()),
                    "merchantReferenceKey": key[2],
                    "expectedAvailabilityAt": stored["expectedAvailabilityAt"],
                },
            )
        return httpx.Response(200, json=stored)

    def _get_stocks(self, request: httpx.Request, ident: str) -> httpx.Response:
        vid = self._variant_id(ident)
        entities = [
            dict(r)
            for (v, _w, _m), r in sorted(self._stocks.items(), key=lambda kv: str(kv[0]))
            if v == vid
        ]
        return httpx.Response(200, json={"entities": entities})

    def _list_warehouses(self, request: httpx.Request) -> httpx.Response:
        entities = [
            {
                "id": wid,
                "referenceKey": ref,
                "isZeosWarehouse": False,
                "merchants": [
                    {
                        "id": 1,
                        "referenceKey": self.tenant_key,
                        "name": self.tenant_key.upper(),
                        "priority": 1,
                    }
                ],
                "shopCountries": [
                    {
                        "shopKey": s,
                        "countryCode": c.upper(),
                        "priority": 100,
                        "packageGroup": {"id": 1},
                    }
                    for s, c in sorted(self.shop_countries)
                ],
            }
            for ref, wid in sorted(self._warehouses.items(), key=lambda kv: kv[1])
        ]
        return self._collection(request, entities)

    def _list_carriers(self, request: httpx.Request) -> httpx.Response:
        entities = sorted(self._carriers.values(), key=lambda c: int(c["id"]))
        return self._collection(request, entities)

    # ---------------------------------------------------------------------------------------------
    # Webhook subscriptions

    def _list_webhook_events(self, request: httpx.Request) -> httpx.Response:
        entities = [
            {
                "event": name,
                "version": 1,
                "description": f"Sandbox event {name}.",
                "isDeprecated": False,
                "isBlocking": False,
                "supportedFilters": {"merchants": False},
            }
            for name in WEBHOOK_EVENTS
        ]
        return httpx.Response(200, json={"entities": entities})

    @staticmethod
    def _mask_url(url: str) -> str:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        rest = url.split(parts.netloc, 1)[1]
        return f"{parts.scheme}://***:***@{host}{rest}"

    def _public_subscription(self, sub: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(sub)
        out["url"] = self._mask_url(str(sub["url"]))
        return out

    def _post_subscription(self, request: httpx.Request) -> httpx.Response:
        body = self._json_body(request)
        if not isinstance(body, dict):
            raise _ApiError(400, "INVALID_BODY", "the body must be an object")
        if not isinstance(body.get("event"), str) or not isinstance(body.get("url"), str):
            raise _ApiError(400, "INVALID_PARAMETER", "event and url are required")
        if not _is_int(body.get("version")):
            raise _ApiError(400, "INVALID_PARAMETER", "version must be an integer")
        sub = {"id": self._next_subscription_id, **body}
        self._next_subscription_id += 1
        self.subscriptions[sub["id"]] = sub
        return httpx.Response(201, json=self._public_subscription(sub))

    def _list_subscriptions(self, request: httpx.Request) -> httpx.Response:
        subs = [self._public_subscription(s) for _, s in sorted(self.subscriptions.items())]
        return self._collection(request, subs)

    def _subscription(self, ident: str) -> dict[str, Any]:
        if not ident.isdigit() or int(ident) not in self.subscriptions:
            raise _ApiError(404, "SUBSCRIPTION_NOT_FOUND", f"subscription {ident} not found")
        return self.subscriptions[int(ident)]

    def _get_subscription(self, request: httpx.Request, ident: str) -> httpx.Response:
        return httpx.Response(200, json=self._public_subscription(self._subscription(ident)))

    def _delete_subscription(self, request: httpx.Request, ident: str) -> httpx.Response:
        sub = self._subscription(ident)
        del self.subscriptions[sub["id"]]
        return httpx.Response(204)
