"""Pydantic wire models of the OrderWise OWAPI (``reference/orderwise-api.md`` §2–§4, §9.3).

Conventions (the same as the SCAYLE models):

* Python attributes are snake_case; the wire uses OrderWise's camelCase names
  (``line.variant_code`` ↔ ``variantCode``, ``header.e_commerce_order_number`` ↔
  ``eCommerceOrderNumber``; a few rows use ``...ID``, e.g. ``variantID``, handled by explicit
  aliases). Both spellings are accepted when constructing a model.
* Request bodies (:class:`SalesOrderCreate` and its parts) forbid unknown keyword arguments;
  ``to_wire()`` returns the exact wire dict (``model_dump(by_alias=True, exclude_none=True,
  mode="json")``) and ``to_json()`` the JSON text.
* Read models ignore unknown fields, parse leniently (numbers may arrive as strings, blank strings
  mean ``None``) and keep the row they were built from in :attr:`OrderwiseReadModel.raw`
  (excluded from dumps).
* Money and quantities are :class:`~decimal.Decimal` in **major units** (``Decimal("1.85")``). JSON
  floats are converted through their shortest repr (``1.85`` → ``Decimal("1.85")``), never through
  binary arithmetic. In JSON output a Decimal is written as a JSON **number** (``1.85``; integral
  values as integers, ``2``), because the evidenced OrderWise clients send numbers; the conversion
  is exact and checked (a value needing more than 15 significant digits raises instead of being
  rounded).
* OrderWise datetimes are UK wall-clock time without a zone (``2026-05-04T10:12:44``). Read
  datetimes become aware datetimes in ``Europe/London``; written datetimes are converted to
  ``Europe/London`` and sent without a zone. See :func:`to_orderwise_datetime` and
  :func:`from_orderwise_datetime`.
* Fields marked [P] in the docstrings are proposals (not evidenced OrderWise names) from
  ``reference/orderwise-api.md`` §9.3; they are omitted from the wire when left ``None``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from .statuses import CanonicalStatus, canonical_status

__all__ = [
    "LONDON",
    "CustomerRef",
    "Delivery",
    "DeliveryAddress",
    "OrderChangeRow",
    "OrderDetailRow",
    "OrderHeader",
    "OrderLine",
    "OrderSummary",
    "OrderSummaryLine",
    "OrderwiseModel",
    "OrderwiseReadModel",
    "OrderwiseRequest",
    "OwDateTime",
    "OwDecimal",
    "Payment",
    "SalesOrderCreate",
    "SalesOrderCreated",
    "SalesOrderStatus",
    "SalesOrderStatusLine",
    "StockRow",
    "StockVariantRow",
    "ValueListItem",
    "VariantStockRow",
    "from_orderwise_datetime",
    "parse_decimal",
    "to_orderwise_datetime",
]

LONDON = ZoneInfo("Europe/London")
"""The time zone of OrderWise wall-clock timestamps."""

# --------------------------------------------------------------------------------------------
# Date/time helpers
# --------------------------------------------------------------------------------------------

_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


def to_orderwise_datetime(value: datetime) -> str:
    """Format an aware datetime as OrderWise wall-clock time: ``YYYY-MM-DDTHH:MM:SS``, UK, no zone.

    Raises ``ValueError`` for a naive datetime (its meaning would be a guess).
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"to_orderwise_datetime needs an aware datetime, got naive {value!r}")
    local = value.astimezone(LONDON).replace(tzinfo=None, microsecond=0)
    return local.isoformat(timespec="seconds")


def from_orderwise_datetime(value: str) -> datetime:
    """Parse an OrderWise timestamp into an aware ``Europe/London`` datetime.

    Accepts ``YYYY-MM-DDTHH:MM:SS`` with optional fractional seconds (any number of digits), a space
    instead of ``T``, a bare date (midnight), and, if present, a ``Z``/offset (then converted to UK
    time). Zone-less times are UK wall-clock; an ambiguous time in the autumn BST→GMT hour is read
    as the first occurrence (BST).
    """
    text = value.strip()
    if not text:
        raise ValueError("empty OrderWise datetime")
    text = _LONG_FRACTION.sub(r"\1", text)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), time())
        else:
            parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an OrderWise datetime: {value!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=LONDON, fold=0)
    return parsed.astimezone(LONDON)


