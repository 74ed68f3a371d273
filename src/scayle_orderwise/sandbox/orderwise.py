"""An in-process fake of an OrderWise installation's OWAPI, faithful to ``reference/orderwise-api.md``.

What it serves (paths relative to :attr:`OrderwiseSandbox.api_root`, matched case-insensitively as IIS
does; anything else answers 404):

- ``GET token/gettoken`` with Basic credentials: the token as a quoted JSON string; 401 with an empty
  body for wrong credentials. Every other call needs ``Authorization: Bearer <token>`` or gets a 401
  with an empty body; tokens expire after :attr:`~OrderwiseSandbox.token_ttl` and can be revoked.
- ``POST sales/order?session_id=N``: validates the session, the customer, ``systemOrderType`` and every
  ``variantCode`` (400 naming the unknown code); answers 201 ``{orderId, orderNumber,
  eCommerceOrderNumber}``. A repeated ``eCommerceOrderNumber`` is accepted by default
  (:attr:`~OrderwiseSandbox.duplicate_policy`), so a connector's own idempotency is what tests see.
  With :attr:`~OrderwiseSandbox.queue_orders` an accepted order stays invisible until
  :meth:`~OrderwiseSandbox.process_session` runs, as a scheduled e-commerce session would behave.
- ``GET sales/order/{id}/status?include_lines=true&include_delivery=true``.
- ``POST sales/order/{id}/cancel`` (not a public OrderWise endpoint: the path is this library's
  proposal; switch it off with ``cancel_enabled = False``); 409 once picking started or anything shipped.

New orders start as ``Awaiting picking``; a despatch makes them ``Partially despatched`` or
``Despatched``; a cancellation ``Cancelled``. Tests set any other text with ``set_status``.
- ``POST system/export-definition/{id}`` with ``[{"name": "@since", "value": ...}]``: the definitions of
  :class:`~scayle_orderwise.orderwise.exports.ExportDefinitions`, plus any registered with
  :meth:`~OrderwiseSandbox.register_export`.
- ``GET stock/variants?limit=&last_id=`` and ``GET stock/{variantId}``.

VAT is booked as OrderWise books it: per order line, from the line's tax rate (``taxRateId``, else
``taxCode``, else the installation's default rate) on the line gross ``itemGross × quantity``
rounded to minor units, and for the header delivery charge from ``deliveryTaxRateId`` /
``deliveryTaxCode`` (else the default rate, as a delivery method's own code would apply). The
order-details export reports those figures, never the ones the client sent.

Non-stock service items (:meth:`~OrderwiseSandbox.add_service_item`; ``CARRIAGE``, the item the
mapper books delivery to by default, exists from the start) are variants that orders may use but
that hold no stock: they are listed by ``stock/variants`` but never allocated nor exported as stock,
and they are despatched or cancelled together with the last goods of their order.

Errors carry an ASP.NET Web API style body ``{"Message": "..."}`` (the real error shape is not public,
§1.4). Timestamps are UK local wall-clock time without a zone, as OrderWise writes them (§1.7).
"""

from __future__ import annotations

import base64
import json
import random
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import httpx

from ..money import exponent, round_half_up, split_gross, split_net
from ..orderwise.exports import ExportDefinitions
from ..orderwise.statuses import DEFAULT_STATUS_MAP, CanonicalStatus, is_cancellable
from .clock import SandboxClock as SharedClock
from .faults import FaultInjector, Faults
from .transport import FakeTransport, RequestLog

if TYPE_CHECKING:
    from ..orderwise.client import AsyncOrderwiseClient, OrderwiseClient

__all__ = [
    "ExportFunction",
    "OrderwiseClock",
    "OrderwiseSandbox",
]

UK = ZoneInfo("Europe/London")

ExportFunction = Callable[[Mapping[str, Any]], list[dict[str, Any]]]
"""An export definition of the fake: receives the ``@``-parameters (names without ``@``), returns rows."""

DuplicatePolicy = Literal["allow", "reject", "return_existing"]

# Status texts of the fake installation. Real installations word them their own way (§3.2).
AWAITING_PICKING = "Awaiting picking"
PICKING = "Picking"
PARTIALLY_DESPATCHED = "Partially despatched"
DESPATCHED = "Despatched"
CANCELLED = "Cancelled"

_DEFAULT_COURIERS: dict[str, tuple[str, str]] = {
    "Royal Mail": ("https://www.royalmail.com/track-your-item#/tracking-results/", ""),
    "DPD": ("https://track.dpd.co.uk/parcels/", ""),
    "DHL": ("https://www.dhl.com/gb-en/home/tracking.html?tracking-id=", ""),
    "Evri": ("https://www.evri.com/track/parcel/", "/details"),
}

_DEFAULT_TAX_RATES: dict[int, tuple[str, Decimal]] = {
    1: ("T0", Decimal("0")),
    2: ("T1", Decimal("0.20")),
    3: ("T2", Decimal("0")),
    4: ("T5", Decimal("0.05")),
    5: ("T9", Decimal("0")),
}

_DEFAULT_CURRENCIES: dict[int, str] = {1: "GBP", 2: "EUR", 3: "USD"}

DEFAULT_SERVICE_ITEMS = ("CARRIAGE",)
"""Service items every fake installation has: the carriage item ``MappingConfig`` books delivery to."""

_FIRST_SERVICE_ID = 900_001  # service items get ids apart from stock variants


