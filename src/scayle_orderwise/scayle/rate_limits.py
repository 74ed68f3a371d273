"""SCAYLE's published rate limits per scope (``reference/scayle-admin-api.md`` §1.5).

Requests per one-minute window (the OpenAPI ``x-rateLimit`` block: ``maxAttempts`` with
``decayMinutes: 1``). Limits may differ per tenant: every answer's ``X-RateLimit-Limit`` header
overrides the table, and ``[scayle] rate_limits`` in the settings overrides it before any answer.
The window length is not in any header; one minute is the published default (a setting too).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["SCAYLE_RATE_LIMITS", "SCAYLE_RATE_WINDOW", "scope_limits"]

SCAYLE_RATE_WINDOW = 60.0
"""Seconds per rate-limit window (``decayMinutes: 1``)."""

SCAYLE_RATE_LIMITS: Mapping[str, int] = {
    "ordersRead": 1000,
    "ordersWrite": 300,
    "fulfillmentWrite": 300,
    "stocksRead": 2500,
    "stocksWrite": 2500,
    "reservationsWrite": 2500,
    "globalRead": 1000,
    "globalWrite": 300,
    "productRead": 1000,
    "productWrite": 300,
    "pricesRead": 2500,
    "pricesWrite": 300,
    "customersRead": 300,
    "customersWrite": 300,
    "customDataRead": 2000,
    "customDataWrite": 1000,
    "shopCategoriesRead": 1000,
    "shopCategoriesWrite": 300,
    "redirectsRead": 1000,
    "redirectsWrite": 300,
    "vouchersRead": 300,
    "vouchersWrite": 300,
    "productSortingWrite": 2500,
    "productSortingsWrite": 2500,
}
"""Requests per window by scope, as SCAYLE publishes them."""


def scope_limits(
    overrides: Mapping[str, int] | None = None, *, window: float = SCAYLE_RATE_WINDOW
) -> dict[str, tuple[int, float]]:
    """``{scope: (limit, window)}`` for a rate budget: the published table with ``overrides``."""
    if window <= 0:
        raise ValueError("the rate-limit window must be positive")
    table = {**SCAYLE_RATE_LIMITS, **dict(overrides or {})}
    for scope, limit in table.items():
        if limit < 1:
            raise ValueError(f"rate limit of {scope} must be at least 1, got {limit}")
    return {scope: (limit, window) for scope, limit in table.items()}
