"""Stock OrderWise → SCAYLE: shaped, changed-only pushes with ``changedAt`` = OrderWise's time.

One pass (:meth:`InventorySync.run`):

1. Raise :attr:`~scayle_orderwise.alerts.AlertKind.SYNC_STALLED` if the last pass that finished
   with nothing left to retry is older than ``flows.sync_stalled_after_seconds``.
2. Read the OrderWise ``stock_changes`` export since the saved watermark minus
   ``inventory.overlap_seconds`` (the first pass reads everything).
3. Turn rows into one figure per (SCAYLE SKU, SCAYLE warehouse):

   - the OrderWise variant code becomes the SCAYLE SKU through the reverse of
     ``MappingConfig.sku_map`` (identity without a map; a code missing from a strict map is
     counted ``unmapped_sku`` and skipped);
   - the stock location id becomes a warehouse through ``inventory.location_warehouses``; a row
     without a location or with an unmapped one goes to ``inventory.default_warehouse``; when that
     is not set either, the row is counted ``no_warehouse``, logged and skipped (listed in
     ``result.errors``): pushing it somewhere would be a guess;
   - several rows of one SKU and location in a pass: only the latest (``lastCalculated``) counts;
   - several locations mapped to one warehouse are **summed** (the export returns every location
     row of a recalculated variant, since ``lastCalculated`` is per variant);
   - a row without ``lastCalculated`` is counted ``no_timestamp`` and skipped: ``changedAt`` must
     be the time OrderWise's figure was true, never "now" (``reference/anchors.md`` §0);
   - the quantity is shaped by :mod:`.stock_shaping` (buffer, percentage, cap, zero at or below).

4. Push each figure that differs from the last value SCAYLE accepted for that pair (kept in the
   store, so it survives restarts and is shared by workers), on a small thread pool
   (``inventory.max_workers``); the SCAYLE client's per-scope rate budget paces the calls. After
   a push that ended unclear (deferred: SCAYLE may have stored it) or was stale-rejected (SCAYLE
   holds another figure) SCAYLE's value is unknown, so the next figure is pushed whatever it is.
5. Read SCAYLE's echo. An echo that does not show what was sent means SCAYLE kept a newer
   ``changedAt`` and dropped the update: counted ``stale_rejected`` and alerted
   (:attr:`~scayle_orderwise.alerts.AlertKind.STOCK_STALE_REJECTED`, once per SKU and warehouse
   while it lasts), never recorded as sent.
6. Save the watermark: the newest ``lastCalculated`` read, held back to the oldest figure that
   must be retried (transient errors, 429s, timeouts), so nothing is lost.

Outcome counts of :class:`~scayle_orderwise.sync.SyncResult` (``result["pushed"]`` ...):
``rows_read``, ``pushed``, ``unchanged`` (equal to the last value SCAYLE accepted from us, with no
unclear or stale-rejected push since), ``superseded`` (older than
what SCAYLE already holds: a figure re-read in the overlap, or one SCAYLE is known to hold newer),
``already_rejected`` (the same figure was refused before), ``stale_rejected``, ``unknown_variant``
(SCAYLE answered 404 for the SKU), ``unknown_warehouse`` (SCAYLE's ``GET /warehouses``, read once
per connector, does not list it: nothing is sent to it, one
:attr:`~scayle_orderwise.alerts.AlertKind.SETUP_MISMATCH` alert names it), ``deferred`` (retried next pass),
``failed`` (SCAYLE refused the input; not retried until the figure changes), ``unmapped_sku``,
``no_warehouse``, ``no_timestamp``, ``bad_rows`` (export rows the wire model refused: skipped,
logged and alerted once, see :mod:`.bad_rows`; the other rows and the watermark go on).

State in the store (cursors): ``inventory:watermark``, ``inventory:last_success``,
``inventory:first_pass`` and one ``stock:<sku>:<warehouse>`` (percent-encoded) per pair holding the
last value sent as JSON. Several workers may run passes at once: the worst a race does is push the
same figure twice, which SCAYLE's ``changedAt`` rule makes harmless.

Known limitation: a SCAYLE checkout blocker is released only by a stock update newer than it; when
shaping hides a change (a ``cap`` or ``zero_at_or_below`` keeps the published figure the same),
nothing is pushed and the blocker stays until the published figure changes or the full resync runs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote

import attrs

from ..alerts import AlertKind
from ..errors import (
    AmbiguousOutcomeError,
    AuthenticationError,
    ConfigError,
    ConnectorError,
    NotFoundError,
    TransientError,
)
from ..orderwise.models import StockRow
from ..reconcile.stock import StockReport, reconcile_stock_levels
from ..scayle.models import VariantStock
from .bad_rows import BadRows
from .context import FlowContext, SyncResult
from .stock_shaping import shape_for_sku

__all__ = [
    "EPOCH",
    "FIRST_PASS_CURSOR",
    "LAST_SUCCESS_CURSOR",
    "WATERMARK_CURSOR",
    "InventorySync",
    "PairState",
    "PushOutcome",
    "StockFigure",
    "echo_matches",
    "stock_cursor",
]

WATERMARK_CURSOR = "inventory:watermark"
"""Store cursor: the newest OrderWise ``lastCalculated`` fully processed (ISO 8601, UTC)."""
LAST_SUCCESS_CURSOR = "inventory:last_success"
"""Store cursor: when a pass last finished with nothing left to retry (ISO 8601, UTC)."""
FIRST_PASS_CURSOR = "inventory:first_pass"
"""Store cursor: when the first pass started (the stall clock before any success)."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""``since`` of the very first pass: read every figure OrderWise has."""

