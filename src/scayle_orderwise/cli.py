"""The ``scayle-orderwise`` command: demo, serve, sync, reconcile, status, quarantine, retry, sandbox, postings.

Configuration comes from a TOML file (``--config`` or ``SCAYLE_ORDERWISE_CONFIG``) and the
environment (``SCAYLE_ORDERWISE_...``); secrets only from the environment. Every failure prints one
``error:`` line and exits non-zero: 2 for bad configuration or input, 1 when a flow or check failed
(:mod:`scayle_orderwise._cli_errors`; ``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ._cli_errors import CommandGroup, err_console, fail, set_debug
from ._cli_progress import host_notices, reading_progress
from ._version import __version__
from .config import ConnectorSettings
from .errors import ConfigError, ConnectorError, StoreError

__all__ = ["app", "main"]

app = typer.Typer(
    name="scayle-orderwise",
    help="Connect SCAYLE to OrderWise: exactly-once orders, despatches, cancellations, stock, reconciliation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=CommandGroup,
)
quarantine_app = typer.Typer(
    help="Records that need a person (orders, shipments, cancellations): list, show, release.",
    no_args_is_help=True,
)
alerts_app = typer.Typer(
    help="Open alerts: list them, or close one a person has dealt with.", no_args_is_help=True
)
sandbox_app = typer.Typer(help="The in-process fakes of both APIs.", no_args_is_help=True)
ledger_app = typer.Typer(
    help="Ledger housekeeping: archive what is finished so a year of orders slows nothing.",
    no_args_is_help=True,
)
app.add_typer(ledger_app, name="ledger")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(alerts_app, name="alerts")

console = Console()

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", envvar="SCAYLE_ORDERWISE_CONFIG", help="TOML configuration file."
    ),
]


class Flow(StrEnum):
    """Flows `sync` can run."""

    orders = "orders"
    fulfilments = "fulfilments"
    cancellations = "cancellations"
    inventory = "inventory"
    all = "all"


class LogFormat(StrEnum):
    """Log line formats."""

    text = "text"
    json = "json"


class LogLevel(StrEnum):
    """Log levels."""

    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class ReportFormat(StrEnum):
    """Report formats."""

    html = "html"
    json = "json"
    csv = "csv"


class RecordKind(StrEnum):
    """Ledger record kinds a person may find quarantined (``all``: every kind)."""

    order = "order"
    shipment = "shipment"
    cancellation = "cancellation"
    all = "all"


STATUS_SCHEMA_VERSION = 2
"""Version of ``status --json`` (2: open alerts as objects with named fields)."""


def _fail(message: str, code: int = 2) -> typer.Exit:
    return fail(message, code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"scayle-orderwise {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an error instead of one line.")
    ] = False,
    log_level: Annotated[
        LogLevel | None,
        typer.Option(
            "--log-level",
            envvar="SCAYLE_ORDERWISE_LOG_LEVEL",
            help="Log level (default: info for serve, warning otherwise).",
        ),
    ] = None,
    log_format: Annotated[
        LogFormat,
        typer.Option(
            "--log-format",
            envvar="SCAYLE_ORDERWISE_LOG_FORMAT",
            help="text: one readable line per event; json: one JSON object per line.",
        ),
    ] = LogFormat.text,
) -> None:
    """Connect SCAYLE to OrderWise: exactly-once orders, despatches, cancellations, stock, reconciliation."""
    if not isinstance(ctx.obj, dict):
        ctx.obj = {}
    ctx.obj.update({"log_level": log_level, "log_format": log_format})
    set_debug(ctx, debug)
    if log_level is not None or log_format is not LogFormat.text:
        from .logs import configure_logging

        configure_logging((log_level or LogLevel.warning).value, log_format.value)


def _settings(config: Path | None) -> ConnectorSettings:
    try:
        return ConnectorSettings.load(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def _connector(config: Path | None) -> Any:
    from .connector import Connector

    try:
        return Connector.from_settings(_settings(config))
    except (ConfigError, StoreError) as exc:
        raise _fail(str(exc)) from None


def _store(config: Path | None) -> Any:
    """The ledger alone: the commands that only read or correct it need no API credentials."""
    from .connector import open_store

    url = _settings(config).store.url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise _fail(
            f"no ledger at {url.removeprefix('sqlite:///')}: set [store] url or SCAYLE_ORDERWISE_STORE__URL"
        )
    try:
        return open_store(url)
    except (ConfigError, StoreError) as exc:
        raise _fail(str(exc)) from None


def _key(subject: str) -> str:
    """``1234`` means the order ``order:1234``; a full ledger key (with ``:``) is used as given."""
    return subject if ":" in subject else f"order:{subject}"


def _not_in_ledger(key: str) -> str:
    """The one wording for a record the ledger does not hold."""
    return f"{key} is not in the ledger"


def _period(
    since: str | None, until: str | None
) -> tuple[date | datetime | None, date | datetime | None]:
    """``--since``/``--until`` as [start, end) bounds; an empty or reversed period is refused."""
    start, end = _parse_day(since), _parse_day(until, end=True)
    if start is not None and end is not None and _moment(start) >= _moment(end):
        raise _fail(f"--since {since} is not before --until {until}: the period is empty")
    return start, end


def _moment(bound: date | datetime) -> datetime:
    """A bound as an aware time, only to order two bounds (zone-less ones taken as UTC)."""
    if not isinstance(bound, datetime):
        bound = datetime.combine(bound, datetime.min.time())
    return bound if bound.tzinfo else bound.replace(tzinfo=UTC)


def _parse_day(value: str | None, *, end: bool = False) -> date | datetime | None:
    """A day (``end``: the day after it, so the day is included) or an ISO time; without a zone
    both are read in the books' time zone (``timezone`` setting) by reconcile and postings."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return day + timedelta(days=1) if end else day
        return datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"not a date (YYYY-MM-DD) or ISO timestamp: {value!r}") from None


