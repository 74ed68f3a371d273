"""The start-up check: does the SCAYLE tenant have what the configuration names?

:func:`check_setup` reads ``GET /warehouses`` and ``GET /carriers`` (through the flow context's
:class:`~scayle_orderwise.sync.tenant_setup.TenantSetupCache`, which the flows then reuse) and
compares them with the settings:

- every warehouse the stock flow may push to (``inventory.default_warehouse`` and the values of
  ``inventory.location_warehouses``) must exist: a **problem** otherwise;
- every carrier key the configuration names (``flows.carrier_map`` values, ``flows.default_carrier``)
  must exist: a **problem** otherwise;
- a built-in courier → carrier entry whose carrier the tenant lacks is a **warning**: a despatch by
  that courier would be sent under a carrier key SCAYLE does not know, so map the courier in
  ``flows.carrier_map`` if your warehouse uses it.

:meth:`Connector.check_setup <scayle_orderwise.connector.Connector.check_setup>` runs it;
``scayle-orderwise check`` prints it and exits 1 on a problem.
"""

from __future__ import annotations

from typing import Any

import attrs

from .context import FlowContext
from .fulfilment.carriers import builtin_carriers, configured_carriers

__all__ = ["SetupReport", "check_setup"]


@attrs.frozen
class SetupReport:
    """What the tenant has against what the configuration names (see the module docstring)."""

    warehouses: frozenset[str] | None
    """The tenant's warehouse reference keys (``None``: they could not be read)."""
    carriers: frozenset[str] | None
    """The tenant's carrier keys (``None``: they could not be read)."""
    missing_warehouses: tuple[str, ...] = ()
    """Warehouses the stock settings name that the tenant lacks."""
    missing_carriers: tuple[tuple[str, str], ...] = ()
    """``(setting, carrier key)`` the fulfilment settings name that the tenant lacks."""
    unknown_builtin_carriers: tuple[tuple[str, str], ...] = ()
    """``(courier, carrier key)`` of the built-in table whose carrier the tenant lacks."""
    unreadable: tuple[str, ...] = ()
    """Why a list could not be read, one line each."""

    @property
    def checked(self) -> bool:
        """True when both lists were read."""
        return self.warehouses is not None and self.carriers is not None

    @property
    def ok(self) -> bool:
        """True when nothing the configuration names is missing (lists that could not be read
        are warnings, not problems)."""
        return not self.missing_warehouses and not self.missing_carriers

    def problems(self) -> list[str]:
        """One sentence per problem."""
        known = ", ".join(sorted(self.warehouses or ())) or "none"
        found = [
            f"SCAYLE has no warehouse {name!r} (it has: {known}); create it in SCAYLE or correct "
            "inventory.default_warehouse / inventory.location_warehouses"
            for name in self.missing_warehouses
        ]
        carriers = ", ".join(sorted(self.carriers or ())) or "none"
        found += [
            f"{setting} names carrier {key!r}, which SCAYLE does not have (it has: {carriers})"
            for setting, key in self.missing_carriers
        ]
        return found

    def warnings(self) -> list[str]:
        """One sentence per warning."""
        found = [f"could not check: {why}" for why in self.unreadable]
        if self.unknown_builtin_carriers:
            pairs = ", ".join(f"{c} → {k}" for c, k in self.unknown_builtin_carriers)
            found.append(
                f"built-in courier mappings name carriers SCAYLE does not have ({pairs}); if your "
                "warehouse uses these couriers, map them in flows.carrier_map"
            )
        return found

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "warehouses": sorted(self.warehouses) if self.warehouses is not None else None,
            "carriers": sorted(self.carriers) if self.carriers is not None else None,
            "problems": self.problems(),
            "warnings": self.warnings(),
        }


def check_setup(ctx: FlowContext) -> SetupReport:
    """Read the tenant's warehouses and carriers afresh and compare them with the settings."""
    now = ctx.clock()
    warehouses = ctx.tenant.warehouses(ctx.scayle, now, refresh=True)
    carriers = ctx.tenant.carriers(ctx.scayle, now, refresh=True)
    wanted = set(ctx.inventory.location_warehouses.values())
    if ctx.inventory.default_warehouse:
        wanted.add(ctx.inventory.default_warehouse)
    missing_warehouses: tuple[str, ...] = ()
    if warehouses.keys is not None:
        missing_warehouses = tuple(sorted(wanted - warehouses.keys))
    missing: tuple[tuple[str, str], ...] = ()
    builtin: tuple[tuple[str, str], ...] = ()
    if carriers.keys is not None:
        known = carriers.keys
        missing = tuple(
            sorted((s, k) for s, k in configured_carriers(ctx.flows).items() if k not in known)
        )
        builtin = tuple(
            sorted((c, k) for c, k in builtin_carriers(ctx.flows).items() if k not in known)
        )
    return SetupReport(
        warehouses=warehouses.keys,
        carriers=carriers.keys,
        missing_warehouses=missing_warehouses,
        missing_carriers=missing,
        unknown_builtin_carriers=builtin,
        unreadable=tuple(
            f"GET /{name}: {entry.error}"
            for name, entry in (("warehouses", warehouses), ("carriers", carriers))
            if entry.keys is None
        ),
    )
