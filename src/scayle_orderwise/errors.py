"""One error tree for the whole library, grouped by what the caller should do.

``ConnectorError``
    ``TransientError``           retry later with backoff (5xx, timeouts before sending, connection errors)
        ``RateLimitedError``     wait until ``reset_at`` / ``retry_after`` and retry
    ``InvalidResponseError``     the answer does not match the wire models (a malformed entity)
    ``AmbiguousOutcomeError``    the request may have been committed: look up before re-sending
    ``AuthenticationError``      credentials are wrong or expired (401)
        ``PermissionDeniedError``  the credentials lack a scope (403)
    ``NotFoundError``            the resource does not exist (404)
    ``BadRequestError``          the server refused the input (400/409/422); do not retry as is
        ``UnknownVariantError``  OrderWise does not know a variant code named in the order
    ``ConfigError``              the library is configured wrongly
    ``MappingError``             an order cannot be mapped; quarantine it with the reason
        ``UnknownSkuError``, ``UnknownTaxRateError``, ``InconsistentOrderError``,
        ``MixedCurrencyError``, ``NegativeAmountError``, ``NonIntegralAmountError``
    ``StoreError``               the idempotency store failed or a claim was lost
        ``ClaimLostError``
    ``WebhookError``             a webhook could not be authenticated or parsed
        ``WebhookAuthError``, ``MalformedWebhookError`` (``WebhookTooLargeError``)
``CurrencyMismatchError``        (also a ``ValueError``) two currencies were mixed in arithmetic

Messages never contain secrets: clients redact tokens and passwords before raising.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

__all__ = [
    "AmbiguousOutcomeError",
    "ApiError",
    "AuthenticationError",
    "BadRequestError",
    "ClaimLostError",
    "ConfigError",
    "ConnectorError",
    "CurrencyMismatchError",
    "InconsistentOrderError",
    "InvalidResponseError",
    "MalformedWebhookError",
    "MappingError",
    "MixedCurrencyError",
    "NegativeAmountError",
    "NonIntegralAmountError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "StoreError",
    "TransientError",
    "UnknownSkuError",
    "UnknownTaxRateError",
    "UnknownVariantError",
    "WebhookAuthError",
    "WebhookError",
    "WebhookTooLargeError",
]


class ConnectorError(Exception):
    """Base class of every error the library raises on purpose."""


class ApiError(ConnectorError):
    """An error answered by (or on the way to) a remote API.

    ``status_code`` is the HTTP status (``None`` for transport errors), ``error_key`` the server's
    machine-readable key (SCAYLE ``errorKey``), ``method``/``path`` the request without query secrets.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_key: str | None = None,
        method: str | None = None,
        path: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error_key = error_key
        self.method = method
        self.path = path
        self.body = body

    def __str__(self) -> str:
        parts = [self.message]
        if self.status_code is not None:
            parts.append(f"(HTTP {self.status_code}")
            if self.error_key:
                parts[-1] += f", {self.error_key}"
            parts[-1] += ")"
        if self.method and self.path:
            parts.append(f"[{self.method} {self.path}]")
        return " ".join(parts)


class InvalidResponseError(ApiError):
    """The server answered with a body the wire models refuse (e.g. one malformed order).

    ``entity_id`` names the entity when it could be read, so that one bad record can be set aside
    (quarantined) while the rest of a page is used.
    """

    def __init__(self, message: str, *, entity_id: object = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.entity_id = entity_id


class TransientError(ApiError):
    """A temporary failure: the request did not take effect; retry later with backoff."""


class RateLimitedError(TransientError):
    """429: wait until ``reset_at`` (or ``retry_after`` seconds) before the next call in this scope."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        reset_at: datetime | None = None,
        scope: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.reset_at = reset_at
        self.scope = scope


class AmbiguousOutcomeError(ApiError):
    """The request may or may not have been committed (timeout or 5xx after sending a create).

    Never re-send blindly: look the object up first and adopt it if it exists.
    """


class AuthenticationError(ApiError):
    """401: the credentials are wrong, expired or missing."""


class PermissionDeniedError(AuthenticationError):
    """403: the credentials are valid but lack the needed scope."""


class NotFoundError(ApiError):
    """404: the resource does not exist."""


class BadRequestError(ApiError):
    """The server refused the input (400, 409, 422); sending it again unchanged will fail again."""


class UnknownVariantError(BadRequestError):
    """OrderWise answered 400 because it does not know a variant code in the order."""

    def __init__(self, message: str, *, variant_code: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.variant_code = variant_code


class ConfigError(ConnectorError, ValueError):
    """The library is configured wrongly (missing setting, invalid mapping table, ...)."""


class MappingError(ConnectorError, ValueError):
    """A SCAYLE order cannot be turned into an OrderWise sales order; quarantine it with the reason."""

    reason_code: str = "mapping_error"


class UnknownSkuError(MappingError):
    """A SKU is not in the configured ``sku_map``."""

    reason_code = "unknown_sku"

    def __init__(self, sku: str, message: str | None = None) -> None:
        super().__init__(message or f"unknown SKU {sku!r}: not in the configured sku_map")
        self.sku = sku


class UnknownTaxRateError(MappingError):
    """A VAT rate has no OrderWise tax code in ``tax_codes``."""

    reason_code = "unknown_tax_rate"

    def __init__(self, rate: object, message: str | None = None) -> None:
        super().__init__(message or f"unknown VAT rate {rate}: no OrderWise tax code configured")
        self.rate = rate


class InconsistentOrderError(MappingError):
    """The order's amounts do not add up under any reading the policy allows."""

    reason_code = "inconsistent_totals"


class MixedCurrencyError(MappingError):
    """An order mixes currencies."""

    reason_code = "mixed_currency"


class NegativeAmountError(MappingError):
    """A price or fee is negative where only sales amounts are allowed."""

    reason_code = "negative_amount"


class NonIntegralAmountError(MappingError):
    """An amount that must be whole minor units is fractional."""

    reason_code = "non_integral_amount"


class StoreError(ConnectorError):
    """The idempotency store failed."""


class ClaimLostError(StoreError):
    """A worker tried to move a record it no longer holds (its lease expired and another took it)."""


class WebhookError(ConnectorError):
    """A webhook request could not be accepted."""


class WebhookAuthError(WebhookError):
    """The webhook's credentials did not match."""


class MalformedWebhookError(WebhookError, ValueError):
    """The webhook body is not a valid SCAYLE envelope, or names no usable order (answer 400)."""


class WebhookTooLargeError(MalformedWebhookError):
    """The webhook body is larger than ``scayle.webhook_max_body_bytes`` (answer 413).

    A subclass of :class:`MalformedWebhookError`, so a receiver that maps that error to 400 still
    refuses the body; ``limit`` is the configured maximum in bytes.
    """

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class CurrencyMismatchError(ConnectorError, ValueError):
    """Two amounts in different currencies were combined."""