# ------------------------------------------------------------------------------------------------ demo


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Folder for the ledger and reports (default: a new one)."),
    ] = None,
    orders: Annotated[
        int, typer.Option(min=10, max=5000, help="How many orders to simulate.")
    ] = 300,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same story).")] = 7,
) -> None:
    """Run the whole story on the embedded sandbox with SQLite, then reconcile and summarise."""
    from .demo import run_demo

    folder = directory or Path(f"scayle-orderwise-demo-{datetime.now(UTC):%Y%m%d-%H%M%S}")
    try:
        outcome = run_demo(folder, orders=orders, seed=seed, console=console)
    except ConnectorError as exc:
        raise _fail(f"demo failed: {exc}", 1) from None
    if not outcome.ok:
        raise _fail("demo finished with problems: " + "; ".join(outcome.problems), 1)


# ------------------------------------------------------------------------------------------------ sync


@app.command()
def sync(
    flow: Annotated[
        Flow,
        typer.Argument(
            help="Which flow to run: orders, fulfilments, cancellations, inventory or all."
        ),
    ] = Flow.all,
    config: ConfigOption = None,
    watch: Annotated[bool, typer.Option("--watch", help="Repeat until interrupted.")] = False,
    interval: Annotated[
        float | None,
        typer.Option(
            min=1.0,
            help="Seconds between passes with --watch (default: 60; the stock flow adapts "
            "between [inventory] poll_min_seconds and poll_max_seconds).",
        ),
    ] = None,
    passes: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many passes (with --watch).")
    ] = None,
) -> None:
    """Run one pass of a flow (or all), or keep running with --watch.

    With --watch a failed pass is reported and the next one runs after the interval; without it,
    a failed flow exits 1.
    """
    from .sync.pacing import pacer_for

    connector = _connector(config)
    pacer = pacer_for(flow.value, connector.settings.inventory, interval=interval)
    _warn_setup(connector)
    done = 0
    failed = False
    try:
        while True:
            with host_notices(err_console):
                results = _run_flow(connector, flow)
            for result in results:
                console.print(str(result), highlight=False, markup=False)
                for error in result.errors:
                    err_console.print(f"  {result.flow}: {error}", highlight=False, markup=False)
                failed = failed or result["failed_pass"] > 0
            done += 1
            if not watch or (passes is not None and done >= passes):
                break
            time.sleep(pacer.next_delay(_merged(results)))
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        connector.close()
    if failed and not watch:
        raise typer.Exit(1)