STALLED_SUBJECT = "inventory"

_T = TypeVar("_T")
_R = TypeVar("_R")

PUSHED = "pushed"
UNCHANGED = "unchanged"
SUPERSEDED = "superseded"
ALREADY_REJECTED = "already_rejected"
STALE_REJECTED = "stale_rejected"
UNKNOWN_VARIANT = "unknown_variant"
UNKNOWN_WAREHOUSE = "unknown_warehouse"
DEFERRED = "deferred"
FAILED = "failed"

_RETRY = frozenset({DEFERRED})
"""Outcomes that hold the watermark back so the figure is read and tried again."""
_FINAL_REFUSALS = frozenset({STALE_REJECTED, UNKNOWN_VARIANT, UNKNOWN_WAREHOUSE, FAILED})
"""Outcomes remembered per pair so the same figure is not pushed again on an overlap re-read."""

_ECHO_TOLERANCE = timedelta(seconds=1)
"""SCAYLE may store ``changedAt`` with less precision than sent; within this it is the same time."""


def stock_cursor(sku: str, warehouse: str) -> str:
    """Store cursor name of the last value sent for one SKU in one warehouse."""
    return f"stock:{quote(sku, safe='')}:{quote(warehouse, safe='')}"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got naive {value!r}")
    return value.astimezone(UTC)


@attrs.frozen
class StockFigure:
    """What SCAYLE should show for one SKU in one warehouse, and since when it is true."""

    sku: str
    warehouse: str
    free: Decimal
    """OrderWise free stock, summed over the locations mapped to the warehouse."""
    quantity: int
    """The shaped sellable quantity to publish."""
    changed_at: datetime
    """When OrderWise's figure was true (UTC): the ``changedAt`` sent."""
    earliest_at: datetime
    """The oldest ``lastCalculated`` behind the figure: the watermark stops here on a retry."""
    locations: tuple[str, ...] = ()


