"""Faithful in-process fakes of the SCAYLE Admin API and OrderWise OWAPI, with fault injection.

``Sandbox(seed=0, faults=Faults(...))`` holds ``.scayle`` (:class:`ScayleSandbox`) and
``.orderwise`` (:class:`OrderwiseSandbox`) and makes ready clients. ``make_order`` builds realistic
SCAYLE order JSON. ``python -m scayle_orderwise.sandbox serve --port N`` serves both over HTTP.
"""

from __future__ import annotations

from .clock import RealClock, SandboxClock, VirtualClock
from .core import Sandbox
from .factory import make_order
from .faults import FaultInjector, FaultKind, Faults, SimulatedCrash
from .orderwise import OrderwiseSandbox
from .scayle import ScayleSandbox

__all__ = [
    "FaultInjector",
    "FaultKind",
    "Faults",
    "OrderwiseSandbox",
    "RealClock",
    "Sandbox",
    "SandboxClock",
    "ScayleSandbox",
    "SimulatedCrash",
    "VirtualClock",
    "make_order",
]