def _merged(results: list[Any]) -> Any:
    from .sync.context import SyncResult

    merged = SyncResult("all")
    for result in results:
        merged.merge(result)
    return merged


def _warn_setup(connector: Any) -> None:
    """The start-up check of the SCAYLE tenant: what it lacks is a warning here (``check`` fails)."""
    try:
        report = connector.check_setup()
    except ConnectorError as exc:
        err_console.print(f"warning: SCAYLE setup not checked: {exc}", markup=False)
        return
    for line in [*report.problems(), *report.warnings()]:
        err_console.print(f"warning: {line}", markup=False, highlight=False)


@app.command()
def check(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check the SCAYLE tenant against the settings: the warehouses and carriers they name.

    Exits 1 when something the settings name is missing in SCAYLE.
    """
    connector = _connector(config)
    try:
        report = connector.check_setup()
    except ConnectorError as exc:
        raise _fail(f"could not check the SCAYLE setup: {exc}", 1) from None
    finally:
        connector.close()
    if as_json:
        console.print_json(data=report.as_dict())
    else:
        for line in report.warnings():
            err_console.print(f"warning: {line}", markup=False, highlight=False)
        for line in report.problems():
            console.print(f"- {line}", markup=False, highlight=False)
    if not report.ok:
        raise _fail(f"{len(report.problems())} setting(s) name what SCAYLE does not have", 1)
    if not as_json:
        console.print("SCAYLE has every warehouse and carrier the settings name")


def _run_flow(connector: Any, flow: Flow) -> list[Any]:
    from .sync.context import SyncResult

    if flow is Flow.all:
        return list(connector.sync_all())
    method = {
        Flow.orders: connector.sync_orders,
        Flow.fulfilments: connector.sync_fulfilments,
        Flow.cancellations: connector.sync_cancellations,
        Flow.inventory: connector.sync_inventory,
    }[flow]
    try:
        return [method()]
    except ConnectorError as exc:
        result = SyncResult(flow.value)
        result.add("failed_pass")
        result.errors.append(f"{type(exc).__name__}: {exc}")
        return [result]


# ------------------------------------------------------------------------------------------- reconcile


@app.command()
def reconcile(
    config: ConfigOption = None,
    since: Annotated[
        str | None, typer.Option(help="First day, inclusive.", metavar="YYYY-MM-DD")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Last day, inclusive.", metavar="YYYY-MM-DD")
    ] = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="Report format.")
    ] = ReportFormat.html,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Reconcile SCAYLE orders against OrderWise orders and write the report."""
    from .reconcile import report as render

    start, end = _period(since, until)
    connector = _connector(config)
    try:
        with host_notices(err_console), reading_progress(err_console) as progress:
            result = connector.reconcile(since=start, until=end, progress=progress)
    except ConnectorError as exc:
        raise _fail(f"reconciliation failed: {exc}", 1) from None
    finally:
        connector.close()
    text = {"html": render.to_html, "json": render.to_json, "csv": render.to_csv}[fmt.value](result)
    _emit(text, output)


@app.command("reconcile-stock")
def reconcile_stock(
    config: ConfigOption = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="Report format.")
    ] = ReportFormat.html,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Full stock drift check: OrderWise free stock (after buffers) against SCAYLE, per SKU."""
    from .reconcile import report as render

    connector = _connector(config)
    try:
        with host_notices(err_console):
            result = connector.reconcile_stock()
    except ConnectorError as exc:
        raise _fail(f"stock reconciliation failed: {exc}", 1) from None
    finally:
        connector.close()
    text = {"html": render.to_html, "json": render.to_json, "csv": render.to_csv}[fmt.value](result)
    _emit(text, output)


@app.command("export-postings")
def export_postings(
    config: ConfigOption = None,
    since: Annotated[str, typer.Option(help="First day of the period.", metavar="YYYY-MM-DD")] = "",
    until: Annotated[
        str, typer.Option(help="Last day of the period, inclusive.", metavar="YYYY-MM-DD")
    ] = "",
    journal: Annotated[
        str,
        typer.Option(
            help="full: the whole period (replaces an earlier export); additions: only orders "
            "acknowledged since the last export.",
            metavar="full|additions",
        ),
    ] = "full",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="CSV file (default: stdout).")
    ] = None,
) -> None:
    """Write the period's batched financial postings (net, VAT, gross per tax code) as CSV."""
    if not since or not until:
        raise _fail("--since and --until are required")
    if journal not in ("full", "additions"):
        raise _fail(f"--journal must be full or additions, not {journal!r}")
    start, end = _period(since, until)
    assert start is not None and end is not None
    connector = _connector(config)
    try:
        with host_notices(err_console):
            result = connector.postings(since=start, until=end, journal=journal)
    except ConnectorError as exc:
        raise _fail(f"postings export failed: {exc}", 1) from None
    finally:
        connector.close()
    for warning in result.warnings:
        err_console.print(f"warning: {warning}", markup=False, highlight=False)
    _emit(result.csv, output)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))  # a CSV ends with its own newline
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc.strerror or exc}") from None
    console.print(f"written {output}")


