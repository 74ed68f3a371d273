"""The installed version of scayle-orderwise, read once from the package metadata.

It lives at the bottom of the layers so the clients (their ``User-Agent``) and the reports (their
footer) can name the version without importing the package root, which imports the connector.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("scayle-orderwise")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"
