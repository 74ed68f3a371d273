"""Realistic SCAYLE order JSON for tests, demos and the sandbox.

``make_order`` builds an order consistent with the SCAYLE model (``reference/scayle-admin-api.md``
§2): one item per unit, unit prices whose ``withTax`` already contains item reductions, VAT split
half-up per unit, fees in ``cost.appliedFees``, an order-level voucher in
``cost.appliedReductions`` (not inside item prices), and ``cost.withTax`` that adds up::

    items + fees - applied voucher == cost.withTax

Rates are given as ``Decimal`` or ``str`` (``"0.20"``) and written to JSON as numbers (``0.2``),
exactly as SCAYLE sends them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from ..money import split_gross

__all__ = ["Line", "make_order", "variant_id_for"]

Line = tuple[str, int, int, "str | Decimal"] | tuple[str, int, int, "str | Decimal", int]
"""``(sku, unit_gross, quantity, vat_rate)`` or with a 5th element ``undiscounted_unit_gross``."""

Fee = int | tuple[int, "str | Decimal"]


def _rate_json(rate: str | Decimal | Fraction) -> int | float:
    d = (
        Decimal(rate)
        if not isinstance(rate, Fraction)
        else Decimal(rate.numerator) / rate.denominator
    )
    return int(d) if d == d.to_integral_value() else float(d)


def _rate_decimal(rate: str | Decimal) -> Decimal:
    d = Decimal(str(rate).strip())
    if d < 0:
        raise ValueError(f"VAT rate must not be negative, got {rate}")
    return d


def variant_id_for(sku: str) -> int:
    """A stable numeric variant id for ``sku`` (the same in every run)."""
    return 50000 + int(hashlib.sha256(sku.encode()).hexdigest()[:6], 16) % 900000


def _key(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:16]


def _price(gross: int, rate: Decimal, undiscounted: int | None) -> dict[str, Any]:
    net, vat = split_gross(gross, rate)
    price: dict[str, Any] = {
        "withTax": gross,
        "withoutTax": net,
        "tax": {"vat": {"amount": vat, "rate": _rate_json(rate)}},
        "undiscountedWithTax": undiscounted if undiscounted is not None else gross,
        "undiscountedWithOutTax": split_gross(undiscounted, rate)[0]
        if undiscounted is not None
        else net,
        "appliedReductions": [],
    }
    if undiscounted is not None and undiscounted != gross:
        if undiscounted < gross:
            raise ValueError("the undiscounted price must not be below the unit price")
        price["appliedReductions"] = [
            {
                "category": "sale",
                "type": "absolute",
                "amount": {"absoluteWithTax": undiscounted - gross, "relative": 0},
            }
        ]
    return price


def _fee(category: str, key: str, option: str, gross: int, rate: Decimal) -> dict[str, Any]:
    net, vat = split_gross(gross, rate)
    return {
        "category": category,
        "key": key,
        "option": option,
        "amount": {"withTax": gross, "withoutTax": net},
        "tax": {"vat": {"amount": vat, "rate": _rate_json(rate)}},
    }


def _delivery_entries(shipping: Fee | Sequence[Fee] | None) -> list[tuple[int, Decimal]]:
    """Normalise ``shipping``: ``499``, ``(499, "0.20")`` or a list of those."""
    if shipping is None:
        return []
    if isinstance(shipping, int):
        return [(shipping, Decimal("0.2"))]
    if (
        isinstance(shipping, tuple)
        and len(shipping) == 2
        and isinstance(shipping[1], str | Decimal)
    ):
        return [(int(shipping[0]), _rate_decimal(shipping[1]))]
    out: list[tuple[int, Decimal]] = []
    for entry in shipping:
        out.extend(_delivery_entries(entry))
    return out


def make_order(
    order_id: int,
    lines: Sequence[Line] = (("SKU-TSHIRT-BLK-M", 2400, 2, "0.20"),),
    *,
    shipping: Fee | Sequence[Fee] | None = None,
    voucher: int | None = None,
    voucher_code: str = "SAVE",
    fees: Sequence[tuple[str, str, int, str | Decimal]] = (),
    gift_card: int | None = None,
    currency: str = "GBP",
    shop_key: str = "ac",
    country_code: str = "GB",
    warehouse_id: int = 12,
    status: str = "payment_reserved",
    order_code: str = "order_confirmed",
    created_at: datetime | None = None,
    email: str | None = None,
    reference_key: str | None = None,
    payment_key: str = "adyen_creditcard",
) -> dict[str, Any]:
    """A SCAYLE order as JSON (a ``dict``) consistent with the model.

    * ``lines``: ``(sku, unit_gross, qty, rate)`` or ``(sku, unit_gross, qty, rate,
      undiscounted_unit_gross)``; each becomes ``qty`` items (one per unit, ids
      ``order_id * 1000 + n``). A 5th element adds an item-level ``sale`` reduction, already inside
      ``withTax``.
    * ``shipping``: a delivery fee gross (at 20 %), or ``(gross, rate)``, or a list of those for
      several delivery fees at different rates.
    * ``voucher``: an order-level absolute voucher (gross), listed in ``cost.appliedReductions`` and
      ``vouchers``; the applied part is ``min(voucher, goods total)`` and is deducted from
      ``cost.withTax`` (it is *not* inside item prices).
    * ``fees``: other fees ``(category, key, gross, rate)``, e.g. ``("payment",
      "base_payment_service_cost", 150, "0.20")``.
    * ``gift_card``: part of the total paid by gift card (a payment with ``isGiftCard``).
    * ``cost.withoutTax`` and ``cost.tax.vat.amount`` are indicative when a voucher is applied
      (the voucher's VAT is split at the rate of the first line).
    """
    if not lines:
        raise ValueError("an order needs at least one line")
    created = created_at or datetime(2026, 5, 4, 9, 0, tzinfo=UTC) + timedelta(
        seconds=order_id % 86400
    )
    stamp = created.isoformat(timespec="seconds")
    confirmed = (created + timedelta(minutes=2)).isoformat(timespec="seconds")
    customer_email = email or f"customer{order_id}@example.com"

    items: list[dict[str, Any]] = []
    n = 0
    goods_gross = goods_net = goods_vat = 0
    for line in lines:
        sku, unit_gross, qty, rate_raw = line[0], line[1], line[2], line[3]
        undiscounted = line[4] if len(line) > 4 else None
        rate = _rate_decimal(rate_raw)
        if qty < 1:
            raise ValueError(f"quantity must be at least 1, got {qty} for {sku}")
        if unit_gross < 0:
            raise ValueError(f"unit price must not be negative, got {unit_gross} for {sku}")
        for _ in range(qty):
            n += 1
            item_id = order_id * 1000 + n
            price = _price(unit_gross, rate, undiscounted)
            goods_gross += price["withTax"]
            goods_net += price["withoutTax"]
            goods_vat += price["tax"]["vat"]["amount"]
            items.append(
                {
                    "id": item_id,
                    "key": _key(order_id, item_id),
                    "status": "available",
                    "currency": currency,
                    "variant": {
                        "id": variant_id_for(sku),
                        "referenceKey": sku,
                        "stock": {"supplierId": 1},
                    },
                    "product": {
                        "id": variant_id_for(sku) // 10,
                        "name": sku.replace("-", " ").title(),
                    },
                    "merchant": {"id": 1, "referenceKey": "acme"},
                    "warehouseId": warehouse_id,
                    "reservationKey": f"r-{_key('res', item_id)[:8]}",
                    "price": price,
                    "createdAt": stamp,
                    "updatedAt": confirmed,
                }
            )

    first_rate = _rate_decimal(lines[0][3])
    applied_fees: list[dict[str, Any]] = []
    for i, (gross, rate) in enumerate(_delivery_entries(shipping)):
        key = "base_shipping_service_cost" if i == 0 else f"shipping_service_cost_{i}"
        applied_fees.append(_fee("delivery", key, "deliveryCosts", gross, rate))
    for category, key, gross, fee_rate in fees:
        applied_fees.append(_fee(category, key, category, gross, _rate_decimal(fee_rate)))
    fee_gross = sum(f["amount"]["withTax"] for f in applied_fees)
    fee_net = sum(f["amount"]["withoutTax"] for f in applied_fees)
    fee_vat = sum(f["tax"]["vat"]["amount"] for f in applied_fees)
    delivery_gross = sum(
        f["amount"]["withTax"] for f in applied_fees if f["category"] == "delivery"
    )

    reductions: list[dict[str, Any]] = []
    vouchers: list[dict[str, Any]] = []
    applied = 0
    voucher_net = voucher_vat = 0
    if voucher:
        applied = min(voucher, goods_gross)
        voucher_net, voucher_vat = split_gross(applied, first_rate)
        reductions.append(
            {
                "category": "voucher",
                "type": "absolute",
                "amount": {"absoluteWithTax": voucher, "relative": 0},
                "code": voucher_code,
                "displayName": voucher_code,
            }
        )
        vouchers.append(
            {
                "id": order_id,
                "voucherId": 7000 + order_id % 1000,
                "code": voucher_code,
                "type": "absolute",
                "value": voucher,
                "applicableItems": [{"key": i["key"], "isApplied": True} for i in items],
            }
        )

    total = goods_gross + fee_gross - applied
    total_vat = goods_vat + fee_vat - voucher_vat
    total_net = goods_net + fee_net - voucher_net
    payments: list[dict[str, Any]] = []
    if gift_card:
        card = min(gift_card, total)
        payments.append(
            {
                "amount": card,
                "key": "giftcard",
                "transactionKey": f"gc-{order_id}",
                "data": {},
                "isGiftCard": True,
            }
        )
        total_card = total - card
    else:
        total_card = total
    if total_card or not payments:
        payments.append(
            {
                "amount": total_card,
                "key": payment_key,
                "transactionKey": f"tx-{_key('tx', order_id)[:6]}",
                "data": {},
                "isGiftCard": False,
            }
        )

    country3 = {"GB": "GBR", "DE": "DEU", "AT": "AUT", "FR": "FRA", "NL": "NLD"}.get(
        country_code.upper(), country_code.upper()
    )
    address = {
        "id": 5000 + order_id % 1000,
        "street": "High Street",
        "houseNumber": "12",
        "additional": None,
        "zipCode": "LS1 4AP",
        "city": "Leeds",
        "countryCode": country3,
        "state": None,
        "phone": None,
        "isDefault": {"billing": True, "shipping": True},
        "recipient": {
            "firstName": "Jane",
            "lastName": "Doe",
            "gender": "f",
            "title": None,
            "type": "personal",
        },
    }
    return {
        "id": order_id,
        "referenceKey": reference_key,
        "publicKey": f"{shop_key.upper()}-{order_id}",
        "basketKey": f"basket-{_key('basket', order_id)[:8]}",
        "campaignKey": None,
        "status": status,
        "detailedStatus": {
            "order": {"code": order_code, "name": order_code.replace("order_", "").title()},
            "billing": {"code": "billing_payment_pending", "name": "Payment reserved"},
            "shipping": {"code": "shipping_open", "name": "Open"},
        },
        "currencyCode": currency,
        "confirmedAt": confirmed,
        "createdAt": stamp,
        "updatedAt": confirmed,
        "invoicedAt": None,
        "shopCountry": {
            "id": 17,
            "shopKey": shop_key,
            "countryCode": country_code,
            "defaultLanguageCode": "en_GB",
            "supportedLanguageCodes": ["en_GB"],
            "currencyCode": currency,
            "active": True,
            "deleted": False,
        },
        "channel": None,
        "customer": {
            "id": 8000 + order_id % 1000,
            "referenceKey": None,
            "publicKey": f"customer-{_key('c', order_id)[:4]}",
            "firstName": "Jane",
            "lastName": "Doe",
            "email": customer_email,
            "type": "personal",
            "groups": [],
            "status": {"isActive": True, "isGuestCustomer": False},
        },
        "address": {"billing": dict(address), "shipping": {**address, "collectionPoint": None}},
        "contacts": [],
        "cost": {
            "withTax": total,
            "withoutTax": total_net,
            "tax": {"vat": {"amount": total_vat}},
            "appliedFees": applied_fees,
            "appliedReductions": reductions,
            "withTaxWithMembershipDiscountWithoutServiceCosts": total - fee_gross,
            "withoutTaxWithMembershipDiscount": total_net,
            "costCapture": total - (min(gift_card, total) if gift_card else 0),
            "hasExternalPrices": False,
        },
        "shipping": {
            "policy": "least_packages",
            "deliveryCosts": delivery_gross,
            "expressDeliveryCosts": 0,
        },
        "payment": payments,
        "vouchers": vouchers,
        "promotion": [],
        "packages": [],
        "items": items,
    }
