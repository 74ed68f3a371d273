"""The fields of ``POST sales/order`` the library can send, and the evidence behind each name.

OrderWise publishes no API reference: the JSON names come from public third-party code that talks
to real OrderWise systems, or are inferred from its XML order import. The levels are those of
``reference/orderwise-api.md``:

- ``E``: seen in working third-party code or integrator documentation (S3, S8 below);
- ``E-weak``: seen in one source only, or that source hedges;
- ``I``: inferred (the XML import has the field; the JSON name is our guess);
- ``P``: our proposal (nothing public names it).

Sources: **S2** the ShopWise (Rixxo) integration docs, **S3** ``wmta2/EmailParser-v.0.000002``
(``orderwiseAdapter.ts``, ``orderwiseMapping.ts``), **S5** ``thelar/fbf-orderwise`` (the XML
order import), **S7** ``mdshakir-coding/orderwise_Hubspot_Integration`` (customer JSON), **S8** a
public Node WooCommerce ↔ OrderWise service. An installation that refuses a field the library sends can be told to leave it
out: ``[orderwise] inferred_header_fields = false`` drops every ``orderHeader`` field below ``E``,
``[orderwise] omit_fields`` any field by its path (see :func:`checked_omissions`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, NamedTuple

from ..errors import ConfigError

__all__ = [
    "INFERRED_HEADER_FIELDS",
    "REQUIRED_FIELDS",
    "SALES_ORDER_FIELDS",
    "FieldEvidence",
    "checked_omissions",
    "without_fields",
]


class FieldEvidence(NamedTuple):
    """Why the library believes OrderWise accepts one field."""

    level: str
    """``E``, ``E-weak``, ``I`` or ``P`` (see the module docstring)."""
    basis: str
    """Where the name comes from."""


def _e(basis: str) -> FieldEvidence:
    return FieldEvidence("E", basis)


def _i(basis: str) -> FieldEvidence:
    return FieldEvidence("I", basis)


SALES_ORDER_FIELDS: Mapping[str, FieldEvidence] = {
    "customer.id": _e("S8 sends it"),
    "customer.accountNumber": _e("S3 sends it"),
    "orderHeader.orderDate": _e("S3 and S8 send it"),
    "orderHeader.eCommerceOrderNumber": _e("S3 and S8 send it"),
    "orderHeader.systemOrderType": _e("S3 documents the values, S8 sends 1"),
    "orderHeader.deliveryMethodId": _e("S8 sends it"),
    "orderHeader.deliveryGross": _e("S8 sends it"),
    "orderHeader.deliveryNet": _i("the XML import's DeliveryNet (S5)"),
    "orderHeader.deliveryTax": _i("the XML import's DeliveryTax (S5)"),
    "orderHeader.deliveryTaxCode": _i("the XML import's DeliveryTaxCode (S5)"),
    "orderHeader.orderGross": _e("S8 sends it"),
    "orderHeader.orderNet": _i("the XML import's OrderNet (S5)"),
    "orderHeader.orderTax": _i("the XML import's OrderTax (S5)"),
    "orderHeader.amountPaid": _i("the XML import's AmountPaid (S5)"),
    "orderHeader.requiredDate": _e("S3 sends it"),
    "orderHeader.specialInstructions": _e("S3 sends it"),
    "orderHeader.customerOrderRef": _i("the XML import's CustomerOrderRef (S5)"),
    "orderHeader.currencyId": _i("customers carry currencyId (S7); S3 maps a currency id"),
    "orderHeader.pricesAsNet": _i("the XML import's PricesAsNet (S5)"),
    "customerDeliveryAddress.deliveryName": _e("S3 and S8 send it"),
    "customerDeliveryAddress.contactName": _e("S3 and S8 send it"),
    "customerDeliveryAddress.address1": _e("S3 and S8 send it"),
    "customerDeliveryAddress.address2": _e("S3 and S8 send it"),
    "customerDeliveryAddress.address3": _e("S3 and S8 send it"),
    "customerDeliveryAddress.town": _e("S3 and S8 send it"),
    "customerDeliveryAddress.county": _e("S3 and S8 send it"),
    "customerDeliveryAddress.country": _e("S3 and S8 send it"),
    "customerDeliveryAddress.countryCode": _e("S3 and S8 send it"),
    "customerDeliveryAddress.postcode": _e("S3 and S8 send it"),
    "customerDeliveryAddress.email": _e("S3 and S8 send it"),
    "customerDeliveryAddress.telephone": _e("S3 and S8 send it"),
    "customerDeliveryAddress.deliveryMethodId": _e("S8 sends it"),
    "orderLines.itemNumber": _e("S8 sends it"),
    "orderLines.variantCode": _e("S3 and S8 send it"),
    "orderLines.quantity": _e("S3 and S8 send it"),
    "orderLines.itemGross": FieldEvidence(
        "E-weak", "S8 sends it, filled with a price ex VAT: gross or net is unconfirmed"
    ),
    "orderLines.itemNet": _i("the XML import's ItemNet (S5)"),
    "orderLines.taxRateId": _e("S8 sends it"),
    "orderLines.taxCode": _i("the XML import's TaxCode (S5)"),
    "orderLines.stockLocationId": _e("S8 sends it"),
    "orderLines.calculateLineSystemPrice": _e("S3 sends it (as true)"),
    "orderLines.eCommerceItemId": _i("the XML import's eCommerceItemID (S5)"),
    "orderLines.eCommerceCode": _i("the XML import's eCommerceCode (S5)"),
    "payments.paymentMethodId": FieldEvidence(
        "P", "the payment block's JSON names are not public (S2 maps payment method ids)"
    ),
    "payments.amount": FieldEvidence("P", "the XML import's SalesPayment/Amount (S5)"),
    "payments.reference": FieldEvidence("P", "no public source"),
    "payments.description": FieldEvidence("P", "the XML import's SalesPayment/Description (S5)"),
}
"""Every field of ``POST sales/order`` the library can send, by path (``block.field``)."""

INFERRED_HEADER_FIELDS: frozenset[str] = frozenset(
    path
    for path, evidence in SALES_ORDER_FIELDS.items()
    if path.startswith("orderHeader.") and evidence.level in {"I", "P"}
)
"""The ``orderHeader`` fields whose names no public OrderWise client uses."""

REQUIRED_FIELDS: frozenset[str] = frozenset(
    {
        "orderHeader.orderDate",
        "orderHeader.eCommerceOrderNumber",
        "orderHeader.systemOrderType",
        "orderLines.itemNumber",
        "orderLines.variantCode",
        "orderLines.quantity",
    }
)
"""Fields the library cannot leave out: the order would be another order, or none."""

_BLOCKS = frozenset({"customerDeliveryAddress", "payments"})
"""Whole blocks that may be left out."""


def checked_omissions(paths: Iterable[str]) -> frozenset[str]:
    """``paths`` as a set, after checking each names a field (or an optional block) the library
    sends and is not one it needs; :class:`~scayle_orderwise.errors.ConfigError` otherwise."""
    wanted = frozenset(p.strip() for p in paths if p.strip())
    unknown = sorted(p for p in wanted if p not in SALES_ORDER_FIELDS and p not in _BLOCKS)
    if unknown:
        raise ConfigError(
            f"omit_fields names fields the library does not send: {', '.join(unknown)} (use paths "
            "such as 'orderHeader.currencyId' or 'orderLines.taxCode', or the block 'payments')"
        )
    needed = sorted(wanted & REQUIRED_FIELDS)
    if needed:
        raise ConfigError(f"omit_fields cannot leave out {', '.join(needed)}: OrderWise needs it")
    return wanted


def without_fields(body: Mapping[str, Any], paths: Collection[str]) -> dict[str, Any]:
    """A copy of a ``POST sales/order`` wire body without the fields (or blocks) in ``paths``."""
    out = dict(body)
    for path in paths:
        block, _, field = path.partition(".")
        value = out.get(block)
        if not field:
            out.pop(block, None)
        elif isinstance(value, dict):
            out[block] = {k: v for k, v in value.items() if k != field}
        elif isinstance(value, list):
            out[block] = [
                {k: v for k, v in item.items() if k != field} if isinstance(item, dict) else item
                for item in value
            ]
    return out
