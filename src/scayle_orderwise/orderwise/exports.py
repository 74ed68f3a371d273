"""The OrderWise API export definitions the connector relies on: their ids, parameters and columns.

OrderWise has no REST search or delta endpoints for orders and stock; integrators read them through
*API Export Definitions* (saved SQL run with ``POST system/export-definition/{id}``). The ids are
created by the OrderWise administrator of each installation, so they are settings. The parameter names
and column aliases below are this library's proposal [P] (``reference/orderwise-api.md`` §2.6, §3.3,
§4.3): the SQL an administrator pastes must return exactly these aliases.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = [
    "ORDER_BY_REFERENCE_COLUMNS",
    "ORDER_CHANGES_COLUMNS",
    "ORDER_DETAILS_COLUMNS",
    "REFERENCE_SEPARATOR",
    "STOCK_COLUMNS",
    "ExportDefinitions",
]


def _positive_id(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ValueError(
            f"export definition id {attribute.name} must be a positive int, got {value!r}"
        )


@attrs.frozen
class ExportDefinitions:
    """Ids of the export definitions set up in OrderWise for the connector.

    - ``order_changes`` (parameter ``@since``): one row per order line and delivery of every order
      created or amended, or despatched, at or after ``@since`` (columns: ``ORDER_CHANGES_COLUMNS``).
    - ``order_by_reference`` (``@ref``): one row per order whose e-commerce order number is ``@ref``.
    - ``orders_by_references`` (``@refs``, optional): one row per order whose e-commerce order
      number is one of the comma-separated references in ``@refs``; the orders flow looks up a
      whole claimed batch with one call. Unset: one ``order_by_reference`` call per order instead.
    - ``stock_changes`` (``@since``): free stock per variant and stock location recalculated since then.
    - ``order_details`` (``@since``, ``@until``, both nullable): one row per order line with the
      header totals, for reconciliation; the period filters on the order date.
    - ``stock_full`` (no parameters, optional): free stock of every variant, for a full resync.

    The defaults are the ids the sandbox registers.
    """

    order_changes: int = attrs.field(default=101, validator=_positive_id)
    order_by_reference: int = attrs.field(default=102, validator=_positive_id)
    stock_changes: int = attrs.field(default=103, validator=_positive_id)
    order_details: int = attrs.field(default=104, validator=_positive_id)
    stock_full: int | None = attrs.field(default=105, validator=_positive_id)
    orders_by_references: int | None = attrs.field(default=106, validator=_positive_id)


ORDER_BY_REFERENCE_COLUMNS = (
    "owOrderId",
    "owOrderNumber",
    "externalRef",
    "statusText",
    "orderDate",
    "lastAmended",
)
"""Columns of ``order_by_reference`` and ``orders_by_references`` rows."""

REFERENCE_SEPARATOR = ","
"""How the references of one ``orders_by_references`` call are joined into ``@refs``."""

ORDER_CHANGES_COLUMNS = (
    *ORDER_BY_REFERENCE_COLUMNS,
    "itemNumber",
    "variantCode",
    "quantity",
    "quantityDespatched",
    "quantityCancelled",
    "lineStatusText",
    "deliveryNumber",
    "consignment",
    "courier",
    "despatchedAt",
    "trackingUrl",
    "quantityInDelivery",
)
"""Columns of ``order_changes`` rows; delivery columns are null for a line not (yet) in a delivery."""

STOCK_COLUMNS = ("sku", "variantId", "freeStock", "stockLocationId", "lastCalculated")
"""Columns of ``stock_changes`` and ``stock_full`` rows."""

ORDER_DETAILS_COLUMNS = (
    *ORDER_BY_REFERENCE_COLUMNS,
    "currency",
    "orderGross",
    "orderNet",
    "orderVat",
    "deliveryGross",
    "deliveryNet",
    "deliveryVat",
    "discountGross",
    "itemNumber",
    "variantCode",
    "quantity",
    "itemGross",
    "lineGross",
    "lineNet",
    "lineVat",
    "taxCode",
)
"""Columns of ``order_details`` rows (header totals repeated on each line row)."""