@attrs.frozen
class PairState:
    """What the store remembers per (SKU, warehouse): the last value SCAYLE accepted from us,
    the last figure it refused for good, and the newer ``changedAt`` a stale echo showed.

    ``sent_quantity`` is what SCAYLE holds as far as we know; it is cleared (``None``: unknown)
    when a later push ended unclear (deferred: it may have been stored) or was stale-rejected
    (SCAYLE holds someone else's figure), so the next figure is pushed even if it equals the old
    one. ``sent_at`` is kept: a figure older than a value SCAYLE accepted is still superseded.
    """

    sent_quantity: int | None = None
    sent_at: datetime | None = None
    refused_quantity: int | None = None
    refused_at: datetime | None = None
    refused_outcome: str | None = None
    held_at: datetime | None = None

    @classmethod
    def from_json(cls, text: str | None) -> PairState:
        """Parse a stored cursor value (``None``/empty/garbled: nothing known)."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(
                sent_quantity=data.get("sent_quantity"),
                sent_at=_parse(data.get("sent_at")),
                refused_quantity=data.get("refused_quantity"),
                refused_at=_parse(data.get("refused_at")),
                refused_outcome=data.get("refused_outcome"),
                held_at=_parse(data.get("held_at")),
            )
        except (ValueError, TypeError, AttributeError):
            return cls()

    def to_json(self) -> str:
        """The cursor value."""
        return json.dumps(
            {
                "sent_quantity": self.sent_quantity,
                "sent_at": _iso(self.sent_at),
                "refused_quantity": self.refused_quantity,
                "refused_at": _iso(self.refused_at),
                "refused_outcome": self.refused_outcome,
                "held_at": _iso(self.held_at),
            },
            sort_keys=True,
        )

    def skip_reason(self, figure: StockFigure) -> str | None:
        """Why ``figure`` need not be pushed (an outcome name), or ``None`` to push it."""
        if self.sent_at is not None and figure.changed_at < self.sent_at:
            return SUPERSEDED
        if (
            self.sent_quantity is not None
            and self.held_at is None
            and figure.quantity == self.sent_quantity
        ):
            return UNCHANGED
        if (
            self.refused_outcome is not None
            and figure.quantity == self.refused_quantity
            and figure.changed_at == self.refused_at
        ):
            return ALREADY_REJECTED
        if self.held_at is not None and figure.changed_at < self.held_at:
            return SUPERSEDED
        return None


def echo_matches(quantity: int, changed_at: datetime, echo: VariantStock) -> bool:
    """Whether SCAYLE's answer shows the update was applied (same quantity and ``changedAt``)."""
    if echo.quantity != quantity:
        return False
    if echo.changed_at is None:
        return True
    return abs(_utc(echo.changed_at) - changed_at) < _ECHO_TOLERANCE


@attrs.frozen
class PushOutcome:
    """What happened to one figure in a pass: an outcome name (see the module docstring)."""

    figure: StockFigure
    outcome: str
    error: str | None = None


