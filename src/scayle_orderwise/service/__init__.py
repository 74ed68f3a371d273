"""The connector as a service: an ASGI app (webhooks, health, metrics, exceptions dashboard) and an
in-process flow scheduler.

* :func:`create_app` builds the app for a :class:`~scayle_orderwise.connector.Connector`; run it as it
  is or mount it in your own Starlette/FastAPI app.
* :class:`FlowScheduler` runs the flows on their intervals (with a :class:`Pacer` per flow when a
  flow knows better when to run next).
* :func:`run_service` is ``scayle-orderwise serve``: both, on uvicorn, with a graceful SIGTERM.
"""

from __future__ import annotations

from ..logs import configure_logging
from .app import create_app, readiness
from .runner import run_service
from .scheduler import FixedPacer, FlowScheduler, Pacer

__all__ = [
    "FixedPacer",
    "FlowScheduler",
    "Pacer",
    "configure_logging",
    "create_app",
    "readiness",
    "run_service",
]
