"""SCAYLE order → OrderWise sales order, to the penny (DESIGN §3 mapping, money policy P1–P14).

``OrderMapper(MappingConfig(...), **hooks).map(order)`` gives a :class:`MappedOrder` in int minor
units; ``mapped.to_orderwise()`` gives the ``SalesOrderCreate`` wire body. Extension points are in
:mod:`.hooks`; credits for returned or cancelled units (P13) in :mod:`.credits`.
"""

from __future__ import annotations

from .config import (
    DEFAULT_REFERENCE_FORMAT,
    DEFAULT_TAX_CODES,
    MappingConfig,
    external_reference,
    parse_external_reference,
)
from .credits import (
    CreditLine,
    CreditNote,
    credit_for_items,
    cumulative_share,
    full_credit,
    refund_share,
)
from .discounts import VoucherDecision, allocate_discount, decide_voucher
from .errors import (
    MalformedOrderError,
    PaymentMismatchError,
    UnknownCountryError,
    UnmappedFeeError,
)
from .hooks import (
    CustomerResolver,
    DeliveryAddressResolver,
    DeliveryMethodResolver,
    PostProcessor,
    SkuResolver,
    TaxCodeResolver,
)
from .mapper import MappedFee, MappedLine, MappedOrder, MappedPayment, OrderMapper
from .shipping import DeliveryGroup, ShippingPart, delivery_groups, split_delivery
from .tax import parse_rate
from .wire import SubLine, split_line

__all__ = [
    "DEFAULT_REFERENCE_FORMAT",
    "DEFAULT_TAX_CODES",
    "CreditLine",
    "CreditNote",
    "CustomerResolver",
    "DeliveryAddressResolver",
    "DeliveryGroup",
    "DeliveryMethodResolver",
    "MalformedOrderError",
    "MappedFee",
    "MappedLine",
    "MappedOrder",
    "MappedPayment",
    "MappingConfig",
    "OrderMapper",
    "PaymentMismatchError",
    "PostProcessor",
    "ShippingPart",
    "SkuResolver",
    "SubLine",
    "TaxCodeResolver",
    "UnknownCountryError",
    "UnmappedFeeError",
    "VoucherDecision",
    "allocate_discount",
    "credit_for_items",
    "cumulative_share",
    "decide_voucher",
    "delivery_groups",
    "external_reference",
    "full_credit",
    "parse_external_reference",
    "parse_rate",
    "refund_share",
    "split_delivery",
    "split_line",
]