class OrderwiseClock:
    """The fake's clock, in UK local wall-clock time without a zone (as OrderWise stores times).

    It follows ``source`` (a callable returning an aware datetime; default the real UTC clock, or
    the ``utcnow`` of the sandbox's shared clock) until :meth:`set` or :meth:`advance` is called,
    then stands still except when advanced. Readings never go backwards, unless :meth:`set` moves
    the clock back.
    """

    def __init__(
        self, start: datetime | None = None, *, source: Callable[[], datetime] | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._source = source or (lambda: datetime.now(UTC))
        self._fixed: datetime | None = _to_uk_naive(start) if start is not None else None
        self._last = datetime.min

    def _live(self) -> datetime:
        return _to_uk_naive(self._source())

    def now(self) -> datetime:
        """The current time of the fake (naive, Europe/London)."""
        with self._lock:
            current = self._fixed if self._fixed is not None else self._live()
            self._last = max(self._last, current)
            return self._last

    def set(self, when: datetime) -> None:
        """Freeze the clock at ``when`` (aware times are converted to UK local time)."""
        with self._lock:
            self._fixed = self._last = _to_uk_naive(when)

    def advance(self, delta: timedelta | None = None, /, **kwargs: float) -> datetime:
        """Move the clock forward (``advance(timedelta(minutes=5))`` or ``advance(minutes=5)``)."""
        step = (delta or timedelta()) + timedelta(**kwargs)
        if step < timedelta():
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            base = self._fixed if self._fixed is not None else self._live()
            self._fixed = max(base, self._last) + step
            return self._fixed


@dataclass
class _Variant:
    variant_id: int
    code: str
    free: dict[int, Decimal] = field(default_factory=dict)
    last_calculated: datetime | None = None
    service: bool = False


@dataclass
class _Line:
    item_number: int
    variant_code: str
    quantity: Decimal
    item_gross: Decimal | None
    item_net: Decimal | None
    tax_code: str
    tax_rate: Decimal
    stock_location_id: int
    despatched: Decimal = Decimal(0)
    cancelled: Decimal = Decimal(0)
    service: bool = False

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.despatched - self.cancelled


@dataclass
class _Delivery:
    number: int
    consignment: str
    courier: str
    at: datetime
    tracking_url: str | None
    lines: dict[int, Decimal]  # item number -> quantity


@dataclass
class _Order:
    order_id: int
    order_number: str
    session_id: int
    reference: str | None
    customer_id: int
    order_date: datetime
    currency: str
    delivery_gross: Decimal
    delivery_tax: tuple[str, Decimal]
    lines: list[_Line]
    status: str = AWAITING_PICKING
    last_amended: datetime = datetime.min
    deliveries: list[_Delivery] = field(default_factory=list)
    visible: bool = True


class _HttpError(Exception):
    def __init__(self, status: int, message: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class OrderwiseSandbox:
    """A fake OrderWise installation; use :attr:`transport` with the sync and the async clients.

    Built by ``Sandbox`` as ``OrderwiseSandbox(injector, seed=seed)``; the settings a client needs are
    readable: :attr:`api_root`, :attr:`username`, :attr:`password`, :attr:`session_id`,
    :attr:`export_definitions`. Thread-safe: every request and every test helper runs under one lock.
    Deterministic for a seed (tokens, consignment numbers); timestamps come from :attr:`clock`.

    Behaviour switches (plain attributes, change them at any time):

    - ``duplicate_policy``: ``"allow"`` (default; a repeated ``eCommerceOrderNumber`` creates a second
      order, as OrderWise is not known to de-duplicate), ``"reject"`` (400) or ``"return_existing"``.
    - ``queue_orders``: accepted orders stay invisible to lookups until :meth:`process_session`.
    - ``session_interval``: with ``queue_orders``, the session also runs by itself this often on the
      fake's clock (a ``timedelta``), as OrderWise's scheduler does; ``None`` (default): only when
      :meth:`process_session` is called.
    - ``cancel_enabled``: serve the cancel endpoint at ``cancel_path`` (default ``True``,
      ``"sales/order/{order_id}/cancel"``). It answers 409 once the order has a delivery or its
      status is not cancellable under ``status_map`` (picking started, despatched, unknown text).
    - ``exports_permitted``: ``False`` answers 403 to export definitions (missing module permission).
    - ``allocate_stock``: accepted orders reduce free stock, cancellations give it back (default ``True``).
    - ``token_ttl``: token lifetime (default 1 hour); :meth:`revoke_tokens` invalidates every token.
    - ``variants_honour_last_id``: ``GET stock/variants`` pages by ``last_id`` (default ``True``);
      ``False`` answers the first page whatever ``last_id`` says, as an installation that does not
      know the parameter would.
    """

    def __init__(
        self,
        injector: FaultInjector | None = None,
        *,
        seed: int = 0,
        api_root: str = "https://sandbox.orderwisecloud.invalid/OWAPI",
        username: str = "scayle-api",
        password: str = "sandbox-password",
        session_id: int = 7,
        export_definitions: ExportDefinitions | None = None,
        clock: OrderwiseClock | SharedClock | None = None,
        lock: threading.RLock | None = None,
    ) -> None:
        self.api_root = api_root.rstrip("/")
        self.username = username
        self.password = password
        self.session_id = session_id
        self.export_definitions = export_definitions or ExportDefinitions()
        if clock is None or isinstance(clock, OrderwiseClock):
            self.clock = clock or OrderwiseClock()
        else:
            self.clock = OrderwiseClock(source=clock.utcnow)
        self.injector = injector or FaultInjector(Faults(), seed=seed)

        self.duplicate_policy: DuplicatePolicy = "allow"
        self.queue_orders = False
        self.session_interval: timedelta | None = None
        self._last_session: datetime | None = None
        self.cancel_enabled = True
        self.cancel_path = "sales/order/{order_id}/cancel"
        self.exports_permitted = True
        self.allocate_stock = True
        self.token_ttl = timedelta(hours=1)
        self.variants_honour_last_id = True
        self.status_map: Mapping[str, CanonicalStatus | str] = DEFAULT_STATUS_MAP
        self.default_stock_location_id = 1
        self.couriers: dict[str, tuple[str, str]] = dict(_DEFAULT_COURIERS)
        self.tax_rates: dict[int, tuple[str, Decimal]] = dict(_DEFAULT_TAX_RATES)
        self.default_tax_rate_id = 2
        self.currencies: dict[int, str] = dict(_DEFAULT_CURRENCIES)

        self.requests: RequestLog = []
        """Every request as ``(method, path, status_code)``; ``path`` includes the API root's path."""
        self.sales_orders: list[dict[str, Any]] = []
        """Every ``POST sales/order`` body the fake accepted, duplicates included, in order."""

        self._lock = lock or threading.RLock()
        self._random = random.Random(seed)
        self._tokens: dict[str, datetime] = {}
        self._sessions: set[int] = {session_id}
        self._customers: dict[int, str] = {1: "WEB001"}
        self._variants: dict[str, _Variant] = {}
        self._orders: dict[int, _Order] = {}
        # By e-commerce order number, compared as SQL Server's default collation does (ignoring
        # case and trailing spaces).
        self._ids_by_reference: dict[str, list[int]] = {}
        self._next_variant_id = 1001
        self._next_service_id = _FIRST_SERVICE_ID
        self._next_order_id = 5001
        self._next_order_number: dict[int, int] = {}
        self._next_delivery = 9001
        self._exports: dict[int, tuple[tuple[str, ...], ExportFunction]] = {}
        self._register_builtin_exports()
        for code in DEFAULT_SERVICE_ITEMS:
            self.add_service_item(code)

        self.transport = FakeTransport(
            self._handle,
            self.injector,
            lock=self._lock,
            log=self.requests,
            rate_limited=self._rate_limited,
            server_error=self._server_error,
            changes_state=_changes_state,
        )

    def __repr__(self) -> str:
        return f"OrderwiseSandbox(api_root={self.api_root!r}, session_id={self.session_id})"

    # ------------------------------------------------------------------ clients

    def client_settings(self) -> dict[str, Any]:
        """Keyword arguments for ``OrderwiseClient``/``AsyncOrderwiseClient`` talking to this fake
        (``api_root``, ``username``, ``password``, ``session_id``, ``export_definitions``,
        ``cancel_endpoint``, ``transport``)."""
        return {
            "api_root": self.api_root,
            "username": self.username,
            "password": self.password,
            "session_id": self.session_id,
            "export_definitions": self.export_definitions,
            "cancel_endpoint": self.cancel_path if self.cancel_enabled else None,
            "transport": self.transport,
        }

    def client(self, **overrides: Any) -> OrderwiseClient:
        """A ready :class:`~scayle_orderwise.orderwise.client.OrderwiseClient` for this fake."""
        from ..orderwise.client import OrderwiseClient

        return OrderwiseClient(**{**self.client_settings(), **overrides})

    def async_client(self, **overrides: Any) -> AsyncOrderwiseClient:
        """A ready :class:`~scayle_orderwise.orderwise.client.AsyncOrderwiseClient` for this fake."""
        from ..orderwise.client import AsyncOrderwiseClient

        return AsyncOrderwiseClient(**{**self.client_settings(), **overrides})

    # ------------------------------------------------------------------ test-facing API

    @property
    def path_prefix(self) -> str:
        """The path part of :attr:`api_root` (``/OWAPI``)."""
        return httpx.URL(self.api_root).path.rstrip("/")

    def add_variant(self, sku: str) -> int:
        """Register a variant code (exact, case-sensitive); returns its variant id. Idempotent."""
        with self._lock:
            return self._variant(sku).variant_id

    def add_service_item(self, code: str) -> int:
        """Register a non-stock service item (carriage, fees); returns its variant id. Idempotent.

        Orders may use it; it never holds, allocates or exports stock. A code already registered
        as a stock variant stays one.
        """
        with self._lock:
            variant = self._variants.get(code)
            if variant is None:
                variant = _Variant(self._next_service_id, code, service=True)
                self._next_service_id += 1
                self._variants[code] = variant
            return variant.variant_id

    def remove_variant(self, code: str) -> None:
        """Forget a variant or service item (e.g. to test an installation without ``CARRIAGE``)."""
        with self._lock:
            self._variants.pop(code, None)

    def set_free_stock(
        self,
        sku: str,
        qty: Decimal | int | str,
        *,
        stock_location_id: int | None = None,
        at: datetime | None = None,
    ) -> None:
        """Set the free stock of ``sku`` (registered if new) at a stock location (default location 1).

        ``qty`` may be negative or fractional, as OrderWise allows. The change time (``at`` or the
        clock) is what the ``stock_changes`` export filters on.
        """
        quantity = _decimal(qty)
        with self._lock:
            variant = self._variant(sku)
            location = stock_location_id or self.default_stock_location_id
            variant.free[location] = quantity
            variant.last_calculated = _to_uk_naive(at) if at is not None else self.clock.now()

    def free_stock(self, sku: str, stock_location_id: int | None = None) -> Decimal | None:
        """Free stock of ``sku`` at one location, or summed over locations; ``None`` if unknown."""
        with self._lock:
            variant = self._variants.get(sku)
            if variant is None:
                return None
            if stock_location_id is not None:
                return variant.free.get(stock_location_id, Decimal(0))
            return sum(variant.free.values(), Decimal(0))

    def add_customer(self, account_number: str, customer_id: int | None = None) -> int:
        """Register a customer account; returns its id. Account ``WEB001`` (id 1) exists already."""
        with self._lock:
            for cid, account in self._customers.items():
                if account == account_number:
                    return cid
            cid = customer_id or max(self._customers, default=0) + 1
            self._customers[cid] = account_number
            return cid

    def add_session(self, session_id: int) -> None:
        """Register another e-commerce session id."""
        with self._lock:
            self._sessions.add(session_id)

    def revoke_tokens(self) -> None:
        """Invalidate every issued token (the next call gets a 401)."""
        with self._lock:
            self._tokens.clear()

    def process_session(self) -> int:
        """Run the e-commerce session: queued orders become real sales orders. Returns how many."""
        with self._lock:
            count = 0
            for order in self._orders.values():
                if not order.visible:
                    order.visible = True
                    self._touch(order)
                    self._allocate(order, sign=-1)
                    count += 1
            return count

    def order_ids(self, reference: str | int) -> list[int]:
        """OrderWise order ids matching an order id or an ``eCommerceOrderNumber`` (queued ones too)."""
        with self._lock:
            return [o.order_id for o in self._match(reference)]

    def status(self, reference: str | int) -> str:
        """The status text of an order (by OrderWise order id or ``eCommerceOrderNumber``)."""
        with self._lock:
            return self._one(reference).status

    def set_status(self, reference: str | int, text: str) -> None:
        """Set the status text of an order (e.g. ``"Picking"``, ``"On hold"``, ``"Completed"``)."""
        with self._lock:
            order = self._one(reference)
            order.status = text
            self._touch(order)

    def order(self, reference: str | int) -> dict[str, Any]:
        """A snapshot of one order as the status endpoint shows it (lines and deliveries included)."""
        with self._lock:
            return self._status_body(self._one(reference), lines=True, deliveries=True)

    def despatch(
        self,
        reference: str | int,
        consignment: str | None = None,
        courier: str = "Royal Mail",
        lines: Mapping[str, Decimal | int]
        | Iterable[str | tuple[str, Decimal | int]]
        | None = None,
        *,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Despatch (part of) an order as one delivery with one consignment; returns the delivery.

        ``reference`` is the OrderWise order id (``int``) or the ``eCommerceOrderNumber`` (``str``).
        ``lines``: ``None`` ships everything still to send; a mapping ``variantCode -> quantity``; or
        an iterable of variant codes (one unit each) or ``(variantCode, quantity)`` pairs. Quantities
        are taken from the order's lines with that code in item-number order. ``consignment`` defaults
        to a generated number; the tracking URL comes from the courier's prefix and suffix
        (:attr:`couriers`), ``None`` for an unknown courier. The status becomes
        ``Partially despatched`` or ``Despatched``.
        """
        with self._lock:
            order = self._one(reference)
            if order.status == CANCELLED:
                raise ValueError(f"order {order.order_id} is cancelled")
            wanted = self._line_quantities(order, lines)
            if not wanted:
                raise ValueError(f"nothing left to despatch on order {order.order_id}")
            goods_left = any(
                ln.remaining > wanted.get(ln.item_number, 0) for ln in order.lines if not ln.service
            )
            if not goods_left:  # service lines (carriage) go with the last goods
                for ln in order.lines:
                    if ln.service and ln.remaining > 0:
                        wanted[ln.item_number] = ln.remaining
            for line in order.lines:
                line.despatched += wanted.get(line.item_number, Decimal(0))
            consignment = consignment or f"CN{self._random.randrange(10**9, 10**10)}"
            prefix, suffix = self.couriers.get(courier, (None, None))
            delivery = _Delivery(
                number=self._next_delivery,
                consignment=consignment,
                courier=courier,
                at=_to_uk_naive(at) if at is not None else self.clock.now(),
                tracking_url=f"{prefix}{consignment}{suffix}" if prefix is not None else None,
                lines=wanted,
            )
            self._next_delivery += 1
            order.deliveries.append(delivery)
            for line in order.lines:
                self._recalculate(line.variant_code, line.stock_location_id)
            order.status = (
                PARTIALLY_DESPATCHED if any(ln.remaining > 0 for ln in order.lines) else DESPATCHED
            )
            self._touch(order)
            return _delivery_body(delivery, order)

    def amend_line(
        self,
        reference: str | int,
        variant_code: str,
        *,
        item_gross: Decimal | int | str | None = None,
        tax_code: str | None = None,
        quantity: Decimal | int | str | None = None,
        item_number: int | None = None,
    ) -> None:
        """Change a line of ``variant_code`` (the first, or the one at ``item_number``) as a user
        editing the order in OrderWise would: its unit price, tax code or quantity. VAT is booked
        anew from the line's tax code."""
        with self._lock:
            order = self._one(reference)
            line = next(
                (
                    ln
                    for ln in order.lines
                    if ln.variant_code == variant_code
                    and (item_number is None or ln.item_number == item_number)
                ),
                None,
            )
            if line is None:
                raise ValueError(f"order {order.order_id} has no line {variant_code!r}")
            if item_gross is not None:
                line.item_gross = _decimal(item_gross)
            if tax_code is not None:
                line.tax_code, line.tax_rate = self._known_tax(tax_code)
            if quantity is not None:
                line.quantity = _decimal(quantity)
            self._touch(order)

    def remove_line(self, reference: str | int, variant_code: str) -> None:
        """Delete the first line of ``variant_code`` from an order (a user editing it in OrderWise)."""
        with self._lock:
            order = self._one(reference)
            line = next((ln for ln in order.lines if ln.variant_code == variant_code), None)
            if line is None:
                raise ValueError(f"order {order.order_id} has no line {variant_code!r}")
            order.lines.remove(line)
            self._touch(order)

    def amend_delivery(
        self,
        reference: str | int,
        *,
        gross: Decimal | int | str | None = None,
        tax_code: str | None = None,
        currency: str | None = None,
    ) -> None:
        """Change the header delivery charge or its tax code (or the order's currency) of an order
        inside OrderWise."""
        with self._lock:
            order = self._one(reference)
            if gross is not None:
                order.delivery_gross = _decimal(gross)
            if tax_code is not None:
                order.delivery_tax = self._known_tax(tax_code)
            if currency is not None:
                order.currency = currency.upper()
            self._touch(order)

    def cancel_order(
        self,
        reference: str | int,
        lines: Mapping[str, Decimal | int]
        | Iterable[str | tuple[str, Decimal | int]]
        | None = None,
    ) -> None:
        """Cancel an order, or some of its quantities, inside OrderWise (a user doing it in the ERP).

        ``lines`` takes the forms of :meth:`despatch`; ``None`` cancels everything still to send. The
        order becomes ``Cancelled`` once nothing was shipped and nothing is left; free stock is given back.
        """
        with self._lock:
            order = self._one(reference)
            wanted = self._line_quantities(order, lines)
            for line in order.lines:
                qty = wanted.get(line.item_number, Decimal(0))
                if qty:
                    line.cancelled += qty
                    if order.visible and self.allocate_stock and not line.service:
                        self._adjust(line.variant_code, line.stock_location_id, qty)
            if all(ln.remaining <= 0 for ln in order.lines if not ln.service):
                shipped = any(ln.despatched for ln in order.lines if not ln.service)
                for ln in order.lines:  # service lines follow the goods
                    if ln.service and ln.remaining > 0:
                        if shipped:
                            ln.despatched += ln.remaining
                        else:
                            ln.cancelled += ln.remaining
            if all(ln.remaining <= 0 for ln in order.lines):
                order.status = (
                    CANCELLED if all(ln.despatched == 0 for ln in order.lines) else DESPATCHED
                )
            self._touch(order)

    def register_export(
        self, export_id: int, function: ExportFunction, params: Iterable[str] = ()
    ) -> None:
        """Add (or replace) an export definition; ``params`` are its parameter names without ``@``."""
        with self._lock:
            self._exports[export_id] = (tuple(p.lstrip("@") for p in params), function)

    def tokens_issued(self) -> int:
        """How many tokens are currently valid (for tests of the token cache)."""
        with self._lock:
            now = self.clock.now()
            return sum(1 for expiry in self._tokens.values() if expiry > now)

    # ------------------------------------------------------------------ HTTP handling

    def _run_scheduled_session(self) -> None:
        if not self.queue_orders or self.session_interval is None:
            return
        now = self.clock.now()
        if self._last_session is None:
            self._last_session = now
        elif now - self._last_session >= self.session_interval:
            self.process_session()
            self._last_session = now

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self._run_scheduled_session()
        try:
            return self._route(request)
        except _HttpError as exc:
            if exc.message is None:
                return httpx.Response(exc.status, content=b"")
            return _json(exc.status, {"Message": exc.message})

    def _route(self, request: httpx.Request) -> httpx.Response:
        path = unquote(request.url.path)
        prefix = self.path_prefix.lower() + "/"
        if not path.lower().startswith(prefix):
            raise _HttpError(404, _no_resource(request))
        parts = [p for p in path[len(prefix) :].split("/") if p]
        low = [p.lower() for p in parts]
        method = request.method

        if low == ["token", "gettoken"] and method == "GET":
            return self._get_token(request)
        self._authenticate(request)

        if low == ["sales", "order"] and method == "POST":
            return self._create_order(request)
        if (
            len(low) == 4
            and low[:2] == ["sales", "order"]
            and low[3] == "status"
            and method == "GET"
        ):
            order = self._visible(parts[2])
            params = request.url.params
            return _json(
                200,
                self._status_body(
                    order,
                    lines=params.get("include_lines", "").lower() == "true",
                    deliveries=params.get("include_delivery", "").lower() == "true",
                ),
            )
        if method == "POST" and self.cancel_enabled:
            order_id = self._match_cancel_path(parts)
            if order_id is not None:
                return self._cancel(order_id)
        if low[:2] == ["system", "export-definition"] and len(low) == 3 and method == "POST":
            return self._run_export(parts[2], request)
        if low == ["stock", "variants"] and method == "GET":
            return self._stock_variants(request)
        if len(low) == 2 and low[0] == "stock" and method == "GET":
            return self._variant_stock(parts[1])
        raise _HttpError(404, _no_resource(request))

    def _get_token(self, request: httpx.Request) -> httpx.Response:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user, password = "", ""
        if scheme.lower() != "basic" or (user, password) != (self.username, self.password):
            return httpx.Response(401, content=b"")
        token = f"{self._random.getrandbits(160):040x}"
        self._tokens[token] = self.clock.now() + self.token_ttl
        return _json(200, token)

    def _authenticate(self, request: httpx.Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expiry = self._tokens.get(token) if scheme.lower() == "bearer" else None
        if expiry is None or expiry <= self.clock.now():
            raise _HttpError(401, None)

    def _create_order(self, request: httpx.Request) -> httpx.Response:
        raw_session = request.url.params.get("session_id")
        if raw_session is None or not raw_session.strip().isdigit():
            raise _HttpError(400, "The session_id parameter is required.")
        session_id = int(raw_session)
        if session_id not in self._sessions:
            raise _HttpError(400, f"E-Commerce session {session_id} does not exist.")
        body = _body(request)
        if not isinstance(body, dict):
            raise _HttpError(400, "The request is invalid.")
        order = self._validate_order(body, session_id)
        if order.reference is not None and self.duplicate_policy != "allow":
            existing = [
                self._orders[i] for i in self._ids_by_reference.get(_ref_key(order.reference), [])
            ]
            if existing and self.duplicate_policy == "reject":
                raise _HttpError(
                    400, f"An order with eCommerce order number '{order.reference}' already exists."
                )
            if existing:
                return _json(201, _created(existing[0]))
        counter = self._next_order_number.get(session_id, 1)
        self._next_order_number[session_id] = counter + 1
        order.order_id = self._next_order_id
        self._next_order_id += 1
        order.order_number = f"SO{session_id:02d}{counter:05d}"
        order.visible = not self.queue_orders
        self._orders[order.order_id] = order
        if order.reference is not None:
            self._ids_by_reference.setdefault(_ref_key(order.reference), []).append(order.order_id)
        self.sales_orders.append(body)
        self._touch(order)
        if order.visible:
            self._allocate(order, sign=-1)
        return _json(201, _created(order))

    def _validate_order(self, body: dict[str, Any], session_id: int) -> _Order:
        customer = body.get("customer")
        if not isinstance(customer, dict):
            raise _HttpError(400, "The customer is required.")
        customer_id = self._customer_id(customer)
        header = body.get("orderHeader")
        if not isinstance(header, dict):
            raise _HttpError(400, "The orderHeader is required.")
        order_type = header.get("systemOrderType", 1)
        if order_type not in range(1, 7):
            raise _HttpError(400, f"systemOrderType {order_type!r} is not valid.")
        raw_lines = body.get("orderLines")
        if not isinstance(raw_lines, list) or not raw_lines:
            raise _HttpError(400, "At least one order line is required.")
        lines: list[_Line] = []
        for index, raw in enumerate(raw_lines, start=1):
            if not isinstance(raw, dict):
                raise _HttpError(400, "The request is invalid.")
            code = raw.get("variantCode")
            if not isinstance(code, str) or code not in self._variants:
                raise _HttpError(400, f"Variant code '{code}' does not exist.")
            tax_code, tax_rate = self._tax(raw.get("taxRateId"), raw.get("taxCode"))
            lines.append(
                _Line(
                    service=self._variants[code].service,
                    item_number=_int(raw.get("itemNumber"), index),
                    variant_code=code,
                    quantity=_required_decimal(raw, "quantity"),
                    item_gross=_field_decimal(raw, "itemGross"),
                    item_net=_field_decimal(raw, "itemNet"),
                    tax_code=tax_code,
                    tax_rate=tax_rate,
                    stock_location_id=_int(
                        raw.get("stockLocationId"), self.default_stock_location_id
                    ),
                )
            )
        reference = header.get("eCommerceOrderNumber")
        order_date = header.get("orderDate")
        return _Order(
            order_id=0,
            order_number="",
            session_id=session_id,
            reference=str(reference) if reference is not None else None,
            customer_id=customer_id,
            order_date=_parse_time(order_date) if order_date else self.clock.now(),
            currency=self._currency(header),
            delivery_gross=_field_decimal(header, "deliveryGross") or Decimal(0),
            delivery_tax=self._tax(header.get("deliveryTaxRateId"), header.get("deliveryTaxCode")),
            lines=lines,
        )

    def _customer_id(self, customer: dict[str, Any]) -> int:
        cid = customer.get("id")
        account = customer.get("accountNumber")
        if cid is not None and cid in self._customers:
            return int(cid)
        for known_id, known_account in self._customers.items():
            if account is not None and known_account == account:
                return known_id
        raise _HttpError(400, f"Customer '{account if account is not None else cid}' not found.")

    def _tax(self, rate_id: Any, code: Any) -> tuple[str, Decimal]:
        if rate_id is not None:
            if rate_id not in self.tax_rates:
                raise _HttpError(400, f"Tax rate id {rate_id!r} does not exist.")
            return self.tax_rates[rate_id]
        if code is not None:
            for known in self.tax_rates.values():
                if known[0] == code:
                    return known
            raise _HttpError(400, f"Tax code '{code}' does not exist.")
        return self.tax_rates[self.default_tax_rate_id]

    def _known_tax(self, code: str) -> tuple[str, Decimal]:
        try:
            return self._tax(None, code)
        except _HttpError as exc:
            raise ValueError(exc.message) from None

    def _currency(self, header: dict[str, Any]) -> str:
        cid = header.get("currencyId")
        if cid is not None:
            if cid not in self.currencies:
                raise _HttpError(400, f"Currency id {cid!r} does not exist.")
            return self.currencies[cid]
        code = header.get("currencyCode")
        return str(code).upper() if code else "GBP"

    def _cancel(self, order_id: int) -> httpx.Response:
        order = self._visible(str(order_id))
        if order.status == CANCELLED:
            return _json(200, {"orderId": order.order_id, "orderStatus": order.status})
        if order.deliveries or not is_cancellable(order.status, self.status_map):
            raise _HttpError(
                409, f"Order {order.order_number} cannot be cancelled: status '{order.status}'."
            )
        for line in order.lines:
            if self.allocate_stock and not line.service:
                self._adjust(line.variant_code, line.stock_location_id, line.remaining)
            line.cancelled += line.remaining
        order.status = CANCELLED
        self._touch(order)
        return _json(200, {"orderId": order.order_id, "orderStatus": order.status})

    def _match_cancel_path(self, parts: list[str]) -> int | None:
        template = [p for p in self.cancel_path.strip("/").split("/") if p]
        if len(template) != len(parts):
            return None
        order_id: int | None = None
        for want, got in zip(template, parts, strict=True):
            if want == "{order_id}":
                if not got.isdigit():
                    return None
                order_id = int(got)
            elif want.lower() != got.lower():
                return None
        return order_id

    def _run_export(self, raw_id: str, request: httpx.Request) -> httpx.Response:
        if not self.exports_permitted:
            raise _HttpError(403, "Authorization has been denied for this request.")
        if not raw_id.isdigit() or int(raw_id) not in self._exports:
            raise _HttpError(404, f"Export definition {raw_id} does not exist.")
        names, function = self._exports[int(raw_id)]
        body = _body(request)
        if not isinstance(body, list):
            raise _HttpError(400, "The request is invalid.")
        params: dict[str, Any] = {}
        for item in body:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise _HttpError(400, "The request is invalid.")
            name = item["name"]
            if name == "":
                continue  # the placeholder sent to definitions without parameters
            if not name.startswith("@") or name[1:] not in names:
                raise _HttpError(400, f"Export definition {raw_id} has no parameter '{name}'.")
            params[name[1:]] = item.get("value")
        missing = [n for n in names if n not in params]
        if missing:
            raise _HttpError(400, f'Must declare the scalar variable "@{missing[0]}".')
        return _json(200, function(params))

    def _stock_variants(self, request: httpx.Request) -> httpx.Response:
        limit = _int(request.url.params.get("limit"), 1000)
        last_id = _int(request.url.params.get("last_id"), 0) if self.variants_honour_last_id else 0
        rows = sorted(
            (v for v in self._variants.values() if v.variant_id > last_id),
            key=lambda v: v.variant_id,
        )[:limit]
        return _json(200, [{"variantID": v.variant_id, "variantCode": v.code} for v in rows])

    def _variant_stock(self, raw_id: str) -> httpx.Response:
        for variant in self._variants.values():
            if raw_id.isdigit() and variant.variant_id == int(raw_id):
                if variant.service:
                    return _json(200, [])  # a non-stock item holds no stock anywhere
                return _json(
                    200,
                    [
                        {"variantID": variant.variant_id, "stockLocationId": loc, "freeStock": qty}
                        for loc, qty in sorted(variant.free.items())
                    ],
                )
        raise _HttpError(404, f"Variant {raw_id} not found.")

    def _rate_limited(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429,
            json={"Message": "Too many requests."},
            headers={"Retry-After": "0"},
        )

    def _server_error(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"Message": "An error has occurred."})

    # ------------------------------------------------------------------ export definitions

    def _register_builtin_exports(self) -> None:
        ids = self.export_definitions
        self._exports[ids.order_changes] = (("since",), self._export_order_changes)
        self._exports[ids.order_by_reference] = (("ref",), self._export_order_by_reference)
        if ids.orders_by_references is not None:
            self._exports[ids.orders_by_references] = (
                ("refs",),
                self._export_orders_by_references,
            )
        self._exports[ids.stock_changes] = (("since",), self._export_stock)
        self._exports[ids.order_details] = (("since", "until"), self._export_order_details)
        if ids.stock_full is not None:
            self._exports[ids.stock_full] = ((), self._export_stock)

    def _visible_orders(self) -> list[_Order]:
        return [o for o in sorted(self._orders.values(), key=lambda o: o.order_id) if o.visible]

    def _visible_by_reference(self, reference: str) -> list[_Order]:
        orders = (self._orders[i] for i in self._ids_by_reference.get(_ref_key(reference), []))
        return [o for o in orders if o.visible]

    def _export_order_by_reference(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [_order_head(o) for o in self._visible_by_reference(str(params["ref"]))]

    def _export_orders_by_references(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        # As SQL Server's STRING_SPLIT(@refs, ',') with the parts trimmed would.
        refs = dict.fromkeys(part.strip() for part in str(params["refs"] or "").split(","))
        return [_order_head(o) for ref in refs if ref for o in self._visible_by_reference(ref)]

    def _export_order_changes(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        since = _param_time(params["since"], "since")
        rows: list[dict[str, Any]] = []
        for order in self._visible_orders():
            touched = [order.order_date, order.last_amended, *(d.at for d in order.deliveries)]
            if since is not None and not any(t >= since for t in touched):
                continue
            head = _order_head(order)
            for line in order.lines:
                line_cols = {
                    "itemNumber": line.item_number,
                    "variantCode": line.variant_code,
                    "quantity": line.quantity,
                    "quantityDespatched": line.despatched,
                    "quantityCancelled": line.cancelled,
                    "lineStatusText": _line_status(line),
                }
                in_deliveries = [d for d in order.deliveries if line.item_number in d.lines]
                if not in_deliveries:
                    rows.append({**head, **line_cols, **dict.fromkeys(_DELIVERY_COLUMNS)})
                for delivery in in_deliveries:
                    rows.append(
                        {
                            **head,
                            **line_cols,
                            "deliveryNumber": delivery.number,
                            "consignment": delivery.consignment,
                            "courier": delivery.courier,
                            "despatchedAt": _format_time(delivery.at),
                            "trackingUrl": delivery.tracking_url,
                            "quantityInDelivery": delivery.lines[line.item_number],
                        }
                    )
        return rows

    def _export_stock(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        since = _param_time(params.get("since"), "since")
        rows: list[dict[str, Any]] = []
        for variant in sorted(self._variants.values(), key=lambda v: v.variant_id):
            if variant.service:
                continue
            changed = variant.last_calculated
            if since is not None and (changed is None or changed < since):
                continue
            for location, qty in sorted(variant.free.items()):
                rows.append(
                    {
                        "sku": variant.code,
                        "variantId": variant.variant_id,
                        "freeStock": qty,
                        "stockLocationId": location,
                        "lastCalculated": _format_time(changed) if changed else None,
                    }
                )
        return rows

    def _export_order_details(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        since = _param_time(params.get("since"), "since")
        until = _param_time(params.get("until"), "until")
        rows: list[dict[str, Any]] = []
        for order in self._visible_orders():
            if since is not None and order.order_date < since:
                continue
            if until is not None and order.order_date >= until:
                continue
            rows.extend(_detail_rows(order))
        return rows

    # ------------------------------------------------------------------ internals

    def _variant(self, sku: str) -> _Variant:
        variant = self._variants.get(sku)
        if variant is None:
            variant = _Variant(self._next_variant_id, sku)
            self._next_variant_id += 1
            self._variants[sku] = variant
        return variant

    def _adjust(self, sku: str, location: int, delta: Decimal) -> None:
        variant = self._variant(sku)
        variant.free[location] = variant.free.get(location, Decimal(0)) + delta
        variant.last_calculated = self.clock.now()

    def _recalculate(self, sku: str, location: int) -> None:
        self._variant(sku).last_calculated = self.clock.now()

    def _allocate(self, order: _Order, *, sign: int) -> None:
        if not self.allocate_stock:
            return
        for line in order.lines:
            if not line.service:
                self._adjust(line.variant_code, line.stock_location_id, sign * line.remaining)

    def _touch(self, order: _Order) -> None:
        order.last_amended = self.clock.now()

    def _match(self, reference: str | int) -> list[_Order]:
        if isinstance(reference, int):
            found = self._orders.get(reference)
            return [found] if found else []
        by_ref = [self._orders[i] for i in self._ids_by_reference.get(_ref_key(reference), [])]
        if by_ref or not reference.isdigit():
            return sorted(by_ref, key=lambda o: o.order_id)
        found = self._orders.get(int(reference))
        return [found] if found else []

    def _one(self, reference: str | int) -> _Order:
        found = self._match(reference)
        if not found:
            raise LookupError(f"no OrderWise order matches {reference!r}")
        if len(found) > 1:
            raise LookupError(
                f"{len(found)} OrderWise orders carry reference {reference!r} "
                f"(ids {[o.order_id for o in found]}); pass the order id"
            )
        return found[0]

    def _visible(self, raw_id: str) -> _Order:
        order = self._orders.get(int(raw_id)) if raw_id.isdigit() else None
        if order is None or not order.visible:
            raise _HttpError(404, f"Sales order {raw_id} not found.")
        return order

    def _line_quantities(
        self,
        order: _Order,
        lines: Mapping[str, Decimal | int] | Iterable[str | tuple[str, Decimal | int]] | None,
    ) -> dict[int, Decimal]:
        if lines is None:
            return {ln.item_number: ln.remaining for ln in order.lines if ln.remaining > 0}
        wanted: dict[str, Decimal] = {}
        pairs: Iterable[Any] = lines.items() if isinstance(lines, Mapping) else lines
        for item in pairs:
            code, qty = (item, 1) if isinstance(item, str) else item
            wanted[code] = wanted.get(code, Decimal(0)) + _decimal(qty)
        result: dict[int, Decimal] = {}
        for code, qty in wanted.items():
            if qty <= 0:
                raise ValueError(f"quantity for {code!r} must be positive")
            for line in order.lines:
                if line.variant_code == code and qty > 0 and line.remaining > 0:
                    take = min(qty, line.remaining)
                    result[line.item_number] = take
                    qty -= take
            if qty > 0:
                raise ValueError(f"order {order.order_id} has not enough {code!r} left to send")
        return result

    def _status_body(self, order: _Order, *, lines: bool, deliveries: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            **_created(order),
            "orderStatus": order.status,
            "subStatus": None,
            "orderDate": _format_time(order.order_date),
            "lastAmendedDateTime": _format_time(order.last_amended),
        }
        if lines:
            body["lines"] = [
                {
                    "itemNumber": ln.item_number,
                    "variantCode": ln.variant_code,
                    "quantity": ln.quantity,
                    "quantityDespatched": ln.despatched,
                    "quantityCancelled": ln.cancelled,
                    "status": _line_status(ln),
                }
                for ln in order.lines
            ]
        if deliveries:
            body["deliveries"] = [_delivery_body(d, order) for d in order.deliveries]
        return body


_DELIVERY_COLUMNS = (
    "deliveryNumber",
    "consignment",
    "courier",
    "despatchedAt",
    "trackingUrl",
    "quantityInDelivery",
)


def _created(order: _Order) -> dict[str, Any]:
    return {
        "orderId": order.order_id,
        "orderNumber": order.order_number,
        "eCommerceOrderNumber": order.reference,
    }


def _ref_key(reference: str) -> str:
    return reference.rstrip().casefold()


def _changes_state(request: httpx.Request) -> bool:
    """Whether a request can commit a change (an export definition only runs a SELECT)."""
    if "/system/export-definition/" in request.url.path.lower():
        return False
    return request.method in ("POST", "PUT", "PATCH", "DELETE")


def _order_head(order: _Order) -> dict[str, Any]:
    return {
        "owOrderId": order.order_id,
        "owOrderNumber": order.order_number,
        "externalRef": order.reference,
        "statusText": order.status,
        "orderDate": _format_time(order.order_date),
        "lastAmended": _format_time(order.last_amended),
    }


def _line_status(line: _Line) -> str:
    if line.remaining > 0:
        return PARTIALLY_DESPATCHED if line.despatched else AWAITING_PICKING
    return DESPATCHED if line.despatched else CANCELLED


def _delivery_body(delivery: _Delivery, order: _Order) -> dict[str, Any]:
    codes = {ln.item_number: ln.variant_code for ln in order.lines}
    return {
        "deliveryNumber": delivery.number,
        "deliveryDate": _format_time(delivery.at),
        "courierName": delivery.courier,
        "consignmentNumbers": [delivery.consignment],
        "trackingUrl": delivery.tracking_url,
        "lines": [
            {"itemNumber": item, "variantCode": codes[item], "quantity": qty}
            for item, qty in sorted(delivery.lines.items())
        ],
    }


def _detail_rows(order: _Order) -> list[dict[str, Any]]:
    """OrderWise's own arithmetic: VAT per line on the line amount, half-up; totals are sums."""
    exp = exponent(order.currency)
    scale = Decimal(10) ** exp
    line_cols: list[dict[str, Any]] = []
    gross_total = net_total = vat_total = discount = 0
    for line in order.lines:
        if line.item_gross is not None or line.item_net is None:
            gross = round_half_up((line.item_gross or Decimal(0)) * line.quantity * scale)
            net, vat = split_gross(gross, line.tax_rate)
        else:
            net = round_half_up(line.item_net * line.quantity * scale)
            gross, vat = split_net(net, line.tax_rate)
        gross_total, net_total, vat_total = gross_total + gross, net_total + net, vat_total + vat
        discount += -gross if gross < 0 else 0
        line_cols.append(
            {
                "itemNumber": line.item_number,
                "variantCode": line.variant_code,
                "quantity": line.quantity,
                "itemGross": line.item_gross,
                "lineGross": _major(gross, exp),
                "lineNet": _major(net, exp),
                "lineVat": _major(vat, exp),
                "taxCode": line.tax_code,
            }
        )
    delivery_gross = round_half_up(order.delivery_gross * scale)
    delivery_net, delivery_vat = split_gross(delivery_gross, order.delivery_tax[1])
    head = {
        **_order_head(order),
        "currency": order.currency,
        "orderGross": _major(gross_total + delivery_gross, exp),
        "orderNet": _major(net_total + delivery_net, exp),
        "orderVat": _major(vat_total + delivery_vat, exp),
        "deliveryGross": _major(delivery_gross, exp),
        "deliveryNet": _major(delivery_net, exp),
        "deliveryVat": _major(delivery_vat, exp),
        "discountGross": _major(discount, exp),
    }
    return [{**head, **cols} for cols in line_cols]


def _major(minor: int, exp: int) -> Decimal:
    return Decimal(minor).scaleb(-exp).quantize(Decimal(1).scaleb(-exp))


# ---------------------------------------------------------------------- parsing and encoding


def _no_resource(request: httpx.Request) -> str:
    return f"No HTTP resource was found that matches the request URI '{request.url.path}'."


def _body(request: httpx.Request) -> Any:
    try:
        return json.loads(request.content or b"null", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise _HttpError(400, "The request is invalid.") from None


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool | float):
        raise TypeError(f"use Decimal, int or str for quantities, not {value!r}")
    try:
        result = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def _field_decimal(obj: dict[str, Any], name: str) -> Decimal | None:
    value = obj.get(name)
    if value is None:
        return None
    try:
        return _decimal(value)
    except (TypeError, ValueError):
        raise _HttpError(400, f"The value '{value}' is not valid for {name}.") from None


def _required_decimal(obj: dict[str, Any], name: str) -> Decimal:
    value = _field_decimal(obj, name)
    if value is None:
        raise _HttpError(400, f"The {name} field is required.")
    return value


def _int(value: Any, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _HttpError(400, f"The value '{value}' is not valid.") from None


_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str) or not _TIME.match(value.strip()):
        raise _HttpError(400, f"The value '{value}' is not a valid date.")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return _to_uk_naive(datetime.fromisoformat(text))


def _param_time(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return _parse_time(value)
    except _HttpError:
        raise _HttpError(400, f"Conversion failed when converting @{name} to datetime.") from None


def _to_uk_naive(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(UK).replace(tzinfo=None)


def _format_time(value: datetime) -> str:
    if value.microsecond:
        return value.isoformat(timespec="milliseconds")
    return value.isoformat(timespec="seconds")


_NUMBER = "\x00num:"


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{_NUMBER}{value}"
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


_NUMBER_TOKEN = re.compile(r'"\\u0000num:([-0-9.Ee+]+)"')


def _json(status: int, body: Any) -> httpx.Response:
    """A JSON answer; ``Decimal`` values are written as exact JSON numbers (``12.50``, ``-2.5``)."""
    text = _NUMBER_TOKEN.sub(r"\1", json.dumps(_encode(body)))
    return httpx.Response(
        status, content=text.encode(), headers={"Content-Type": "application/json; charset=utf-8"}
    )
