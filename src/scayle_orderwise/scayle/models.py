"""Pydantic wire models of the SCAYLE Admin API (``reference/scayle-admin-api.md``).

Conventions:

* Python attributes are snake_case, the wire uses camelCase (``order.reference_key`` ↔
  ``referenceKey``). Both spellings are accepted when constructing a model.
* Unknown fields are ignored in responses (SCAYLE adds fields without a version bump); request
  bodies forbid unknown keyword arguments so that typos fail loudly.
* Almost every field is optional: SCAYLE omits fields freely (external-price orders, old payloads).
* Money amounts are ``int`` minor units. A JSON float with a fraction is rejected; an integral float
  (``190.0``, as VAT amounts are sometimes typed) becomes an ``int``.
* Rates (VAT ``rate``, reduction ``relative``) become :class:`~decimal.Decimal` through the float's
  shortest repr (``0.2`` → ``Decimal("0.2")``), never through binary float arithmetic. They are
  written back to JSON as numbers.
* Timestamps become timezone-aware :class:`~datetime.datetime`; a timestamp without an offset
  (``"2021-11-09 07:30:27"``, seen in SCAYLE's own examples) is read as UTC. JSON output is ISO 8601
  with an offset (``2026-05-04T09:12:44+00:00``).
* Request bodies (:class:`ShipmentCreate`, :class:`CancellationCreate`, :class:`ReturnItemsCreate`,
  :class:`VariantStockCreate`, :class:`ReferenceKeyUpdate`, ...) have ``to_wire()``, which is
  ``model_dump(by_alias=True, exclude_none=True, mode="json")``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    RootModel,
    field_validator,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "Address",
    "AddressDefaults",
    "ApiErrorBody",
    "ApiErrorEntry",
    "BillingStatusItem",
    "BillingStatusUpdate",
    "BulkRequestCreated",
    "CancellationCreate",
    "CancellationItem",
    "Carrier",
    "Channel",
    "CollectionPoint",
    "Company",
    "Contact",
    "Cursor",
    "CursorPage",
    "Customer",
    "CustomerStatus",
    "DeliveryDate",
    "DeliveryForecast",
    "DetailedStatus",
    "Fee",
    "FeeAmount",
    "ForecastKey",
    "ItemGroup",
    "ItemPrice",
    "ItemPromotion",
    "ItemStatus",
    "LowestPriorPrice",
    "Merchant",
    "MinorAmount",
    "Order",
    "OrderAddress",
    "OrderCollection",
    "OrderCost",
    "OrderItem",
    "OrderShipping",
    "OrderStatus",
    "OrderStatusResponse",
    "Package",
    "Payment",
    "PaymentInstallment",
    "Product",
    "Rate",
    "Recipient",
    "Reduction",
    "ReductionAmount",
    "ReferenceKeyUpdate",
    "ReferencePrice",
    "ReturnItem",
    "ReturnItemsCreate",
    "ScayleModel",
    "ScayleRequest",
    "Shipment",
    "ShipmentCreate",
    "ShipmentItem",
    "ShopCountry",
    "StatusDetail",
    "Tax",
    "Timestamp",
    "Tracking",
    "Variant",
    "VariantStock",
    "VariantStockCreate",
    "VariantStockPage",
    "Vat",
    "VatAmount",
    "Voucher",
    "VoucherApplicableItem",
    "VoucherReducedPrice",
    "Warehouse",
    "WarehouseMerchant",
    "WarehouseShopCountry",
    "WebhookEvent",
    "WebhookEventDefinition",
    "WebhookLocale",
    "WebhookMeta",
    "WebhookSubscription",
    "WebhookSubscriptionCreate",
]

# --------------------------------------------------------------------------------------------
# Scalar types
# --------------------------------------------------------------------------------------------


def _integral(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError(f"{what} must be an integral number of minor units, got {value!r}")
        return int(value)
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise ValueError(f"{what} must be an integral number of minor units, got {value}")
        return int(value)
    raise ValueError(f"{what} must be an integer number of minor units, got {value!r}")


def _minor_amount(value: Any) -> int:
    return _integral(value, "money amount")


def _vat_amount(value: Any) -> int:
    return _integral(value, "VAT amount")


def _rate(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"rate must be a number, got {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        # repr is the shortest round-tripping text: 0.2 -> "0.2", never 0.2000000000000000111.
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"rate must be a decimal number, got {value!r}") from None
    else:
        raise ValueError(f"rate must be a number, got {value!r}")
    if not result.is_finite():
        raise ValueError(f"rate must be finite, got {value!r}")
    return result


def _rate_to_json(value: Decimal) -> int | float:
    if value == value.to_integral_value():
        return int(value)
    return float(value)  # shortest repr of a short decimal is that decimal's text


def _parse_timestamp(value: Any) -> Any:
    # A bare date ("2018-02-05") is midnight UTC; everything else is left to pydantic.
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return datetime.combine(date.fromisoformat(value.strip()), datetime.min.time(), UTC)
        except ValueError:
            return value
    return value


def _ensure_aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _timestamp_to_json(value: datetime) -> str:
    return value.isoformat()


MinorAmount = Annotated[int, BeforeValidator(_minor_amount)]
"""An amount in minor currency units; integral floats are accepted, fractions are rejected."""

VatAmount = Annotated[int, BeforeValidator(_vat_amount)]
"""A VAT amount in minor units (typed float on SCAYLE's wire, always integral in practice)."""

Rate = Annotated[Decimal, BeforeValidator(_rate), PlainSerializer(_rate_to_json, when_used="json")]
"""A rate such as ``0.2``: Decimal via the float's shortest repr, a JSON number on output."""

Timestamp = Annotated[
    datetime,
    BeforeValidator(_parse_timestamp),
    AfterValidator(_ensure_aware),
    PlainSerializer(_timestamp_to_json, when_used="json"),
]
"""An aware datetime; naive input is UTC; JSON output is ISO 8601 with offset."""


def _int_to_str(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


LenientStr = Annotated[str, BeforeValidator(_int_to_str)]
"""A string that also accepts an integer (ids whose JSON type varies)."""

FreeForm = dict[str, Any] | list[Any] | None
"""Free-form JSON (PHP backends serialise an empty map as ``[]``)."""


class OrderStatus(StrEnum):
    """Known values of ``Order.status`` (the field itself is an open string)."""

    ORDER_OPEN = "order_open"
    PAYMENT_PENDING = "payment_pending"
    PAYMENT_RESERVED = "payment_reserved"
    INVOICE_COMPLETED = "invoice_completed"
    INVOICE_PARTIALLY_COMPLETED = "invoice_partially_completed"
    CANCELLATION_PENDING = "cancellation_pending"
    CANCELLATION_COMPLETED = "cancellation_completed"


class ItemStatus(StrEnum):
    """Known values of ``OrderItem.status`` (the field itself is an open string)."""

    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"
    DELIVERABLE = "deliverable"
    UNDELIVERABLE = "undeliverable"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    RETURNED = "returned"


# --------------------------------------------------------------------------------------------
# Bases
# --------------------------------------------------------------------------------------------


class ScayleModel(BaseModel):
    """Base of SCAYLE response models: camelCase aliases, unknown fields ignored, frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The model as wire JSON (camelCase keys, ``None`` omitted, JSON-compatible values)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ScayleRequest(ScayleModel):
    """Base of SCAYLE request bodies: like :class:`ScayleModel` but unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------
# Money blocks
# --------------------------------------------------------------------------------------------


class Vat(ScayleModel):
    """``tax.vat``: VAT amount (minor units) and rate (may be absent at order level)."""

    amount: VatAmount | None = None
    rate: Rate | None = None


class Tax(ScayleModel):
    """``tax`` block: ``{"vat": {...}}``."""

    vat: Vat | None = None


class FeeAmount(ScayleModel):
    """A gross/net amount pair (fee ``amount``)."""

    with_tax: MinorAmount | None = Field(
        default=None, validation_alias=AliasChoices("withTax", "with_tax")
    )
    without_tax: MinorAmount | None = Field(
        default=None, validation_alias=AliasChoices("withoutTax", "withOutTax", "without_tax")
    )


class Fee(ScayleModel):
    """``cost.appliedFees[]``: delivery, payment and other service fees."""

    category: str | None = None
    key: str | None = None
    option: str | None = None
    amount: FeeAmount | None = None
    tax: Tax | None = None
    invoice_triggered: bool | None = None
    refund_triggered: bool | None = None

    @property
    def is_delivery(self) -> bool:
        """True for a ``delivery`` category fee."""
        return self.category == "delivery"


class ReductionAmount(ScayleModel):
    """Reduction ``amount``: ``absoluteWithTax`` (minor units) and ``relative`` (a rate)."""

    absolute_with_tax: MinorAmount | None = None
    relative: Rate | None = None


class Reduction(ScayleModel):
    """An order- or item-level reduction (``appliedReductions[]``)."""

    id: LenientStr | None = None
    category: str | None = None
    type: str | None = None
    amount: ReductionAmount | None = None
    code: str | None = None
    display_name: str | None = None


class ReferencePrice(ScayleModel):
    """Unit/base price reference (``price.reference``)."""

    size: str | None = None
    unit: str | None = None
    with_tax: MinorAmount | None = None


class VoucherReducedPrice(ScayleModel):
    """``price.absoluteVoucherReducedPrice``."""

    with_tax: MinorAmount | None = None
    with_out_tax: MinorAmount | None = Field(
        default=None,
        validation_alias=AliasChoices("withOutTax", "withoutTax", "with_out_tax"),
        serialization_alias="withOutTax",
    )
    tax: Tax | None = None


class ItemPrice(ScayleModel):
    """Unit price of one item (``items[].price``); ``with_tax`` includes item reductions."""

    with_tax: MinorAmount | None = None
    without_tax: MinorAmount | None = Field(
        default=None, validation_alias=AliasChoices("withoutTax", "withOutTax", "without_tax")
    )
    tax: Tax | None = None
    undiscounted_with_tax: MinorAmount | None = None
    undiscounted_with_out_tax: MinorAmount | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "undiscountedWithOutTax", "undiscountedWithoutTax", "undiscounted_with_out_tax"
        ),
        serialization_alias="undiscountedWithOutTax",
    )
    override_with_tax: MinorAmount | None = None
    override_without_tax: MinorAmount | None = None
    applied_reductions: list[Reduction] = Field(default_factory=list)
    absolute_voucher_reduced_price: VoucherReducedPrice | None = None
    reference: ReferencePrice | None = None

    @property
    def vat_rate(self) -> Decimal | None:
        """The VAT rate, or ``None`` when absent."""
        return self.tax.vat.rate if self.tax and self.tax.vat else None

    @property
    def vat_amount(self) -> int | None:
        """The VAT amount in minor units, or ``None`` when absent."""
        return self.tax.vat.amount if self.tax and self.tax.vat else None


