"""SCAYLE SKU → OrderWise variant code."""

from __future__ import annotations

from ..errors import MappingError, UnknownSkuError
from .config import MappingConfig

__all__ = ["normalise_sku", "variant_code_for"]


def normalise_sku(value: object) -> str:
    """A SCAYLE SKU trimmed of surrounding spaces; an empty or missing SKU is a ``MappingError``."""
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"order item has no usable SKU (variant referenceKey {value!r})")
    return value.strip()


def variant_code_for(sku: str, config: MappingConfig) -> str:
    """Default SKU rule: identity without ``sku_map``; with one, the mapped code.

    A SKU missing from ``sku_map`` raises ``UnknownSkuError`` (``strict_skus=True``) or passes
    through unchanged (``strict_skus=False``).
    """
    if config.sku_map is None:
        return sku
    code = config.sku_map.get(sku)
    if code is not None:
        return code
    if config.strict_skus:
        raise UnknownSkuError(sku)
    return sku