# ---------------------------------------------------------------------------------------------- status


@app.command()
def status(
    config: ConfigOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Machine-readable output (documented schema).")
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Exit 1 when the ledger is not ok (for monitoring)."),
    ] = False,
) -> None:
    """Ledger counts by state, the oldest pending and sent orders, open alerts."""
    from .connector import ledger_health

    store = _store(config)
    try:
        health = ledger_health(store)
    finally:
        store.close()
    if as_json:
        typer.echo(
            json.dumps({"schema_version": STATUS_SCHEMA_VERSION, **health.as_dict()}, indent=2)
        )
    else:
        _print_health(health)
    if check and not health.ok:
        raise typer.Exit(1)


def _print_health(health: Any) -> None:
    table = Table(title="Orders in the ledger")
    table.add_column("state")
    table.add_column("orders", justify="right")
    for state, n in health.counts.items():
        table.add_row(state, str(n))
    console.print(table)
    console.print(
        f"oldest pending: {health.oldest_pending or '-'}   oldest sent: {health.oldest_sent or '-'}"
    )
    console.print(f"quarantined: {health.quarantined}   open alerts: {len(health.open_alerts)}")
    console.print(
        f"reference write-backs waiting for SCAYLE: {health.reference_writes_waiting}",
        highlight=False,
    )
    for kind, subject, cause in health.open_alerts:
        console.print(
            f"  [yellow]{escape(kind)}[/] {escape(subject)}: {escape(cause)}", highlight=False
        )


# ------------------------------------------------------------------------------------------ quarantine


@quarantine_app.command("list")
def quarantine_list(
    config: ConfigOption = None,
    kind: Annotated[
        RecordKind, typer.Option(help="Record kind, or 'all' for every kind.")
    ] = RecordKind.order,
) -> None:
    """Quarantined records (orders by default) with their reasons."""
    from .store import State

    store = _store(config)
    try:
        every = kind is RecordKind.all
        table = Table(title="Quarantined" + ("" if every else f" ({kind.value})"))
        for column in ("record", "since", "reason"):
            table.add_column(column)
        count = 0
        for record in store.records(states=[State.QUARANTINED], kind=None if every else kind.value):
            label = record.subject if record.kind == "order" else record.key
            table.add_row(label, f"{record.updated_at:%Y-%m-%d %H:%M}", record.reason or "")
            count += 1
    finally:
        store.close()
    nothing = "nothing is quarantined" + ("" if every else f" (kind {kind.value})")
    console.print(table if count else nothing)