class LowestPriorPrice(ScayleModel):
    """Omnibus-rule lowest prior price."""

    with_tax: MinorAmount | None = None
    relative_difference_to_price: Rate | None = None


class OrderCost(ScayleModel):
    """``Order.cost``: grand totals (incl. fees, after reductions), fees and order reductions."""

    with_tax: MinorAmount | None = None
    without_tax: MinorAmount | None = Field(
        default=None, validation_alias=AliasChoices("withoutTax", "withOutTax", "without_tax")
    )
    tax: Tax | None = None
    applied_fees: list[Fee] = Field(default_factory=list)
    applied_reductions: list[Reduction] = Field(default_factory=list)
    with_tax_with_membership_discount_without_service_costs: MinorAmount | None = None
    without_tax_with_membership_discount: MinorAmount | None = None
    cost_capture: MinorAmount | None = None
    item_groups: Any = None
    has_external_prices: bool | None = None

    @property
    def delivery_fees(self) -> list[Fee]:
        """Fees with category ``delivery``."""
        return [fee for fee in self.applied_fees if fee.is_delivery]


# --------------------------------------------------------------------------------------------
# Order parts
# --------------------------------------------------------------------------------------------


class StatusDetail(ScayleModel):
    """``{code, name}``; ``name`` is a localised label: branch on ``code`` only."""

    code: str | None = None
    name: str | None = None


