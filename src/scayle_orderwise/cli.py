"""The ``scayle-orderwise`` command: demo, serve, sync, reconcile, status, quarantine, retry, sandbox, postings.

Configuration comes from a TOML file (``--config`` or ``SCAYLE_ORDERWISE_CONFIG``) and the
environment (``SCAYLE_ORDERWISE_...``); secrets only from the environment. Errors print one line and
exit non-zero: 2 for bad configuration or input, 1 when a flow or check failed.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .config import ConnectorSettings
from .errors import ConfigError, ConnectorError, StoreError

__all__ = ["app", "main"]

app = typer.Typer(
    name="scayle-orderwise",
    help="Connect SCAYLE to OrderWise: exactly-once orders, despatches, cancellations, stock, reconciliation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
quarantine_app = typer.Typer(
    help="Records that need a person (orders, packages, cancellations): list, show, release.",
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
err_console = Console(stderr=True, soft_wrap=True)

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


@app.callback()
def _global_options(
    ctx: typer.Context,
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
    ctx.obj = {"log_level": log_level, "log_format": log_format}
    if log_level is not None or log_format is not LogFormat.text:
        from .logs import configure_logging

        configure_logging((log_level or LogLevel.warning).value, log_format.value)


class ReportFormat(StrEnum):
    """Report formats."""

    html = "html"
    json = "json"
    csv = "csv"


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print("[bold red]error:[/] ", end="", highlight=False)
    err_console.print(message, markup=False, highlight=False)
    return typer.Exit(code)


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
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
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


def _parse_day(value: str | None, *, end: bool = False) -> datetime | None:
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day, dtime.min, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"not a date (YYYY-MM-DD) or ISO timestamp: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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
    flow: Annotated[Flow, typer.Argument(help="Which flow to run.")] = Flow.all,
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
    done = 0
    failed = False
    try:
        while True:
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
    since: Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD), inclusive.")] = None,
    until: Annotated[str | None, typer.Option(help="Last day (YYYY-MM-DD), inclusive.")] = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="Report format.")
    ] = ReportFormat.html,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Reconcile SCAYLE orders against OrderWise orders and write the report."""
    from .reconcile import report as render

    start, end = _parse_day(since), _parse_day(until, end=True)
    connector = _connector(config)
    try:
        result = connector.reconcile(since=start, until=end)
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
    since: Annotated[str, typer.Option(help="First day of the period (YYYY-MM-DD).")] = "",
    until: Annotated[str, typer.Option(help="Last day of the period (YYYY-MM-DD).")] = "",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="CSV file (default: stdout).")
    ] = None,
) -> None:
    """Write the period's batched financial postings (net, VAT, gross per tax code) as CSV."""
    if not since or not until:
        raise _fail("--since and --until are required")
    start, end = _parse_day(since), _parse_day(until, end=True)
    assert start is not None and end is not None
    connector = _connector(config)
    try:
        text = connector.export_postings(since=start, until=end)
    except ConnectorError as exc:
        raise _fail(f"postings export failed: {exc}", 1) from None
    finally:
        connector.close()
    _emit(text, output)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"written {output}")


# ---------------------------------------------------------------------------------------------- status


@app.command()
def status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Ledger counts by state, the oldest pending and sent orders, open alerts."""
    from .connector import ledger_health

    store = _store(config)
    try:
        health = ledger_health(store)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(health.as_dict(), indent=2))
        return
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
        console.print(f"  [yellow]{kind}[/] {subject}: {cause}", highlight=False)


# ------------------------------------------------------------------------------------------ quarantine


@quarantine_app.command("list")
def quarantine_list(
    config: ConfigOption = None,
    kind: Annotated[
        str, typer.Option(help="Record kind: order, shipment, cancellation, ... or 'all'.")
    ] = "order",
) -> None:
    """Quarantined records (orders by default) with their reasons."""
    from .store import State

    store = _store(config)
    try:
        table = Table(title="Quarantined" + ("" if kind == "all" else f" ({kind})"))
        for column in ("record", "since", "reason"):
            table.add_column(column)
        count = 0
        for record in store.records(
            states=[State.QUARANTINED], kind=None if kind == "all" else kind
        ):
            label = record.subject if record.kind == "order" else record.key
            table.add_row(label, f"{record.updated_at:%Y-%m-%d %H:%M}", record.reason or "")
            count += 1
    finally:
        store.close()
    console.print(table if count else "nothing is quarantined")


@quarantine_app.command("show")
def quarantine_show(
    subject: Annotated[str, typer.Argument(help="An order id, or a full ledger key.")],
    config: ConfigOption = None,
) -> None:
    """One record of the ledger and its full history."""
    store = _store(config)
    try:
        record = store.get(_key(subject))
    finally:
        store.close()
    if record is None:
        raise _fail(f"{_key(subject)} is not in the ledger", 1)
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
    subject: Annotated[str, typer.Argument(help="An order id, or a full ledger key.")],
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
    kind: Annotated[str, typer.Argument(help="Alert kind, e.g. cancellation_too_late.")],
    subject: Annotated[str, typer.Argument(help="Its subject as `alerts list` shows it.")],
    config: ConfigOption = None,
) -> None:
    """Close an alert a person has dealt with (it is raised again if its cause comes back)."""
    from .alerts import AlertDispatcher

    store = _store(config)
    try:
        dispatcher = AlertDispatcher(state=store)
        if not any(k == kind and s == subject for k, s, _ in dispatcher.open_alerts()):
            raise _fail(f"no open alert {kind} for {subject}", 1)
        dispatcher.resolve(kind, subject)
    finally:
        store.close()
    console.print(f"closed {kind} for {subject}")


@app.command()
def retry(
    order_ids: Annotated[
        list[str] | None, typer.Argument(help="Orders to retry (default: every failed one).")
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
        for key in keys:
            record = store.get(key)
            if record is None or record.state != State.FAILED:
                err_console.print(f"skipped {key}: not failed", markup=False)
                continue
            store.mark(key, State.PENDING, reason="retry requested by a person")
            done += 1
    finally:
        store.close()
    console.print(f"{done} order(s) queued for retry")


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
) -> None:
    """Serve both fakes over real HTTP on loopback until interrupted (prints the fake credentials)."""
    from .sandbox.serve import main as serve_main

    argv = ["serve", "--port", str(port), "--seed", str(seed), "--orders", str(orders)]
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
