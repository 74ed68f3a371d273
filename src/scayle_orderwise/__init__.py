"""scayle-orderwise: exactly-once, penny-accurate integration between SCAYLE and OrderWise."""

from __future__ import annotations

from . import errors
from ._version import __version__
from .connector import Connector
from .errors import ConnectorError, CurrencyMismatchError, MappingError
from .money import Money

__all__ = [
    "Connector",
    "ConnectorError",
    "CurrencyMismatchError",
    "MappingError",
    "Money",
    "__version__",
    "errors",
]