@quarantine_app.command("show")
def quarantine_show(
    subject: Annotated[
        str, typer.Argument(help="An order id, or a full ledger key.", metavar="ORDER_ID_OR_KEY")
    ],
    config: ConfigOption = None,
) -> None:
    """One record of the ledger and its full history."""
    store = _store(config)
    try:
        record = store.get(_key(subject))
    finally:
        store.close()
    if record is None:
        raise _fail(_not_in_ledger(_key(subject)), 1)
    console.print(f"{record.key}: [bold]{record.state}[/] ", end="")
    console.print(f"({record.reason or 'no reason'})", markup=False, highlight=False)
    if record.external_id:
        console.print(f"OrderWise order id {record.external_id} ({record.external_ref or '-'})")
    table = Table(title="history")
    for column in ("at", "from", "to", "by", "reason"):
        table.add_column(column)
    for t in record.history:
        table.add_row(
            f"{t.at:%Y-%m-%d %H:%M:%S}",
            str(t.from_state or "-"),
            str(t.to_state),
            t.owner or "",
            t.reason or "",
        )
    console.print(table)


@quarantine_app.command("release")
def quarantine_release(
    subject: Annotated[
        str, typer.Argument(help="An order id, or a full ledger key.", metavar="ORDER_ID_OR_KEY")
    ],
    config: ConfigOption = None,
    reason: Annotated[
        str, typer.Option(help="Why it can be retried now.")
    ] = "released by a person",
) -> None:
    """Put a quarantined record back in the queue (after fixing the SKU map, the order, ...)."""
    from .connector import release_quarantined

    store = _store(config)
    try:
        release_quarantined(store, _key(subject), reason=reason)
    except ConfigError as exc:
        raise _fail(str(exc), 1) from None
    finally:
        store.close()
    console.print(f"{_key(subject)} released; the next sync pass takes it up again")


@alerts_app.command("list")
def alerts_list(config: ConfigOption = None) -> None:
    """Open alerts raised by any worker: kind, subject and cause."""
    from .alerts import AlertDispatcher

    store = _store(config)
    try:
        found = AlertDispatcher(state=store).open_alerts()
    finally:
        store.close()
    table = Table(title="Open alerts")
    for column in ("kind", "subject", "cause"):
        table.add_column(column)
    for kind, subject, cause in found:
        table.add_row(kind, subject, cause)
    console.print(table if found else "no open alerts")


@alerts_app.command("resolve")
def alerts_resolve(
    kind: Annotated[
        str, typer.Argument(help="Alert kind, e.g. cancellation_too_late.", metavar="KIND")
    ],
    subject: Annotated[
        str, typer.Argument(help="Its subject as `alerts list` shows it.", metavar="SUBJECT")
    ],
    config: ConfigOption = None,
) -> None:
    """Close an alert a person has dealt with (it is raised again if its cause comes back)."""
    from .alerts import AlertDispatcher

    store = _store(config)
    try:
        dispatcher = AlertDispatcher(state=store)
        if not any(k == kind and s == subject for k, s, _ in dispatcher.open_alerts()):
            raise _fail(f"alert {kind} for {subject} is not open", 1)
        dispatcher.resolve(kind, subject)
    finally:
        store.close()
    console.print(f"closed {kind} for {subject}")


