"""Mapping errors that the shared error tree does not have yet (all are ``MappingError``)."""

from __future__ import annotations

from ..errors import MappingError

__all__ = [
    "MalformedOrderError",
    "PaymentMismatchError",
    "UnknownCountryError",
    "UnmappedFeeError",
]


class MalformedOrderError(MappingError):
    """The order JSON does not have the shape of a SCAYLE order (a field of the wrong type, ...)."""

    reason_code = "malformed_order"


class UnmappedFeeError(MappingError):
    """A fee other than delivery has no OrderWise service code in ``fee_variant_codes``."""

    reason_code = "unmapped_fee"

    def __init__(self, fee_key: str, message: str | None = None) -> None:
        super().__init__(
            message or f"fee {fee_key!r} has no OrderWise variant code: add it to fee_variant_codes"
        )
        self.fee_key = fee_key


class UnknownCountryError(MappingError):
    """A delivery country code is not in the ISO table (nor in ``extra_country_codes``)."""

    reason_code = "unknown_country"

    def __init__(self, country_code: str, message: str | None = None) -> None:
        super().__init__(
            message
            or f"unknown delivery country code {country_code!r}: add it to extra_country_codes"
        )
        self.country_code = country_code


class PaymentMismatchError(MappingError):
    """The order's payments do not add up to its total (a payment listed twice, a gift card
    larger than the order, ...): OrderWise would record a wrong amount paid."""

    reason_code = "payments_mismatch"

    def __init__(self, paid: int, total: int, message: str | None = None) -> None:
        super().__init__(message or f"payments add up to {paid}, the order total is {total}")
        self.paid = paid
        self.total = total