class InventorySync:
    """One pass of the stock flow (see the module docstring); also the full drift check."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        config = getattr(ctx.mapper, "config", None)
        sku_map = getattr(config, "sku_map", None)
        self._strict_skus = bool(getattr(config, "strict_skus", True))
        self._reverse_skus: dict[str, str] | None = (
            None if sku_map is None else {code: sku for sku, code in sku_map.items()}
        )
        self._missing_warehouses: dict[str, str] = {}  # warehouse → why nothing is sent to it
        self._reported: set[str] = set()
        self._report_lock = threading.Lock()

    # ------------------------------------------------------------------------- hooks (override)

    def scayle_sku(self, variant_code: str) -> str | None:
        """The SCAYLE SKU of an OrderWise variant code, or ``None`` to skip it.

        Default: the reverse of ``MappingConfig.sku_map`` (identity without a map, or for a code
        missing from a map with ``strict_skus=False``). Override it when SKUs are mapped by a hook.
        """
        code = variant_code.strip()
        if self._reverse_skus is None:
            return code
        sku = self._reverse_skus.get(code)
        if sku is None and not self._strict_skus:
            return code
        return sku

    def warehouse_for(self, location_id: int | None) -> str | None:
        """The SCAYLE warehouse reference key of an OrderWise stock location (``None``: none)."""
        settings = self.ctx.inventory
        if location_id is not None:
            mapped = settings.location_warehouses.get(str(location_id))
            if mapped:
                return mapped
        return settings.default_warehouse

    def shape(self, free: Decimal, sku: str) -> int:
        """The sellable quantity of ``free`` OrderWise stock for ``sku`` (see :mod:`.stock_shaping`)."""
        return shape_for_sku(free, sku, self.ctx.inventory)

    # -------------------------------------------------------------------------------------- pass

    def run(self) -> SyncResult:
        """One pass: read changes since the watermark (minus the overlap), push what changed."""
        ctx = self.ctx
        result = SyncResult("inventory")
        started = ctx.clock()
        self.check_stalled(started)
        watermark = _parse(ctx.store.get_cursor(WATERMARK_CURSOR))
        overlap = timedelta(seconds=max(0, ctx.inventory.overlap_seconds))
        since = EPOCH if watermark is None else max(EPOCH, watermark - overlap)
        bad = BadRows(ctx, STALLED_SUBJECT, result)
        rows = list(ctx.orderwise.iter_stock_changes(since, on_invalid=bad))
        result.add("rows_read", len(rows) + len(bad.rows))
        bad.finish()
        figures = self.figures(rows, result)
        outcomes = self.push_all(figures)
        hold: datetime | None = None
        for item in outcomes:
            result.add(item.outcome)
            if item.error:
                result.errors.append(item.error)
            if item.outcome in _RETRY:
                at = item.figure.earliest_at
                hold = at if hold is None else min(hold, at)
        newest = max((_utc(r.last_calculated) for r in rows if r.last_calculated), default=None)
        target = hold if hold is not None else newest
        if target is not None and (watermark is None or target > watermark):
            ctx.store.set_cursor(WATERMARK_CURSOR, target.isoformat())
        if hold is None:
            ctx.store.set_cursor(LAST_SUCCESS_CURSOR, started.astimezone(UTC).isoformat())
            ctx.alerts.resolve(AlertKind.SYNC_STALLED, STALLED_SUBJECT)
        ctx.log("inventory_pass", since=since.isoformat(), **dict(sorted(result.counts.items())))
        return result

    def check_stalled(self, now: datetime) -> bool:
        """Alert when the last complete pass is older than ``flows.sync_stalled_after_seconds``."""
        store = self.ctx.store
        last = _parse(store.get_cursor(LAST_SUCCESS_CURSOR))
        if last is None:
            last = _parse(store.get_cursor(FIRST_PASS_CURSOR))
            if last is None:
                store.set_cursor(FIRST_PASS_CURSOR, now.astimezone(UTC).isoformat())
                return False
        limit = timedelta(seconds=self.ctx.flows.sync_stalled_after_seconds)
        if now - last <= limit:
            return False
        minutes = int((now - last).total_seconds() // 60)
        self.ctx.alerts.raise_alert(
            AlertKind.SYNC_STALLED,
            STALLED_SUBJECT,
            f"stock sync has not completed a pass for {minutes} min (last at {last.isoformat()}); "
            "SCAYLE stock may be out of date",
            cause=f"last success {last.isoformat()}",
        )
        return True

    # ---------------------------------------------------------------------------------- figures

    def figures(
        self, rows: Iterable[StockRow], result: SyncResult, *, need_time: bool = True
    ) -> list[StockFigure]:
        """One figure per (SCAYLE SKU, warehouse) from export rows; skips are counted in ``result``.

        With ``need_time=False`` (the drift check) rows without ``lastCalculated`` are kept.
        """
        latest: dict[tuple[str, int | None], tuple[StockRow, datetime | None]] = {}
        for row in rows:
            sku = self.scayle_sku(row.sku)
            if not sku:
                result.add("unmapped_sku")
                continue
            at = _utc(row.last_calculated) if row.last_calculated is not None else None
            if at is None and need_time:
                result.add("no_timestamp")
                self.ctx.log("stock_row_without_time", sku=sku, location=row.stock_location_id)
                continue
            key = (sku, row.stock_location_id)
            seen = latest.get(key)
            if seen is None or seen[1] is None or (at is not None and at >= seen[1]):
                latest[key] = (row, at)
        groups: dict[tuple[str, str], list[tuple[StockRow, datetime | None]]] = {}
        unplaced: set[str] = set()
        for (sku, location), entry in latest.items():
            warehouse = self.warehouse_for(location)
            if warehouse is None:
                result.add("no_warehouse")
                unplaced.add(f"{location}")
                self.ctx.log("stock_location_unmapped", sku=sku, location=location)
                continue
            groups.setdefault((sku, warehouse), []).append(entry)
        for place in sorted(unplaced):
            result.errors.append(
                f"OrderWise stock location {place} maps to no SCAYLE warehouse "
                "(set inventory.location_warehouses or inventory.default_warehouse)"
            )
        figures: list[StockFigure] = []
        for (sku, warehouse), entries in sorted(groups.items()):
            free = sum((row.free_stock for row, _ in entries), Decimal(0))
            times = [at for _, at in entries if at is not None]
            when = max(times) if times else EPOCH
            figures.append(
                StockFigure(
                    sku=sku,
                    warehouse=warehouse,
                    free=free,
                    quantity=self.shape(free, sku),
                    changed_at=when,
                    earliest_at=min(times) if times else EPOCH,
                    locations=tuple(sorted(str(row.stock_location_id) for row, _ in entries)),
                )
            )
        return figures

    # ------------------------------------------------------------------------------------ pushes

    def push_all(self, figures: Sequence[StockFigure]) -> list[PushOutcome]:
        """Push every figure (on up to ``inventory.max_workers`` threads); outcomes in input order.

        Figures for a warehouse SCAYLE does not have are not sent (``unknown_warehouse``, one
        :attr:`~scayle_orderwise.alerts.AlertKind.SETUP_MISMATCH` per warehouse).
        """
        self._check_warehouses(figures)
        return _map_bounded(self.push, figures, self.ctx.inventory.max_workers)

    def _scayle_warehouses(self) -> frozenset[str] | None:
        """The tenant's warehouses, read once per connector (``None``: could not be read)."""
        return self.ctx.tenant.warehouses(self.ctx.scayle, self.ctx.clock()).keys

    def _check_warehouses(self, figures: Sequence[StockFigure]) -> None:
        known = self._scayle_warehouses() if figures else None
        if known is None:
            return
        wanted: dict[str, int] = {}
        for figure in figures:
            wanted[figure.warehouse] = wanted.get(figure.warehouse, 0) + 1
        for warehouse, count in sorted(wanted.items()):
            subject = f"warehouse:{warehouse}"
            if warehouse in known:
                self.ctx.alerts.resolve(AlertKind.SETUP_MISMATCH, subject)
                continue
            self._missing_warehouses[warehouse] = (
                f"SCAYLE has no warehouse {warehouse!r} (GET /warehouses lists "
                f"{', '.join(sorted(known)) or 'none'}): stock for {count} SKU(s) was not sent; "
                "create the warehouse in SCAYLE or correct inventory.location_warehouses / "
                "inventory.default_warehouse"
            )
            self.ctx.alerts.raise_alert(
                AlertKind.SETUP_MISMATCH,
                subject,
                self._missing_warehouses[warehouse],
                cause="missing_warehouse",
                details={"warehouse": warehouse, "skus": count},
            )

    def push(self, figure: StockFigure) -> PushOutcome:
        """Decide, push and record one figure; never raises except for auth/config problems."""
        ctx = self.ctx
        name = stock_cursor(figure.sku, figure.warehouse)
        state = PairState.from_json(ctx.store.get_cursor(name))
        skip = state.skip_reason(figure)
        if skip is not None:
            return PushOutcome(figure, skip)
        missing = self._missing_warehouses.get(figure.warehouse)
        if missing is not None:  # found missing before the pushes: nothing is sent
            self._refused(name, state, figure, UNKNOWN_WAREHOUSE)
            first = self._first_report(figure.warehouse)
            return PushOutcome(figure, UNKNOWN_WAREHOUSE, missing if first else None)
        try:
            echo = ctx.scayle.set_stock(
                figure.sku, figure.warehouse, figure.quantity, figure.changed_at
            )
        except (AuthenticationError, ConfigError):
            raise
        except NotFoundError as exc:
            outcome = self._not_found(figure, exc)
            self._refused(name, state, figure, outcome)
            ctx.log("stock_not_found", sku=figure.sku, warehouse=figure.warehouse, outcome=outcome)
            return PushOutcome(figure, outcome, f"{figure.sku}@{figure.warehouse}: {exc}")
        except (TransientError, AmbiguousOutcomeError) as exc:
            ctx.log("stock_deferred", sku=figure.sku, warehouse=figure.warehouse, error=str(exc))
            self._in_doubt(name, state)
            return PushOutcome(figure, DEFERRED)
        except ConnectorError as exc:
            self._refused(name, state, figure, FAILED)
            return PushOutcome(figure, FAILED, f"{figure.sku}@{figure.warehouse}: {exc}")
        except Exception as exc:  # one bad figure never ends the pass; retried next pass
            ctx.logger.exception("unexpected error pushing %s@%s", figure.sku, figure.warehouse)
            self._in_doubt(name, state)
            return PushOutcome(
                figure, DEFERRED, f"{figure.sku}@{figure.warehouse}: {type(exc).__name__}: {exc}"
            )
        if echo_matches(figure.quantity, figure.changed_at, echo):
            ctx.store.set_cursor(
                name, PairState(sent_quantity=figure.quantity, sent_at=figure.changed_at).to_json()
            )
            if state.held_at is not None or state.refused_outcome == STALE_REJECTED:
                ctx.alerts.resolve(AlertKind.STOCK_STALE_REJECTED, _pair(figure))
            return PushOutcome(figure, PUSHED)
        held = _utc(echo.changed_at) if echo.changed_at is not None else figure.changed_at
        state = attrs.evolve(
            state,
            sent_quantity=None,  # SCAYLE holds someone else's figure now
            refused_quantity=figure.quantity,
            refused_at=figure.changed_at,
            refused_outcome=STALE_REJECTED,
            held_at=max(held, state.held_at) if state.held_at is not None else held,
        )
        ctx.store.set_cursor(name, state.to_json())
        ctx.alerts.raise_alert(
            AlertKind.STOCK_STALE_REJECTED,
            _pair(figure),
            f"SCAYLE ignored stock {figure.quantity} for {figure.sku} in {figure.warehouse} "
            f"(changedAt {figure.changed_at.isoformat()}): it holds {echo.quantity} "
            f"from {_iso(echo.changed_at) or 'an unknown time'}",
            cause="scayle holds a newer changedAt",
            details={
                "sku": figure.sku,
                "warehouse": figure.warehouse,
                "sent_quantity": figure.quantity,
                "sent_changed_at": figure.changed_at.isoformat(),
                "stored_quantity": echo.quantity,
                "stored_changed_at": _iso(echo.changed_at),
            },
        )
        ctx.log(
            "stock_stale_rejected",
            sku=figure.sku,
            warehouse=figure.warehouse,
            sent=figure.quantity,
            stored=echo.quantity,
        )
        return PushOutcome(figure, STALE_REJECTED)

    def _not_found(self, figure: StockFigure, exc: NotFoundError) -> str:
        """What a 404 on a push means. The warehouse was checked against ``GET /warehouses``, so
        the variant is missing, unless SCAYLE names the warehouse (deleted since the check: read
        the list again next pass). Without the list, the error key is all there is to go on."""
        says_warehouse = "WAREHOUSE" in (exc.error_key or "").upper()
        known = self._scayle_warehouses()
        if known is not None and figure.warehouse in known and not says_warehouse:
            return UNKNOWN_VARIANT
        if known is not None and says_warehouse:
            self.ctx.tenant.forget("warehouses")
        return UNKNOWN_WAREHOUSE if says_warehouse else UNKNOWN_VARIANT

    def _first_report(self, warehouse: str) -> bool:
        """True the first time a missing warehouse is reported in this pass (one error line)."""
        with self._report_lock:
            if warehouse in self._reported:
                return False
            self._reported.add(warehouse)
            return True

    def _in_doubt(self, name: str, state: PairState) -> None:
        """After an unclear push SCAYLE may hold the new figure or the old one: forget which, so
        the next figure is pushed even when it equals the last one acknowledged."""
        if state.sent_quantity is not None:
            self.ctx.store.set_cursor(name, attrs.evolve(state, sent_quantity=None).to_json())

    def _refused(self, name: str, state: PairState, figure: StockFigure, outcome: str) -> None:
        refused = attrs.evolve(
            state,
            refused_quantity=figure.quantity,
            refused_at=figure.changed_at,
            refused_outcome=outcome,
        )
        self.ctx.store.set_cursor(name, refused.to_json())

    # ------------------------------------------------------------------------------ drift check

    def drift_report(self) -> StockReport:
        """Full check: all OrderWise free stock, shaped, against SCAYLE stock per SKU and warehouse.

        OrderWise is read through the ``stock_full`` export (or, when it is not configured, the
        ``stock_changes`` export since the epoch); SCAYLE with one ``GET /variants/{sku}/stocks``
        per SKU OrderWise lists (a SKU SCAYLE does not know reports as ``missing_in_shop``). SKUs
        only SCAYLE knows are out of reach without a catalogue export and are not listed.
        """
        rows = list(self._full_stock())
        figures = self.figures(rows, SyncResult("stock_drift"), need_time=False)
        expected = [(f.sku, f.warehouse, f.quantity) for f in figures]
        skus = sorted({f.sku for f in figures})
        per_sku = _map_bounded(self._scayle_stock, skus, self.ctx.inventory.max_workers)
        actual = [entry for entries in per_sku for entry in entries]
        return reconcile_stock_levels(expected, actual)

    def _full_stock(self) -> Iterator[StockRow]:
        orderwise = self.ctx.orderwise
        bad = BadRows(self.ctx, "stock_drift", SyncResult("stock_drift"))  # logged, not alerted
        try:
            return iter(list(orderwise.iter_stock_full(on_invalid=bad)))
        except ConfigError:
            return iter(list(orderwise.iter_stock_changes(EPOCH, on_invalid=bad)))

    def _scayle_stock(self, sku: str) -> list[tuple[str, str | None, int | None]]:
        try:
            stocks = self.ctx.scayle.get_stocks(sku)
        except NotFoundError:
            return []
        return [(sku, s.warehouse_reference_key, s.quantity) for s in stocks]


def _pair(figure: StockFigure) -> str:
    return f"{figure.sku}@{figure.warehouse}"


def _map_bounded(fn: Callable[[_T], _R], items: Sequence[_T], workers: int) -> list[_R]:
    """``[fn(x) for x in items]`` on up to ``workers`` threads; the first exception propagates
    (``BaseException`` included) after the work not yet started is cancelled."""
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    pool = ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="stock")
    futures: list[Future[_R]] = [pool.submit(fn, item) for item in items]
    try:
        return [future.result() for future in futures]
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