class DetailedStatus(ScayleModel):
    """``Order.detailedStatus``."""

    order: StatusDetail | None = None
    billing: StatusDetail | None = None
    shipping: StatusDetail | None = None


class StockInfo(ScayleModel):
    """``variant.stock``."""

    supplier_id: int | None = None


class Variant(ScayleModel):
    """``items[].variant``; ``reference_key`` is the SKU."""

    id: int | None = None
    reference_key: str | None = None
    stock: StockInfo | None = None


class Product(ScayleModel):
    """``items[].product``."""

    id: int | None = None
    name: str | None = None
    images: list[dict[str, Any]] = Field(default_factory=list)


class Merchant(ScayleModel):
    """``items[].merchant``."""

    id: int | None = None
    reference_key: str | None = None


class ForecastKey(ScayleModel):
    """``{key}`` inside a delivery forecast."""

    key: str | None = None


class DeliveryForecast(ScayleModel):
    """``items[].deliveryForecast``."""

    deliverable: ForecastKey | None = None
    subsequent_delivery: ForecastKey | None = None


class ItemGroup(ScayleModel):
    """``items[].itemGroup`` (bundles)."""

    id: LenientStr | None = None
    is_main_item: bool | None = None
    is_required: bool | None = None


class ItemPromotion(ScayleModel):
    """``items[].promotions[]``."""

    id: str | int | None = None
    name: str | None = None
    version: int | str | None = None
    display_name: str | None = None
    code: str | None = None


