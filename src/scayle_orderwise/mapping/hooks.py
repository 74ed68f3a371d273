"""Extension points of :class:`~scayle_orderwise.mapping.OrderMapper`, in the manner of the Singer SDK.

Each hook exists twice: as a method of ``OrderMapper`` that a subclass overrides, and as a keyword
argument taking a plain callable (which then wins over the method). The callables:

``resolve_sku(sku, item, order) -> str``
    The OrderWise variant code of a SCAYLE SKU (trimmed). Called once per mapped line with the line's
    first unit. Default: ``sku_map`` / identity; raise ``UnknownSkuError`` to refuse a SKU. An
    answer that is not a non-empty string is refused the same way (``UnknownSkuError``).
``resolve_tax_code(rate, sku, order) -> str``
    The OrderWise tax code of a VAT rate (``Decimal``); ``sku`` is ``None`` for fees and delivery.
    Default: ``tax_code_overrides`` then ``tax_codes``; raise ``UnknownTaxRateError`` to refuse.
    The answer must be a code the configuration knows (a key of ``tax_rate_ids`` when that table
    is set, else ``T0``-``T9``); any other answer raises ``UnknownTaxRateError``.
``delivery_method(order) -> int | None``
    The OrderWise ``deliveryMethodId``. Default: the first of the package carrier keys, the delivery
    fee's ``option`` and ``key``, and ``shipping.policy`` found in ``delivery_methods``, else
    ``default_delivery_method_id``.
``customer(order) -> CustomerRef``
    The OrderWise customer. Default: ``CustomerRef(accountNumber=config.customer_account)``.
``delivery_address(order) -> DeliveryAddress | None``
    The ``customerDeliveryAddress``. Default: from the SCAYLE shipping address.
``post_process(payload, mapped, order) -> SalesOrderCreate``
    The last word on the wire body (``payload.model_copy(update=...)``), e.g. to add special
    instructions. It must not change money: ``to_orderwise`` is for shaping, the amounts come from
    ``mapped``. This is checked: if the header amounts (``orderGross/Net/Tax``,
    ``deliveryGross/Net/Tax``, ``amountPaid``) or Σ ``itemGross`` × ``quantity`` per tax code (and
    which lines carry an ``itemGross``) differ from the body before the hook,
    ``to_orderwise`` raises ``InconsistentOrderError`` naming the change.

Hooks run inside :meth:`OrderMapper.map` (except ``post_process``, which runs in
``MappedOrder.to_orderwise``), so a hook that raises a ``MappingError`` quarantines the order before
anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, TypeAlias

from ..orderwise.models import CustomerRef, DeliveryAddress, SalesOrderCreate
from ..scayle.models import Order, OrderItem

if TYPE_CHECKING:
    from .mapper import MappedOrder

__all__ = [
    "CustomerResolver",
    "DeliveryAddressResolver",
    "DeliveryMethodResolver",
    "PostProcessor",
    "SkuResolver",
    "TaxCodeResolver",
]

SkuResolver: TypeAlias = Callable[[str, OrderItem, Order], str]
"""``resolve_sku(sku, item, order) -> variant code``."""

TaxCodeResolver: TypeAlias = Callable[[Decimal, "str | None", Order], str]
"""``resolve_tax_code(rate, sku_or_None, order) -> tax code``."""

DeliveryMethodResolver: TypeAlias = Callable[[Order], "int | None"]
"""``delivery_method(order) -> deliveryMethodId or None``."""

CustomerResolver: TypeAlias = Callable[[Order], CustomerRef]
"""``customer(order) -> CustomerRef``."""

DeliveryAddressResolver: TypeAlias = Callable[[Order], "DeliveryAddress | None"]
"""``delivery_address(order) -> DeliveryAddress or None``."""

PostProcessor: TypeAlias = Callable[[SalesOrderCreate, "MappedOrder", Order], SalesOrderCreate]
"""``post_process(payload, mapped, order) -> SalesOrderCreate``."""
