"""Shared helpers of the peak-trading benchmarks (``peak_*.py``, ``claim_time.py``).

Not part of the library. They provide:

* the loopback sandbox: both fakes over real HTTP (:func:`scayle_orderwise.sandbox.serve.serve`)
  with a delay per call and SCAYLE's real per-scope limits, which the fake enforces (429 past the
  limit, counted in ``sandbox.scayle.requests``);
* worker processes that build their connector as production does
  (``Connector.from_settings``) from environment variables, optionally running **another version
  of the library** (``--code REF``: the ``src`` tree of a git commit, extracted once into
  ``.benchmarks-code/``), so that one run can measure a baseline and the working tree side by side;
* a fresh PostgreSQL schema per run and a sampler of values over time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scayle_orderwise.config import STORE_URL_ENV

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / "_peak_worker.py"
PG_ENV = STORE_URL_ENV  # a postgresql:// DSN; the older SCAYLE_ORDERWISE_TEST_PG_DSN still works
CODE_CACHE = ROOT / ".benchmarks-code"

__all__ = [
    "ROOT",
    "Sampler",
    "code_label",
    "code_path",
    "pg_schema",
    "scope_of",
    "settings_env",
    "start_worker",
    "statuses_by_scope",
    "worker_output",
]


def code_path(ref: str | None) -> str | None:
    """A ``PYTHONPATH`` entry holding the library at git ``ref`` (``None``: the working tree)."""
    if not ref:
        return None
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    target = CODE_CACHE / commit
    if not (target / "src" / "scayle_orderwise").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", commit, "src/scayle_orderwise"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return str(target / "src")


def code_label(ref: str | None) -> str:
    """How a version is named in the tables."""
    if not ref:
        return "working tree"
    short = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", ref],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{ref} ({short})" if short != ref else ref


def settings_env(
    server: Any, *, store_url: str, worker_id: str, code: str | None = None, **extra: str
) -> dict[str, str]:
    """The environment a deployment gives a worker: settings and secrets for the served fakes.

    The working tree (``code=None``) also gets the batch lookup definition
    (``orders_by_references``), which an installation configures once; 0.1.0 knew no such setting.
    """
    sandbox = server.sandbox
    exports = sandbox.orderwise.export_definitions
    definitions = {
        "order_changes": exports.order_changes,
        "order_by_reference": exports.order_by_reference,
        "stock_changes": exports.stock_changes,
        "order_details": exports.order_details,
    }
    batch = getattr(exports, "orders_by_references", None)
    if code is None and batch is not None:
        definitions["orders_by_references"] = batch
    env = {
        "SCAYLE_ORDERWISE_SCAYLE__BASE_URL": server.scayle_base_url,
        "SCAYLE_ORDERWISE_SCAYLE__TOKEN": sandbox.scayle.token,
        "SCAYLE_ORDERWISE_SCAYLE__SHOP_KEY": sandbox.scayle.shop_key,
        "SCAYLE_ORDERWISE_SCAYLE__COUNTRY_CODE": sandbox.scayle.country_code,
        "SCAYLE_ORDERWISE_SCAYLE__DEFAULT_WAREHOUSE": sandbox.scayle.default_warehouse,
        "SCAYLE_ORDERWISE_ORDERWISE__API_ROOT": server.orderwise_api_root,
        "SCAYLE_ORDERWISE_ORDERWISE__USERNAME": sandbox.orderwise.username,
        "SCAYLE_ORDERWISE_ORDERWISE__PASSWORD": sandbox.orderwise.password,
        "SCAYLE_ORDERWISE_ORDERWISE__SESSION_ID": str(sandbox.orderwise.session_id),
        "SCAYLE_ORDERWISE_ORDERWISE__EXPORT_DEFINITIONS": json.dumps(definitions),
        "SCAYLE_ORDERWISE_ALERTS__LOG": "false",
        "SCAYLE_ORDERWISE_STORE__URL": store_url,
        "SCAYLE_ORDERWISE_WORKER_ID": worker_id,
    }
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SCAYLE_ORDERWISE_")}
    return {**inherited, **env, **extra}


def start_worker(
    mode: str,
    env: Mapping[str, str],
    *,
    code: str | None,
    args: tuple[str, ...] = (),
    log: Path,
) -> subprocess.Popen[str]:
    """Start ``_peak_worker.py MODE`` (``cli``: the ``scayle-orderwise`` command) with the
    library of ``code`` (``None``: the working tree)."""
    full = dict(env)
    if code:
        full["PYTHONPATH"] = code + os.pathsep + full.get("PYTHONPATH", "")
    full["PYTHONUNBUFFERED"] = "1"
    # Output goes to files (``log``, and ``log`` with ``.out`` for stdout), never to a pipe
    # nobody reads while the worker runs (a full pipe would stop it).
    stderr = open(log, "w")  # noqa: SIM115
    stdout = open(log.with_suffix(".out"), "w")  # noqa: SIM115
    command = (
        [sys.executable, "-m", "scayle_orderwise.cli", *args]
        if mode == "cli"
        else [sys.executable, str(WORKER), mode, *args]
    )
    return subprocess.Popen(
        command,
        env=full,
        stdout=stdout,
        stderr=stderr,
        text=True,
        cwd=tempfile.gettempdir(),  # never import the library from the folder we stand in
    )


@contextmanager
def pg_schema(dsn: str) -> Iterator[str]:
    """A fresh schema name, dropped (with everything in it) afterwards."""
    import psycopg
    from psycopg import sql

    name = f"peak_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def scope_of(method: str, path: str) -> str:
    """The SCAYLE rate-limit scope of a request the fake recorded (as the fake routes it)."""
    if path.endswith("/reference-key"):
        return "ordersWrite"
    if "/orders" in path:
        return "ordersRead"
    if path.startswith("/fulfillment/"):
        return "fulfillmentWrite"
    if path.endswith("/stocks"):
        return "stocksWrite" if method == "POST" else "stocksRead"
    return "global" + ("Read" if method == "GET" else "Write")


def statuses_by_scope(requests: list[tuple[str, str, int]]) -> dict[str, Counter[int]]:
    """``{scope: Counter(status)}`` of the SCAYLE fake's request log."""
    table: dict[str, Counter[int]] = {}
    for method, path, status in requests:
        table.setdefault(scope_of(method, path), Counter())[status] += 1
    return table


class Sampler:
    """Calls ``probe()`` every ``every`` seconds on a thread; ``samples`` holds ``(t, value)``."""

    def __init__(self, probe: Callable[[], Any], every: float = 0.1) -> None:
        self.probe = probe
        self.every = every
        self.samples: list[tuple[float, Any]] = []
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self.started, self.probe()))
            self._stop.wait(self.every)

    def stop(self) -> None:
        """Stop sampling (one last sample is taken)."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.samples.append((time.monotonic() - self.started, self.probe()))


def worker_output(log: Path) -> list[dict[str, Any]]:
    """The JSON lines a worker started with ``log`` printed."""
    path = log.with_suffix(".out")
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