class OrderItem(ScayleModel):
    """One **unit** of an order (SCAYLE items carry no quantity).

    ``key`` also reads the pre-2022 field name ``referenceKey``.
    """

    id: int
    key: str | None = Field(default=None, validation_alias=AliasChoices("key", "referenceKey"))
    basket_item_key: str | None = None
    status: str | None = None
    variant: Variant | None = None
    product: Product | None = None
    merchant: Merchant | None = None
    warehouse_id: int | None = None
    package_id: int | None = None
    price: ItemPrice | None = None
    lowest_prior_price: LowestPriorPrice | None = None
    currency: str | None = None
    available_quantity: int | None = None
    reservation_key: str | None = None
    delivery_forecast: DeliveryForecast | None = None
    item_group: ItemGroup | None = None
    promotions: list[ItemPromotion] = Field(default_factory=list)
    promotion: Any = None
    campaign_key: str | None = None
    merchant_additional_data: FreeForm = None
    legacy_custom_data: FreeForm = None
    return_key: str | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    delegated_at: Timestamp | None = None
    shipped_at: Timestamp | None = None
    cancelled_at: Timestamp | None = None
    returned_at: Timestamp | None = None

    @property
    def sku(self) -> str | None:
        """The variant reference key (SKU), or ``None``."""
        return self.variant.reference_key if self.variant else None

    @property
    def is_cancelled(self) -> bool:
        """True when the unit is cancelled (status or ``cancelledAt``)."""
        return self.status == ItemStatus.CANCELLED or self.cancelled_at is not None

    @property
    def is_shipped(self) -> bool:
        """True when the unit carries a ``shippedAt`` time.

        The status says nothing about shipping: SCAYLE's SDKs list ``deliverable`` without a
        shipping meaning, and their fixtures show shipped units as ``available``. A unit linked to
        a shipped package counts too: see :meth:`Order.shipped_item_ids`.
        """
        return self.shipped_at is not None

    @property
    def is_returned(self) -> bool:
        """True when the unit was returned."""
        return self.status == ItemStatus.RETURNED or self.returned_at is not None


class Recipient(ScayleModel):
    """Address recipient."""

    first_name: str | None = None
    last_name: str | None = None
    gender: str | None = None
    title: str | None = None
    type: str | None = None

    @property
    def full_name(self) -> str:
        """First and last name joined by a space (empty parts skipped)."""
        return " ".join(part for part in (self.first_name, self.last_name) if part)


class CollectionPoint(ScayleModel):
    """Parcel shop / collection point."""

    customer_key: str | None = None
    description: str | None = None
    key: str | None = None
    type: str | None = None


class AddressDefaults(ScayleModel):
    """``isDefault`` flags."""

    billing: bool | None = None
    shipping: bool | None = None


class Address(ScayleModel):
    """A customer address; ``country_code`` is ISO 3166-1 **alpha-3** (``GBR``)."""

    id: int | None = None
    reference_key: str | None = None
    street: str | None = None
    house_number: str | None = None
    additional: str | None = None
    zip_code: str | None = None
    city: str | None = None
    state: str | None = None
    country_code: str | None = None
    phone: str | None = None
    type: str | None = None
    is_default: AddressDefaults | None = None
    recipient: Recipient | None = None
    collection_point: CollectionPoint | None = None


class OrderAddress(ScayleModel):
    """``Order.address``."""

    billing: Address | None = None
    shipping: Address | None = None
    forward: Address | None = None


class CustomerStatus(ScayleModel):
    """``customer.status``."""

    is_active: bool | None = None
    is_guest_customer: bool | None = None


class Company(ScayleModel):
    """``customer.company`` (B2B)."""

    id: int | None = None
    name: str | None = None


class Customer(ScayleModel):
    """Customer snapshot on the order."""

    id: int | None = None
    reference_key: str | None = None
    public_key: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    gender: str | None = None
    birth_date: date | None = None
    title: str | None = None
    type: str | None = None
    groups: list[str] = Field(default_factory=list)
    status: CustomerStatus | None = None
    company: Company | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class Contact(ScayleModel):
    """``contacts[]``: ``{type, value}``."""

    type: str | None = None
    value: str | None = None


