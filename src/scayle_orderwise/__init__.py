"""scayle-orderwise: exactly-once, penny-accurate integration between SCAYLE and OrderWise."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import errors
from .errors import ConnectorError, CurrencyMismatchError, MappingError
from .money import Money

try:
    __version__ = version("scayle-orderwise")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"

__all__ = [
    "ConnectorError",
    "CurrencyMismatchError",
    "MappingError",
    "Money",
    "__version__",
    "errors",
]
