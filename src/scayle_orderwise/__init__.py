"""scayle-orderwise: exactly-once, penny-accurate integration between SCAYLE and OrderWise."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scayle-orderwise")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"

from . import errors  # after __version__: the clients read it for their User-Agent
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