class OrderShipping(ScayleModel):
    """``Order.shipping``; prefer the ``delivery`` fee (it has net and VAT) for ERP lines."""

    policy: str | None = None
    delivered_on: str | None = None
    delivery_costs: MinorAmount | None = None
    express_delivery_costs: MinorAmount | None = None
    delivery_costs_without_discount: MinorAmount | None = None
    express_delivery_costs_without_discount: MinorAmount | None = None


class PaymentInstallment(ScayleModel):
    """``payment[].installment[]``."""

    amount: MinorAmount | None = None
    type: str | None = None


class Payment(ScayleModel):
    """``payment[]``: a payment method and its amount; gift cards are payments (P12)."""

    amount: MinorAmount | None = None
    key: str | None = None
    transaction_key: str | None = None
    data: FreeForm = None
    is_gift_card: bool = False
    installment: list[PaymentInstallment] = Field(default_factory=list)
    options: FreeForm = None

    @field_validator("is_gift_card", mode="before")
    @classmethod
    def _none_to_false(cls, value: Any) -> Any:
        return False if value is None else value


class VoucherApplicableItem(ScayleModel):
    """``vouchers[].applicableItems[]``."""

    key: str | None = None
    is_applied: bool | None = None


class Voucher(ScayleModel):
    """``vouchers[]``."""

    id: int | None = None
    voucher_id: int | None = None
    code: str | None = None
    type: str | None = None
    value: MinorAmount | None = None
    applicable_items: list[VoucherApplicableItem] = Field(default_factory=list)


class DeliveryDate(ScayleModel):
    """``packages[].deliveryDate`` window."""

    minimum: date | None = None
    maximum: date | None = None
    desired: date | None = None


class Tracking(ScayleModel):
    """``packages[].tracking``."""

    id: str | None = None
    url: str | None = None


class Package(ScayleModel):
    """``packages[]``: one shipped/planned parcel; ``items[].package_id`` links units to it."""

    id: int | None = None
    shipment_key: str | None = None
    carrier_key: str | None = None
    delivery_status: str | None = None
    delivery_date: DeliveryDate | None = None
    shipped_at: Timestamp | None = None
    tracking: Tracking | None = None
    return_ident_code: str | None = None

    @property
    def is_shipped(self) -> bool:
        """True for a parcel that left: a ``shippedAt`` time, a ``shipmentKey`` (the tracking
        number a shipment gave it) or ``deliveryStatus`` ``shipment_completed``. A parcel SCAYLE
        only planned at checkout has none of these."""
        return (
            self.shipped_at is not None
            or bool(self.shipment_key)
            or self.delivery_status == "shipment_completed"
        )


class ShopCountry(ScayleModel):
    """``Order.shopCountry``; ``country_code`` is alpha-2 (any case)."""

    id: int | None = None
    shop_key: str | None = None
    country_code: str | None = None
    default_language_code: str | None = None
    supported_language_codes: list[str] = Field(default_factory=list)
    currency_code: str | None = None
    url: str | None = None
    active: bool | None = None
    deleted: bool | None = None
    price_group_key: str | None = None


class Channel(ScayleModel):
    """``Order.channel`` (external orders)."""

    id: int | None = None
    key: str | None = None
    name: str | None = None
    type: str | None = None


class MembershipDiscount(ScayleModel):
    """``Order.membershipDiscount``."""

    membership_card_id: int | None = None
    points_used: int | None = None
    reduction_value: MinorAmount | None = None
    tax: MinorAmount | None = None


class LoyaltyCard(ScayleModel):
    """``Order.loyaltyCard``."""

    card_number: str | None = None
    points: int | None = None
    provider: str | None = None


