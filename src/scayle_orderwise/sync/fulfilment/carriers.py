"""OrderWise courier names → SCAYLE carrier keys.

The mapping is :data:`DEFAULT_CARRIER_MAP` merged with ``FlowSettings.carrier_map``; unknown
couriers use ``FlowSettings.default_carrier`` or the courier name in upper case. The carrier keys
are configured per SCAYLE tenant (``GET /carriers``), so check the defaults against yours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ...config import FlowSettings

__all__ = ["DEFAULT_CARRIER_MAP", "builtin_carriers", "carrier_for", "configured_carriers"]

DEFAULT_CARRIER_MAP: Mapping[str, str] = {
    "Royal Mail": "ROYAL_MAIL",
    "Parcelforce": "PARCELFORCE",
    "DPD": "DPD",
    "DHL": "DHL",
    "Evri": "EVRI",
    "Hermes": "HERMES",
    "UPS": "UPS",
    "FedEx": "FEDEX",
    "Yodel": "YODEL",
}
"""OrderWise courier names → SCAYLE carrier keys (a guess at common UK couriers; override it)."""


def _courier_key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.casefold())


def carrier_for(courier: str | None, flows: FlowSettings) -> str | None:
    """The SCAYLE carrier key of an OrderWise courier name (``None`` when nothing fits)."""
    table = {_courier_key(k): v for k, v in DEFAULT_CARRIER_MAP.items()}
    table.update({_courier_key(k): v for k, v in flows.carrier_map.items()})
    if courier and courier.strip():
        found = table.get(_courier_key(courier))
        if found:
            return found
        if flows.default_carrier:
            return flows.default_carrier
        return re.sub(r"\s+", "_", courier.strip()).upper()
    return flows.default_carrier


def configured_carriers(flows: FlowSettings) -> dict[str, str]:
    """The carrier keys the configuration names, by where: ``carrier_map`` entries under their
    courier name, ``default_carrier`` under ``"default_carrier"``."""
    named = {f"carrier_map[{courier!r}]": key for courier, key in flows.carrier_map.items()}
    if flows.default_carrier:
        named["default_carrier"] = flows.default_carrier
    return named


def builtin_carriers(flows: FlowSettings) -> dict[str, str]:
    """The entries of :data:`DEFAULT_CARRIER_MAP` the configuration does not override."""
    overridden = {_courier_key(k) for k in flows.carrier_map}
    return {
        courier: key
        for courier, key in DEFAULT_CARRIER_MAP.items()
        if _courier_key(courier) not in overridden
    }
