"""SCAYLE shipping address → OrderWise ``customerDeliveryAddress``."""

from __future__ import annotations

from ..orderwise.models import DeliveryAddress
from ..scayle.models import Address, Order
from .config import MappingConfig
from .countries import COUNTRY_NAMES, alpha2

__all__ = ["delivery_address_from"]

# Countries where the house number is written before the street ("12 High Street").
_NUMBER_FIRST = frozenset({"GB", "IE", "US", "CA", "AU", "NZ", "FR", "GG", "JE", "IM", "GI", "LU"})


def _street_line(address: Address, country: str | None) -> str | None:
    street = (address.street or "").strip()
    number = (address.house_number or "").strip()
    if not number:
        return street or None
    if not street:
        return number
    return f"{number} {street}" if country in _NUMBER_FIRST else f"{street} {number}"


def delivery_address_from(
    order: Order, config: MappingConfig, delivery_method_id: int | None = None
) -> DeliveryAddress | None:
    """The delivery address of an order (shipping address, else billing); ``None`` without either.

    Country codes become ISO alpha-2 (``UnknownCountryError`` for a code outside the table and
    ``extra_country_codes``); the recipient is the delivery and contact name, a B2B company name
    (``customer.company.name``) the delivery name; a collection point goes into ``address3``.
    """
    parts = order.address
    address = parts and (parts.shipping or parts.billing)
    if not address:
        return None
    country = (
        alpha2(address.country_code, config.extra_country_codes) if address.country_code else None
    )
    person = address.recipient.full_name if address.recipient else ""
    customer = order.customer
    company = customer.company.name if customer and customer.company else None
    point = address.collection_point
    point_text = None
    if point and (point.description or point.key):
        point_text = " ".join(
            x for x in (point.description, f"({point.key})" if point.key else None) if x
        )
    return DeliveryAddress(
        delivery_name=company or person or None,
        contact_name=person or None,
        address1=_street_line(address, country),
        address2=address.additional or None,
        address3=point_text,
        town=address.city or None,
        county=address.state or None,
        country=COUNTRY_NAMES.get(country) if country else None,
        country_code=country,
        postcode=address.zip_code or None,
        email=customer.email if customer and customer.email else None,
        telephone=address.phone or (customer.phone if customer else None) or None,
        delivery_method_id=delivery_method_id,
    )