class Order(ScayleModel):
    """A SCAYLE order (§2.3). ``id`` is the primary key; ``items`` are single units."""

    id: int
    reference_key: str | None = None
    public_key: str | None = None
    basket_key: str | None = None
    campaign_key: str | None = None
    status: str | None = None
    detailed_status: DetailedStatus | None = None
    currency_code: str | None = None
    cost: OrderCost | None = None
    items: list[OrderItem] = Field(default_factory=list)
    address: OrderAddress | None = None
    customer: Customer | None = None
    contacts: list[Contact] = Field(default_factory=list)
    shipping: OrderShipping | None = None
    packages: list[Package] = Field(default_factory=list)
    payment: list[Payment] = Field(default_factory=list)
    vouchers: list[Voucher] = Field(default_factory=list)
    voucher: Any = None
    promotion: list[Any] = Field(default_factory=list)
    membership_discount: MembershipDiscount | None = None
    loyalty_card: LoyaltyCard | None = None
    shop_country: ShopCountry | None = None
    channel: Channel | None = None
    legacy_custom_data: FreeForm = None
    confirmed_at: Timestamp | None = None
    invoiced_at: Timestamp | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None

    @property
    def shop_key(self) -> str | None:
        """``shopCountry.shopKey``."""
        return self.shop_country.shop_key if self.shop_country else None

    @property
    def country_code(self) -> str | None:
        """``shopCountry.countryCode`` (alpha-2)."""
        return self.shop_country.country_code if self.shop_country else None

    @property
    def order_code(self) -> str | None:
        """``detailedStatus.order.code`` (e.g. ``order_delegated``)."""
        ds = self.detailed_status
        return ds.order.code if ds and ds.order else None

    def item(self, item_id: int) -> OrderItem:
        """The item with this id; ``KeyError`` if absent."""
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def shipped_item_ids(self) -> set[int]:
        """Ids of the units that shipped: a ``shippedAt`` time, or linked to a shipped package
        (:attr:`Package.is_shipped`). Item statuses are not read (see :attr:`OrderItem.is_shipped`)."""
        parcels = {p.id for p in self.packages if p.id is not None and p.is_shipped}
        return {
            item.id
            for item in self.items
            if item.is_shipped or (item.package_id is not None and item.package_id in parcels)
        }

    def items_by_sku(self) -> dict[str | None, list[OrderItem]]:
        """Units grouped by SKU (variant reference key), in order of appearance."""
        groups: dict[str | None, list[OrderItem]] = {}
        for item in self.items:
            groups.setdefault(item.sku, []).append(item)
        return groups


class OrderStatusResponse(ScayleModel):
    """``GET …/orders/{id}/status`` → ``{status, detailedStatus}``."""

    status: str | None = None
    detailed_status: DetailedStatus | None = None


# --------------------------------------------------------------------------------------------
# Collections and errors
# --------------------------------------------------------------------------------------------

T = TypeVar("T")


class Cursor(ScayleModel):
    """``cursor`` of a collection page; ``next`` is ``None`` on the last page."""

    next: str | None = None


class CursorPage(ScayleModel, Generic[T]):
    """``{"entities": [...], "cursor": {"next": ...}}``; the cursor may be absent."""

    entities: list[T] = Field(default_factory=list)
    cursor: Cursor | None = None
    _rejected: list[tuple[Any, str]] = PrivateAttr(default_factory=list)

    @property
    def rejected(self) -> list[tuple[Any, str]]:
        """Entities of this page the model refused, as ``(id or None, reason)``; they are not in
        :attr:`entities` (set by the client when it parses a page entity by entity)."""
        return self._rejected

    @property
    def next_cursor(self) -> str | None:
        """The opaque cursor of the next page, or ``None`` on the last page."""
        return self.cursor.next if self.cursor else None


class OrderCollection(CursorPage[Order]):
    """A page of orders."""


class ApiErrorEntry(ScayleModel):
    """One element of ``errors``; ``context`` is free-form (object, list or null)."""

    error_key: str | None = None
    message: str | None = None
    context: Any = None


class ApiErrorBody(ScayleModel):
    """Error body ``{"errors": [{"errorKey", "message", "context"}]}``."""

    errors: list[ApiErrorEntry] = Field(default_factory=list)

    @property
    def error_key(self) -> str | None:
        """The first error's key (``RATE_LIMIT_EXCEED``, ...)."""
        return self.errors[0].error_key if self.errors else None

    @property
    def message(self) -> str:
        """All messages joined by ``"; "``."""
        return "; ".join(e.message or e.error_key or "" for e in self.errors if e)


# --------------------------------------------------------------------------------------------
# Fulfilment request bodies
# --------------------------------------------------------------------------------------------


class ShipmentItem(ScayleRequest):
    """One shipped unit: ``{orderItemId, returnKey}``."""

    order_item_id: int
    return_key: str | None = None


class ShipmentCreate(ScayleRequest):
    """Body of ``POST /fulfillment/shipments`` (one call per physical package)."""

    shop_key: str
    country_code: str
    order_id: int
    shipment_key: str
    carrier: str | None = None
    delivery_date: Timestamp | None = None
    return_ident_code: str | None = None
    merchant_reference_key: str | None = None
    items: list[ShipmentItem]


