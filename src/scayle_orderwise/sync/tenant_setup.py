"""What the SCAYLE tenant has set up that the flows rely on: its warehouses and its carriers.

``GET /warehouses`` and ``GET /carriers`` are read once per connector (and again after
:data:`TENANT_SETUP_MAX_AGE`) and kept in a :class:`TenantSetupCache` on the flow context:

- the stock flow sends nothing for a warehouse SCAYLE does not have, and takes a 404 for a
  warehouse SCAYLE does have as a missing variant (0.1.0 told the two apart by looking for
  ``WAREHOUSE`` in the error key; only ``VARIANT_NOT_FOUND`` is evidenced), so a missing warehouse
  never looks like every SKU missing;
- :func:`~scayle_orderwise.sync.setup_check.check_setup` checks the configuration against both
  lists at start-up.

A list the token may not read (its scopes), or one SCAYLE does not answer, is ``None``: the flows
then do what 0.1.0 did, and the start-up check says it could not check.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from ..errors import AuthenticationError, ConnectorError, PermissionDeniedError, TransientError

if TYPE_CHECKING:
    from ..scayle.client import ScayleClient

__all__ = ["TENANT_SETUP_MAX_AGE", "TenantList", "TenantSetupCache"]

TENANT_SETUP_MAX_AGE = timedelta(hours=1)
"""How long a list read from SCAYLE is trusted before it is read again."""

logger = logging.getLogger("scayle_orderwise.sync")


@attrs.frozen
class TenantList:
    """One list as read from SCAYLE: the keys, or ``None`` with the reason it could not be read."""

    keys: frozenset[str] | None
    read_at: datetime
    error: str | None = None


class TenantSetupCache:
    """The tenant's warehouse and carrier keys, read on first use and kept for ``max_age``.

    Thread-safe (the stock flow pushes on a thread pool). A read that failed for a passing reason
    (timeout, 5xx, 429) is not kept, so the next use tries again; a refusal (missing scope, no
    such endpoint) is kept like an answer, so it costs one call per ``max_age``.
    """

    def __init__(self, max_age: timedelta = TENANT_SETUP_MAX_AGE) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._lists: dict[str, TenantList] = {}

    def warehouses(
        self, scayle: ScayleClient, now: datetime, *, refresh: bool = False
    ) -> TenantList:
        """Reference keys of the tenant's warehouses (``GET /warehouses``)."""
        return self._get(
            "warehouses",
            lambda: (w.reference_key for w in scayle.iter_warehouses() if w.reference_key),
            now,
            refresh,
        )

    def carriers(self, scayle: ScayleClient, now: datetime, *, refresh: bool = False) -> TenantList:
        """Keys of the tenant's carriers (``GET /carriers``)."""
        return self._get(
            "carriers", lambda: (c.key for c in scayle.iter_carriers() if c.key), now, refresh
        )

    def forget(self, name: str) -> None:
        """Drop a kept list (``"warehouses"`` or ``"carriers"``): the next use reads it again."""
        with self._lock:
            self._lists.pop(name, None)

    def _get(
        self, name: str, read: Callable[[], Iterable[str]], now: datetime, refresh: bool
    ) -> TenantList:
        with self._lock:
            kept = self._lists.get(name)
            if kept is not None and not refresh and now - kept.read_at < self.max_age:
                return kept
            try:
                found = TenantList(frozenset(read()), now)
            except PermissionDeniedError as exc:  # the token lacks the scope: say so, go on
                logger.warning("SCAYLE %s cannot be read with this token (%s)", name, exc)
                found = TenantList(None, now, f"{type(exc).__name__}: {exc}")
            except AuthenticationError:
                raise
            except TransientError as exc:
                logger.warning("SCAYLE %s could not be read (%s); trying again later", name, exc)
                return TenantList(None, now, f"{type(exc).__name__}: {exc}")
            except ConnectorError as exc:
                logger.warning("SCAYLE %s cannot be read with this token (%s)", name, exc)
                found = TenantList(None, now, f"{type(exc).__name__}: {exc}")
            self._lists[name] = found
            return found
