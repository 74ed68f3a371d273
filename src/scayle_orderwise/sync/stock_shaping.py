"""Turn OrderWise free stock into the sellable quantity SCAYLE shows (pure functions, no I/O).

Rules, in this order, for one SKU in one SCAYLE warehouse (:class:`~scayle_orderwise.config.StockShaping`):

1. ``zero_at_or_below``: when OrderWise **free stock** (before the buffer) is at or below this
   figure, the result is 0 (Linnworks' "End When": stop selling the last few units).
2. ``buffer``: ``sellable = floor(max(0, free - buffer))``. Negative and fractional free stock
   (OrderWise allows both) therefore give 0 and whole units; all arithmetic is ``Decimal``.
3. ``percentage``: publish only that share, rounded down: ``floor(sellable * percentage / 100)``.
4. ``cap``: never show more than ``cap``.

Per-SKU rules (``InventorySettings.per_sku``, keyed by the SCAYLE SKU) override the default rule
field by field: a field set on the SKU's rule wins, a field left out falls back to the default, so
``per_sku={"MUG": StockShaping(cap=5)}`` keeps the default buffer. Set a field explicitly to its
neutral value (``cap=None``, ``buffer=0``) to switch a default off for one SKU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal

from ..config import InventorySettings, StockShaping

__all__ = ["effective_shaping", "sellable_quantity", "shape_for_sku"]

_HUNDRED = Decimal(100)


def effective_shaping(
    default: StockShaping, per_sku: Mapping[str, StockShaping], sku: str
) -> StockShaping:
    """The rule for ``sku``: the default with the fields the SKU's own rule sets laid over it."""
    own = per_sku.get(sku.strip())
    if own is None:
        return default
    overrides = {name: getattr(own, name) for name in own.model_fields_set}
    if not overrides:
        return default
    return default.model_copy(update=overrides)


def sellable_quantity(free: Decimal, rule: StockShaping) -> int:
    """The whole, non-negative quantity to publish for ``free`` OrderWise stock under ``rule``."""
    if not isinstance(free, Decimal):
        raise TypeError(f"free stock must be a Decimal, got {type(free).__name__}")
    if not free.is_finite():
        raise ValueError(f"free stock must be a finite number, got {free}")
    if rule.zero_at_or_below is not None and free <= rule.zero_at_or_below:
        return 0
    sellable = math.floor(max(Decimal(0), free - rule.buffer))
    if rule.percentage is not None:
        sellable = math.floor(Decimal(sellable) * rule.percentage / _HUNDRED)
    if rule.cap is not None:
        sellable = min(sellable, rule.cap)
    return max(0, sellable)


def shape_for_sku(free: Decimal, sku: str, settings: InventorySettings) -> int:
    """:func:`sellable_quantity` under the rule :func:`effective_shaping` picks for ``sku``."""
    return sellable_quantity(free, effective_shaping(settings.default, settings.per_sku, sku))