def _ow_datetime_in(value: Any) -> Any:
    if isinstance(value, str):
        return from_orderwise_datetime(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=LONDON)
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time(), LONDON)
    return value


def _opt_ow_datetime_in(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _ow_datetime_in(value)


def _opt_ow_datetime_out(value: datetime | None) -> str | None:
    return None if value is None else to_orderwise_datetime(value)


# --------------------------------------------------------------------------------------------
# Decimal helpers
# --------------------------------------------------------------------------------------------


def parse_decimal(value: Any) -> Decimal:
    """Parse a money/quantity value leniently into an exact Decimal.

    ``int`` and ``Decimal`` as is; ``float`` through its shortest repr (``1.85`` → ``1.85``);
    ``str`` stripped (thousands commas allowed). Rejects booleans, blanks, NaN and infinities.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {value!r}")
        result = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip().replace(",", "")
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"expected a decimal number, got {value!r}") from None
    else:
        raise ValueError(f"expected a number, got {value!r}")
    if not result.is_finite():
        raise ValueError(f"expected a finite number, got {value!r}")
    return result


def _opt_decimal_in(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_decimal(value)


def _decimal_out(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    if Decimal(repr(as_float)) != value:
        raise ValueError(f"{value} cannot be written exactly as a JSON number")
    return as_float


def _opt_int_in(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        return value.strip()
    return value


def _opt_str_in(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return value


OwDecimal = Annotated[
    Decimal,
    BeforeValidator(parse_decimal),
    PlainSerializer(_decimal_out, when_used="json"),
]
"""A Decimal in major units: lenient input, an exact JSON number on output."""

OptDecimal = Annotated[
    Decimal | None,
    BeforeValidator(_opt_decimal_in),
    PlainSerializer(_decimal_out, when_used="json"),
]
"""An optional :data:`OwDecimal`; blank strings read as ``None``."""

OwDateTime = Annotated[
    datetime,
    BeforeValidator(_ow_datetime_in),
    PlainSerializer(to_orderwise_datetime, when_used="json"),
]
"""An aware datetime written as UK wall-clock time without zone; naive input is UK time."""

OptDateTime = Annotated[
    datetime | None,
    BeforeValidator(_opt_ow_datetime_in),
    PlainSerializer(_opt_ow_datetime_out, when_used="json"),
]
"""An optional :data:`OwDateTime`; blank strings read as ``None``."""

OptInt = Annotated[int | None, BeforeValidator(_opt_int_in)]
"""An optional int; numeric strings accepted, blank strings read as ``None``."""

OptStr = Annotated[str | None, BeforeValidator(_opt_str_in)]
"""An optional string; numbers are turned into their text (order numbers may come as numbers)."""


# --------------------------------------------------------------------------------------------
# Bases
# --------------------------------------------------------------------------------------------


class OrderwiseModel(BaseModel):
    """Base of OrderWise models: camelCase aliases, unknown fields ignored, frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The model as wire JSON (OrderWise names, ``None`` omitted, numbers as JSON numbers)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

    def to_json(self) -> str:
        """The wire JSON as text."""
        return json.dumps(self.to_wire(), separators=(",", ":"), ensure_ascii=False)


class OrderwiseRequest(OrderwiseModel):
    """Base of request bodies: unknown fields are errors (typos fail loudly)."""

    model_config = ConfigDict(extra="forbid")


class OrderwiseReadModel(OrderwiseModel):
    """Base of models read from OrderWise: keeps the source row in :attr:`raw`."""

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        model = handler(data)
        if isinstance(data, Mapping) and isinstance(model, OrderwiseReadModel):
            model._raw = dict(data)
        return model

    @property
    def raw(self) -> dict[str, Any]:
        """The row/object this model was validated from (the keyword arguments when built in Python)."""
        return self._raw


# --------------------------------------------------------------------------------------------
# POST sales/order
# --------------------------------------------------------------------------------------------


class CustomerRef(OrderwiseRequest):
    """``customer``: the OrderWise account, by internal ``id`` or ``accountNumber`` (exactly one)."""

    id: int | None = None
    account_number: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CustomerRef:
        if (self.id is None) == (self.account_number is None):
            raise ValueError("customer needs exactly one of id or accountNumber")
        return self


class OrderHeader(OrderwiseRequest):
    """``orderHeader``. ``orderDate`` is written as UK wall-clock time without zone.

    [P] fields: ``deliveryNet``, ``deliveryTax``, ``deliveryTaxCode``, ``orderNet``, ``orderTax``,
    ``amountPaid``, ``customerOrderRef``, ``currencyId``, ``pricesAsNet``.
    """

    order_date: OwDateTime
    e_commerce_order_number: str
    system_order_type: int = 1
    delivery_method_id: int | None = None
    delivery_gross: OptDecimal = None
    delivery_net: OptDecimal = None
    delivery_tax: OptDecimal = None
    delivery_tax_code: str | None = None
    order_gross: OptDecimal = None
    order_net: OptDecimal = None
    order_tax: OptDecimal = None
    amount_paid: OptDecimal = None
    required_date: OptDateTime = None
    special_instructions: str | None = None
    customer_order_ref: str | None = None
    currency_id: int | None = None
    prices_as_net: bool | None = None


class DeliveryAddress(OrderwiseRequest):
    """``customerDeliveryAddress``; ``countryCode`` is ISO alpha-2."""

    delivery_name: str | None = None
    contact_name: str | None = None
    address1: str | None = None
    address2: str | None = None
    address3: str | None = None
    town: str | None = None
    county: str | None = None
    country: str | None = None
    country_code: str | None = None
    postcode: str | None = None
    email: str | None = None
    telephone: str | None = None
    delivery_method_id: int | None = None


class OrderLine(OrderwiseRequest):
    """``orderLines[]``: one line; ``itemGross`` is the gross **unit** price in major units.

    [P] fields: ``itemNet``, ``taxCode``, ``eCommerceItemId``, ``eCommerceCode`` (the shop SKU).
    ``calculateLineSystemPrice`` stays ``false`` so the shop price wins.
    """

    item_number: int
    variant_code: str
    quantity: OwDecimal
    item_gross: OptDecimal = None
    item_net: OptDecimal = None
    tax_rate_id: int | None = None
    tax_code: str | None = None
    stock_location_id: int | None = None
    calculate_line_system_price: bool = False
    e_commerce_item_id: str | None = None
    e_commerce_code: str | None = None


class Payment(OrderwiseRequest):
    """[P] ``payments[]``: a payment against the order (field names not evidenced)."""

    payment_method_id: int | None = None
    amount: OwDecimal
    reference: str | None = None
    description: str | None = None


class SalesOrderCreate(OrderwiseRequest):
    """Wire body of ``POST sales/order?session_id=…``.

    ``to_wire()`` gives ``{"customer", "orderHeader", "customerDeliveryAddress", "orderLines",
    "payments"}`` with OrderWise field names and Decimal money as JSON numbers.
    """

    customer: CustomerRef
    order_header: OrderHeader
    customer_delivery_address: DeliveryAddress | None = None
    order_lines: list[OrderLine] = Field(min_length=1)
    payments: list[Payment] | None = None

    @property
    def external_reference(self) -> str:
        """``orderHeader.eCommerceOrderNumber``."""
        return self.order_header.e_commerce_order_number

    @model_validator(mode="after")
    def _unique_item_numbers(self) -> SalesOrderCreate:
        numbers = [line.item_number for line in self.order_lines]
        if len(numbers) != len(set(numbers)):
            raise ValueError(f"orderLines itemNumber values must be unique, got {numbers}")
        return self


class SalesOrderCreated(OrderwiseReadModel):
    """Answer of ``POST sales/order`` (shape E-weak): ``orderId`` (also read from ``id``)."""

    order_id: int = Field(validation_alias=AliasChoices("orderId", "orderID", "id", "order_id"))
    order_number: OptStr = None
    e_commerce_order_number: OptStr = None


# --------------------------------------------------------------------------------------------
# Status, deliveries, order changes
# --------------------------------------------------------------------------------------------


class Delivery(OrderwiseReadModel):
    """[P] One despatch: number, date, courier, consignment (tracking) numbers, tracking URL."""

    delivery_number: OptStr = None
    delivery_date: OptDateTime = None
    courier_name: OptStr = None
    consignment_numbers: list[str] = Field(default_factory=list)
    tracking_url: OptStr = None

    @field_validator("consignment_numbers", mode="before")
    @classmethod
    def _to_list(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str | int):
            value = [value]
        if isinstance(value, list):
            return [str(v).strip() for v in value if v is not None and str(v).strip()]
        return value


class SalesOrderStatusLine(OrderwiseReadModel):
    """[P] A line of the status answer."""

    item_number: OptInt = None
    variant_code: OptStr = None
    quantity: OptDecimal = None
    quantity_despatched: OptDecimal = None
    status: OptStr = None


class SalesOrderStatus(OrderwiseReadModel):
    """Answer of ``GET sales/order/{id}/status``; ``order_status`` is the installation's text."""

    order_id: OptInt = Field(default=None, validation_alias=AliasChoices("orderId", "orderID"))
    order_number: OptStr = None
    e_commerce_order_number: OptStr = None
    order_status: OptStr = None
    sub_status: OptStr = None
    lines: list[SalesOrderStatusLine] | None = None
    deliveries: list[Delivery] | None = None

    def canonical(
        self, status_map: Mapping[str, CanonicalStatus | str] | None = None
    ) -> CanonicalStatus:
        """The order status text mapped through ``status_map`` (default map when ``None``)."""
        return canonical_status(self.order_status, status_map)


class OrderChangeRow(OrderwiseReadModel):
    """A row of the ``order_changes`` export definition (aliases [P]).

    SQL aliases: ``owOrderId``, ``owOrderNumber``, ``externalRef`` (the ``eCommerceOrderNumber``),
    ``statusText``, ``consignment``, ``despatchedAt``, ``trackingUrl``, optional ``courier``.
    Optional line-level aliases (then one row per order line and delivery; delivery columns empty
    for a line not yet in a delivery): ``orderDate``, ``lastAmended``, ``itemNumber``,
    ``variantCode``, ``quantity``, ``quantityDespatched``, ``quantityCancelled``,
    ``lineStatusText``, ``deliveryNumber``, ``quantityInDelivery``.
    """

    ow_order_id: OptInt = None
    ow_order_number: OptStr = None
    external_ref: OptStr = None
    status_text: OptStr = None
    consignment: OptStr = None
    despatched_at: OptDateTime = None
    tracking_url: OptStr = None
    courier: OptStr = None
    # Optional line-level columns [P] (one row per order line and delivery, as the sandbox and
    # the library's proposed SQL return them): what each delivery contained, and what was cancelled.
    order_date: OptDateTime = None
    last_amended: OptDateTime = None
    item_number: OptInt = None
    variant_code: OptStr = None
    quantity: OptDecimal = None
    quantity_despatched: OptDecimal = None
    quantity_cancelled: OptDecimal = None
    line_status_text: OptStr = None
    delivery_number: OptStr = None
    quantity_in_delivery: OptDecimal = None

    @property
    def has_consignment(self) -> bool:
        """True when the row carries a consignment number (i.e. something was despatched)."""
        return bool(self.consignment and self.consignment.strip())

    def canonical(
        self, status_map: Mapping[str, CanonicalStatus | str] | None = None
    ) -> CanonicalStatus:
        """The status text mapped through ``status_map`` (default map when ``None``)."""
        return canonical_status(self.status_text, status_map)


# --------------------------------------------------------------------------------------------
# Stock and value lists
# --------------------------------------------------------------------------------------------


class StockRow(OrderwiseReadModel):
    """A row of the ``stock_changes`` export definition: ``sku``, ``freeStock`` (may be negative
    or fractional), optional ``stockLocationId`` and ``lastCalculated`` ([P]: the time the figure
    was true, ``vasq_stock_levels_last_calculated``)."""

    sku: str
    free_stock: OwDecimal
    stock_location_id: OptInt = Field(
        default=None, validation_alias=AliasChoices("stockLocationId", "stockLocationID")
    )
    last_calculated: OptDateTime = None

    @field_validator("sku", mode="before")
    @classmethod
    def _sku_text(cls, value: Any) -> Any:
        return _opt_str_in(value)


class StockVariantRow(OrderwiseReadModel):
    """A row of ``GET stock/variants``: ``variantID`` and ``variantCode``."""

    variant_id: int = Field(
        validation_alias=AliasChoices("variantID", "variantId", "id"),
        serialization_alias="variantID",
    )
    variant_code: str

    @field_validator("variant_code", mode="before")
    @classmethod
    def _code_text(cls, value: Any) -> Any:
        return _opt_str_in(value)


class VariantStockRow(OrderwiseReadModel):
    """A row of ``GET stock/{variantId}`` (one per stock location): ``freeStock``."""

    free_stock: OwDecimal
    stock_location_id: OptInt = Field(
        default=None, validation_alias=AliasChoices("stockLocationId", "stockLocationID")
    )
    variant_id: OptInt = Field(
        default=None, validation_alias=AliasChoices("variantID", "variantId")
    )


class ValueListItem(OrderwiseReadModel):
    """An entry of ``GET value-lists/{n}``: ``id`` and ``name`` and/or ``description``."""

    id: int
    name: OptStr = None
    description: OptStr = None

    @property
    def label(self) -> str:
        """``name``, else ``description``, else the id as text."""
        return self.name or self.description or str(self.id)


# --------------------------------------------------------------------------------------------
# Reconciliation
# --------------------------------------------------------------------------------------------


class OrderDetailRow(OrderwiseReadModel):
    """A row of the ``order_details`` export definition used by reconciliation ([P] aliases).

    One row per order line with the header columns repeated (an order without lines gives one row
    with empty line columns). Header: ``owOrderId``, ``owOrderNumber``, ``externalRef``,
    ``currency``, ``statusText``, ``orderDate``, ``orderGross``, ``orderNet``, ``orderVat``,
    ``deliveryGross``, ``deliveryNet``, ``deliveryVat``, ``discountGross``. Line: ``itemNumber``,
    ``variantCode``, ``quantity``, ``lineGross``, ``lineNet``, ``lineVat``, ``taxCode``.
    Money is Decimal major units.
    """

    ow_order_id: OptInt = None
    ow_order_number: OptStr = None
    external_ref: OptStr = None
    currency: OptStr = Field(
        default=None, validation_alias=AliasChoices("currency", "currencyCode")
    )
    status_text: OptStr = None
    order_date: OptDateTime = None
    order_gross: OptDecimal = None
    order_net: OptDecimal = None
    order_vat: OptDecimal = Field(
        default=None, validation_alias=AliasChoices("orderVat", "orderTax")
    )
    delivery_gross: OptDecimal = None
    delivery_net: OptDecimal = None
    delivery_vat: OptDecimal = Field(
        default=None, validation_alias=AliasChoices("deliveryVat", "deliveryTax")
    )
    discount_gross: OptDecimal = Field(
        default=None, validation_alias=AliasChoices("discountGross", "discount")
    )
    item_number: OptInt = None
    variant_code: OptStr = None
    quantity: OptDecimal = None
    line_gross: OptDecimal = None
    line_net: OptDecimal = None
    line_vat: OptDecimal = Field(default=None, validation_alias=AliasChoices("lineVat", "lineTax"))
    tax_code: OptStr = None

    @property
    def order_key(self) -> str:
        """What groups rows into one order: the OrderWise id, else number, else reference."""
        if self.ow_order_id is not None:
            return f"id:{self.ow_order_id}"
        if self.ow_order_number:
            return f"no:{self.ow_order_number}"
        return f"ref:{self.external_ref or ''}"


class OrderSummaryLine(OrderwiseModel):
    """A line of :class:`OrderSummary` (Decimal major units)."""

    item_number: int | None = None
    variant_code: str | None = None
    quantity: OptDecimal = None
    line_gross: OptDecimal = None
    line_net: OptDecimal = None
    line_vat: OptDecimal = None
    tax_code: str | None = None


class OrderSummary(OrderwiseModel):
    """One OrderWise order as reconciliation sees it: reference, ids, currency, totals, status.

    ``reference`` is the ``eCommerceOrderNumber`` (it contains the SCAYLE order id). Totals are
    Decimal major units: ``order_gross``/``order_net``/``order_vat`` (whole order incl. delivery),
    ``delivery_gross``/``delivery_net``/``delivery_vat``, ``discount_gross``. ``lines`` is
    ``None`` when the source had no line columns. Build from export rows with :meth:`from_rows`.
    """

    reference: str | None = None
    ow_order_id: int | None = None
    ow_order_number: str | None = None
    currency: str | None = None
    status_text: str | None = None
    order_date: OptDateTime = None
    order_gross: OptDecimal = None
    order_net: OptDecimal = None
    order_vat: OptDecimal = None
    delivery_gross: OptDecimal = None
    delivery_net: OptDecimal = None
    delivery_vat: OptDecimal = None
    discount_gross: OptDecimal = None
    lines: list[OrderSummaryLine] | None = None

    def canonical(
        self, status_map: Mapping[str, CanonicalStatus | str] | None = None
    ) -> CanonicalStatus:
        """The status text mapped through ``status_map`` (default map when ``None``)."""
        return canonical_status(self.status_text, status_map)

    @classmethod
    def from_rows(cls, rows: Iterable[OrderDetailRow | Mapping[str, Any]]) -> list[OrderSummary]:
        """Group flat :class:`OrderDetailRow` rows (or raw row dicts) into summaries.

        Orders keep the order of their first row; header values come from the first row that has
        them; rows without line columns add no line.
        """
        grouped: dict[str, list[OrderDetailRow]] = {}
        for row in rows:
            detail = row if isinstance(row, OrderDetailRow) else OrderDetailRow.model_validate(row)
            grouped.setdefault(detail.order_key, []).append(detail)
        return [cls._from_group(group) for group in grouped.values()]

    @classmethod
    def _from_group(cls, group: list[OrderDetailRow]) -> OrderSummary:
        def first(attr: str) -> Any:
            for row in group:
                value = getattr(row, attr)
                if value is not None:
                    return value
            return None

        lines = [
            OrderSummaryLine(
                item_number=row.item_number,
                variant_code=row.variant_code,
                quantity=row.quantity,
                line_gross=row.line_gross,
                line_net=row.line_net,
                line_vat=row.line_vat,
                tax_code=row.tax_code,
            )
            for row in group
            if row.variant_code is not None or row.item_number is not None
        ]
        return cls(
            reference=first("external_ref"),
            ow_order_id=first("ow_order_id"),
            ow_order_number=first("ow_order_number"),
            currency=first("currency"),
            status_text=first("status_text"),
            order_date=first("order_date"),
            order_gross=first("order_gross"),
            order_net=first("order_net"),
            order_vat=first("order_vat"),
            delivery_gross=first("delivery_gross"),
            delivery_net=first("delivery_net"),
            delivery_vat=first("delivery_vat"),
            discount_gross=first("discount_gross"),
            lines=lines or None,
        )
