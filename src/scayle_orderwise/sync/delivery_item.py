"""Start-up check that OrderWise holds the service item delivery charges are booked to.

With ``delivery_booking = "lines"`` (the default) every delivery charge reaches OrderWise as lines
of ``delivery_variant_code`` (``CARRIAGE`` unless configured), one per tax code, so OrderWise books
the delivery VAT per code exactly as mapped (P10). If that item does not exist, OrderWise refuses
every order with a delivery charge; this check says so once, at start-up, instead.

OrderWise has no documented look-up of one variant by code; the check walks ``GET stock/variants``
(the variant index, which lists non-stock items too [inferred]) until it finds the code, and then
remembers the code in the ledger (a cursor), so later starts do not walk the list again.
"""

from __future__ import annotations

import logging

from ..errors import ApiError, ConfigError
from ..mapping import MappingConfig
from ..orderwise.client import OrderwiseClient
from ..store import IdempotencyStore

__all__ = ["CHECKED_CURSOR", "check_delivery_item"]

logger = logging.getLogger("scayle_orderwise.setup")

CHECKED_CURSOR = "setup:delivery_variant_code"
"""Ledger cursor holding the delivery item code last found in OrderWise."""


def check_delivery_item(
    orderwise: OrderwiseClient, store: IdempotencyStore, config: MappingConfig
) -> bool:
    """Raise :class:`ConfigError` when OrderWise lacks the delivery item the mapping books to.

    Returns ``True`` when the item is known to exist (found now or on an earlier start), ``False``
    when there is nothing to check (``delivery_booking = "header"``) or OrderWise could not be
    asked (logged as a warning; the orders flow then reports any refusal itself).
    """
    code = config.delivery_variant_code
    if not config.delivery_as_lines or code is None:
        return False
    if store.get_cursor(CHECKED_CURSOR) == code:
        return True
    try:
        found = any(row.variant_code == code for row in orderwise.iter_stock_variants())
    except ApiError as exc:
        logger.warning("could not check the OrderWise delivery item %r: %s", code, exc)
        return False
    if not found:
        raise ConfigError(
            f"OrderWise has no item {code!r} to book delivery charges to: create a non-stock "
            f"service item with the code {code} in OrderWise (delivery is sent as one line of it "
            "per VAT code, so mixed baskets book the right delivery VAT), or set [mapping] "
            "delivery_variant_code to the code of your carriage item"
        )
    store.set_cursor(CHECKED_CURSOR, code)
    return True