Shipment = ShipmentCreate
"""Alias: a shipment is represented by its create body."""


class CancellationItem(ScayleRequest):
    """One cancelled unit."""

    order_item_id: int


class CancellationCreate(ScayleRequest):
    """Body of ``POST /fulfillment/cancellations``."""

    shop_key: str
    country_code: str
    order_id: int
    items: list[CancellationItem]
    merchant_reference_key: str | None = None


class ReturnItem(ScayleRequest):
    """One returned unit, matched by ``returnKey``."""

    return_key: str
    received: Timestamp | None = None
    return_reason: str | None = None
    merchant_reference_key: str | None = None


class ReturnItemsCreate(RootModel[list[ReturnItem]]):
    """Body of ``POST /fulfillment/return-items``: a JSON **array** of :class:`ReturnItem`."""

    def to_wire(self) -> list[dict[str, Any]]:
        """The array as wire JSON."""
        result: list[dict[str, Any]] = self.model_dump(
            by_alias=True, exclude_none=True, mode="json"
        )
        return result

    def __iter__(self) -> Iterator[ReturnItem]:  # type: ignore[override]
        return iter(self.root)

    def __len__(self) -> int:
        return len(self.root)


class ReferenceKeyUpdate(ScayleRequest):
    """Body of ``PUT …/orders/{orderId}/reference-key``."""

    reference_key: str


class BillingStatusItem(ScayleRequest):
    """Per-item billing code."""

    id: int
    code: str


class BillingStatusUpdate(ScayleRequest):
    """Body of ``PATCH …/orders/{id}/billing-status``."""

    code: str
    reason: str | None = None
    items: list[BillingStatusItem] | None = None


# --------------------------------------------------------------------------------------------
# Stock and warehouses
# --------------------------------------------------------------------------------------------


class VariantStock(ScayleModel):
    """Stored stock of a variant in one warehouse (``POST``/``GET /variants/{id}/stocks``)."""

    quantity: int
    warehouse_reference_key: str | None = None
    changed_at: Timestamp | None = None
    sellable_without_stock: bool | None = None
    merchant_reference_key: str | None = None
    expected_availability_at: date | None = None


class VariantStockCreate(ScayleRequest):
    """Body of ``POST /variants/{id}/stocks``: absolute sellable ``quantity`` at ``changedAt``."""

    quantity: int
    warehouse_reference_key: str
    changed_at: Timestamp
    sellable_without_stock: bool | None = None
    merchant_reference_key: str | None = None
    expected_availability_at: date | None = None


class VariantStockPage(CursorPage[VariantStock]):
    """``{"entities": [VariantStock, ...]}`` (one per warehouse)."""


class WarehouseMerchant(ScayleModel):
    """``warehouses[].merchants[]``."""

    id: int | None = None
    reference_key: str | None = None
    name: str | None = None
    priority: int | None = None


class PackageGroup(ScayleModel):
    """``packageGroup``."""

    id: int | None = None


class WarehouseShopCountry(ScayleModel):
    """``warehouses[].shopCountries[]``."""

    shop_key: str | None = None
    country_code: str | None = None
    priority: int | None = None
    package_group: PackageGroup | None = None


class Warehouse(ScayleModel):
    """A warehouse; orders reference it by numeric ``id``, stock by ``reference_key``."""

    id: int | None = None
    reference_key: str | None = None
    is_zeos_warehouse: bool | None = None
    merchants: list[WarehouseMerchant] = Field(default_factory=list)
    shop_countries: list[WarehouseShopCountry] = Field(default_factory=list)


class Carrier(ScayleModel):
    """A carrier (``GET /carriers``)."""

    id: int | None = None
    key: str | None = None
    name: str | None = None
    tracking_url: str | None = None


class BulkRequestCreated(ScayleModel):
    """``201 {"key": 123}`` of a bulk request."""

    key: int


# --------------------------------------------------------------------------------------------
# Webhooks
# --------------------------------------------------------------------------------------------


class WebhookMeta(ScayleModel):
    """Current envelope ``meta``."""

    tenant_key: str | None = None
    x_request_id: str | None = None


class WebhookLocale(ScayleModel):
    """Older envelope ``locale``; ``country_code`` is alpha-3."""

    app_id: int | None = None
    country_code: str | None = None
    currency_code: str | None = None
    language_code: str | None = None