@app.command()
def retry(
    order_ids: Annotated[
        list[str] | None,
        typer.Argument(
            help="Order ids or ledger keys to retry (default: every failed order).",
            metavar="ORDER_ID_OR_KEY",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Queue failed orders (parked after too many attempts) for another try."""
    from .store import State

    store = _store(config)
    try:
        keys = (
            [_key(o) for o in order_ids]
            if order_ids
            else [r.key for r in store.records(states=[State.FAILED], kind="order")]
        )
        done = 0
        skipped = 0
        for key in keys:
            record = store.get(key)
            if record is None or record.state != State.FAILED:
                why = (
                    _not_in_ledger(key)
                    if record is None
                    else f"{key} is {record.state}, not failed"
                )
                err_console.print(f"skipped: {why}", markup=False, highlight=False)
                skipped += 1
                continue
            store.mark(key, State.PENDING, reason="retry requested by a person")
            done += 1
    finally:
        store.close()
    console.print(f"{done} order(s) queued for retry")
    if skipped:
        raise _fail(f"{skipped} of {len(keys)} named record(s) could not be queued", 1)


@ledger_app.command("archive")
def ledger_archive(
    older_than: Annotated[
        int,
        typer.Option(
            "--older-than", min=0, help="Archive records finished more than this many days ago."
        ),
    ] = 90,
    kind: Annotated[
        str | None,
        typer.Option(help="Only this kind of record (order, shipment, cancellation, stock, ...)."),
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option(
            help="First append every record archived, with its history, to this JSON-lines file."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be archived; change nothing.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Move acknowledged and cancelled records out of the live ledger (they stay findable by key)."""
    from datetime import timedelta

    from .store.retention import archive_ledger

    store = _store(config)
    try:
        if not callable(getattr(store, "archive", None)):
            raise _fail(f"{type(store).__name__} cannot archive (it has no archive method)")
        try:
            handle = export.open("a", encoding="utf-8") if export is not None else None
        except OSError as exc:
            raise _fail(f"cannot write {export}: {exc.strerror}") from None
        try:
            count = archive_ledger(
                store,
                older_than=timedelta(days=older_than),
                kind=kind,
                export=handle,
                dry_run=dry_run,
            )
        except StoreError as exc:
            raise _fail(str(exc)) from None
        finally:
            if handle is not None:
                handle.close()
    finally:
        store.close()
    what = "would be archived" if dry_run else "archived"
    console.print(f"{count} record(s) {what} (finished more than {older_than} days ago)")


# ----------------------------------------------------------------------------------------------- serve


@app.command()
def serve(
    ctx: typer.Context,
    config: ConfigOption = None,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: [service] host).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Port to listen on (default: [service] port)."),
    ] = None,
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox",
            help="Run against an in-process sandbox with demo data; the dashboard is open (loopback only).",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Random seed of the sandbox's demo data.")] = 7,
) -> None:
    """Run the service: webhook endpoint, health, metrics, dashboard and the flow scheduler.

    SIGTERM stops taking work, lets running passes finish (or releases their claims) and exits 0.
    """
    from .logs import configure_logging

    try:
        from .service import run_service
    except ImportError as exc:
        raise _fail(
            f"the service needs the 'service' extra ({exc.name} is missing): "
            'pip install "scayle-orderwise[service]"'
        ) from None
    options = ctx.obj or {}
    if options.get("log_level") is None:
        configure_logging("info", str(options.get("log_format") or "text"))
    if sandbox:
        if config is not None:
            raise _fail("--sandbox runs on demo data and takes no --config")
        import tempfile

        from .service.sandbox_demo import sandbox_connector

        work = Path(tempfile.mkdtemp(prefix="scayle-orderwise-sandbox-"))
        _sandbox, connector = sandbox_connector(work, seed=seed)
    else:
        connector = _connector(config)
        _warn_setup(connector)  # warehouses and carriers the settings name but SCAYLE lacks
    service = connector.settings.service
    try:
        code = run_service(
            connector,
            host=host or service.host,
            port=service.port if port is None else port,
            sandbox=sandbox,
        )
    except ConfigError as exc:
        connector.close()
        raise _fail(str(exc)) from None
    raise typer.Exit(code)


# --------------------------------------------------------------------------------------------- sandbox


@sandbox_app.command("serve")
def sandbox_serve(
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")
    ] = 8765,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    orders: Annotated[int, typer.Option(min=0, help="Pre-load this many demo orders.")] = 0,
    error_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of 5xx answers.")
    ] = 0.0,
    timeout_after_commit_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of writes whose answer is lost.")
    ] = 0.0,
    delay: Annotated[
        float, typer.Option(min=0.0, help="Seconds added to every call (API latency).")
    ] = 0.0,
    write_config: Annotated[
        Path | None,
        typer.Option(help="Also write the ready-to-use configuration file to this path."),
    ] = None,
) -> None:
    """Serve both fakes over real HTTP on loopback until interrupted.

    Prints a ready-to-use configuration file and the fake secrets to export.
    """
    from .sandbox.serve import main as serve_main

    argv = ["serve", "--port", str(port), "--seed", str(seed), "--orders", str(orders)]
    if write_config is not None:
        argv += ["--write-config", str(write_config)]
    argv += [
        "--error-rate",
        str(error_rate),
        "--timeout-after-commit-rate",
        str(timeout_after_commit_rate),
        "--delay",
        str(delay),
    ]
    raise typer.Exit(serve_main(argv))


def main() -> None:
    """Entry point of the ``scayle-orderwise`` command."""
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