_ORDER_EVENT_PREFIXES = ("order-", "payment-", "package-")


class WebhookEvent(ScayleModel):
    """A webhook envelope, either shape of §5.3.

    Current: ``{key, meta, occurredAt, type, version, payload}``; older:
    ``{key, locale, occurredAt, type, payload}``. Use :attr:`dedupe_key` to de-duplicate,
    :attr:`event_name` to dispatch and :attr:`order_id` / :attr:`entity_id` to find the subject.
    """

    key: str | None = None
    type: str | None = Field(default=None, validation_alias=AliasChoices("type", "event"))
    version: int | None = None
    occurred_at: Timestamp | None = None
    meta: WebhookMeta | None = None
    locale: WebhookLocale | None = None
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("payload", mode="before")
    @classmethod
    def _payload_or_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @property
    def event_name(self) -> str:
        """The event type (e.g. ``order-confirmed``); empty string when absent."""
        return self.type or ""

    @property
    def shape(self) -> str:
        """``"current"`` (has ``meta``) or ``"legacy"`` (has ``locale`` or neither)."""
        return "current" if self.meta is not None else "legacy"

    @property
    def dedupe_key(self) -> str:
        """The envelope ``key``; without one, a SHA-256 of type, time and payload.

        The connector de-duplicates with :func:`scayle_orderwise.scayle.webhooks.dedupe_key`
        instead, which hashes the whole envelope when there is no ``key`` (two envelopes that
        differ only in ``meta`` or ``version`` share this value)."""
        if self.key:
            return self.key
        basis = json.dumps(
            [self.type, self.occurred_at.isoformat() if self.occurred_at else None, self.payload],
            sort_keys=True,
            default=str,
        )
        return "sha256:" + hashlib.sha256(basis.encode()).hexdigest()

    @property
    def is_order_event(self) -> bool:
        """True for order/package/payment events."""
        return self.event_name.startswith(_ORDER_EVENT_PREFIXES)

    def order_payload(self) -> dict[str, Any] | None:
        """The order JSON inside the payload (``payload.order`` or the payload itself)."""
        nested = self.payload.get("order")
        if isinstance(nested, dict):
            return nested
        if self.is_order_event and "id" in self.payload:
            return self.payload
        return None

    @property
    def order_id(self) -> int | None:
        """The SCAYLE order id this event is about, or ``None``."""
        order = self.order_payload()
        candidates: list[Any] = []
        if order is not None:
            candidates.append(order.get("id"))
        candidates.append(self.payload.get("orderId"))
        items = self.payload.get("items")
        if isinstance(items, list):
            candidates.extend(i.get("orderId") for i in items if isinstance(i, dict))
        for value in candidates:
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
            # ASCII only: str.isdigit() also accepts "²" (which int() refuses) and other scripts.
            if (
                isinstance(value, str)
                and value.isascii()
                and value.isdigit()
                and len(value) <= 20
                and int(value) > 0
            ):
                return int(value)
        return None

    @property
    def entity_id(self) -> str | None:
        """The subject's id as a string: the order id, else the variant/product/entity id."""
        if (order_id := self.order_id) is not None:
            return str(order_id)
        for name in ("productVariant", "product", "customer"):
            entity = self.payload.get(name)
            if isinstance(entity, dict) and entity.get("id") is not None:
                return str(entity["id"])
        value = self.payload.get("id")
        return None if value is None else str(value)

    def order(self) -> Order | None:
        """The payload's order validated as :class:`Order` (``None`` if there is none)."""
        data = self.order_payload()
        return None if data is None else Order.model_validate(data)


class WebhookEventDefinition(ScayleModel):
    """``GET /webhooks/events`` entity."""

    event: str | None = None
    version: int | None = None
    description: str | None = None
    is_deprecated: bool | None = None
    is_blocking: bool | None = None
    supported_filters: dict[str, Any] | None = None


class WebhookSubscriptionCreate(ScayleRequest):
    """Body of ``POST /webhooks/subscriptions``; ``url`` may embed credentials (not in repr)."""

    event: str
    version: int
    url: str = Field(repr=False)
    filters: list[dict[str, Any]] | None = None


class WebhookSubscription(ScayleModel):
    """A webhook subscription (SCAYLE masks URL credentials as ``***``)."""

    id: int | None = None
    event: str | None = None
    version: int | None = None
    url: str | None = Field(default=None, repr=False)
    filters: list[dict[str, Any]] | None = None
