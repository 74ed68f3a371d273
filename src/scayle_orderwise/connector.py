"""The :class:`Connector`: clients + mapper + store + alert sinks, one method per flow.

Every flow method is one pass that is safe to repeat (run it on a schedule, from a webhook handler
or by hand) and returns a :class:`~scayle_orderwise.sync.SyncResult` with counts per outcome.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import attrs

from ._http import RateBudget
from .alerts import AlertDispatcher, AlertKind, AlertSink, LoggingAlertSink, WebhookAlertSink
from .config import ConnectorSettings, FlowSettings, InventorySettings
from .errors import ConfigError, ConnectorError
from .mapping import MappingConfig, OrderMapper
from .orderwise.client import OrderwiseClient
from .scayle import webhooks
from .scayle.client import ScayleClient
from .scayle.rate_limits import scope_limits
from .store import IdempotencyStore, MemoryStore, State
from .store.base import ARCHIVABLE_STATES, Clock
from .store.shared_budget import SharedRateBudget
from .sync.context import FlowContext, SyncResult, utcnow
from .sync.orders import ORDER_KIND, REFERENCE_KIND, WEBHOOK_KEY, OrderSync, order_key

if TYPE_CHECKING:
    from .reconcile import ReconciliationReport, StockReport, Tolerance
    from .sandbox import Sandbox
    from .sync.reconciliation import PostingsExport
    from .sync.setup_check import SetupReport

__all__ = [
    "Connector",
    "Health",
    "WebhookOutcome",
    "ledger_health",
    "open_store",
    "release_quarantined",
    "shared_rate_budget",
]

logger = logging.getLogger("scayle_orderwise.connector")


@attrs.frozen
class WebhookOutcome:
    """What :meth:`Connector.ingest_webhook` did with one request."""

    event: str
    outcome: str  # "recorded", "duplicate", "ignored"
    order_id: int | None = None


@attrs.frozen
class Health:
    """A snapshot of the ledger for monitoring: counts, oldest pending/sent order, open alerts."""

    counts: Mapping[str, int]
    oldest_pending: datetime | None
    oldest_sent: datetime | None
    quarantined: int
    open_alerts: tuple[tuple[str, str, str], ...]
    checked_at: datetime
    reference_writes_waiting: int = 0
    """Orders in OrderWise whose reference write-back to SCAYLE still waits (budget or failure)."""

    @property
    def ok(self) -> bool:
        """True when nothing is quarantined and no alert is open."""
        return self.quarantined == 0 and not self.open_alerts

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``status --json``): open alerts as ``{kind, subject, cause}`` objects."""
        return {
            "ok": self.ok,
            "counts": dict(self.counts),
            "oldest_pending": self.oldest_pending.isoformat() if self.oldest_pending else None,
            "oldest_sent": self.oldest_sent.isoformat() if self.oldest_sent else None,
            "quarantined": self.quarantined,
            "open_alerts": [
                {"kind": kind, "subject": subject, "cause": cause}
                for kind, subject, cause in self.open_alerts
            ],
            "reference_writes_waiting": self.reference_writes_waiting,
            "checked_at": self.checked_at.isoformat(),
        }


def ledger_health(store: IdempotencyStore, *, now: datetime | None = None) -> Health:
    """The :class:`Health` of a ledger, read from the store alone (no API credentials needed)."""
    counts = {str(state): n for state, n in store.counts(kind=ORDER_KIND).items()}
    pending = store.oldest(State.PENDING, kind=ORDER_KIND)
    sent = store.oldest(State.SENT, kind=ORDER_KIND)
    references = store.counts(kind=REFERENCE_KIND)
    return Health(
        counts=counts,
        oldest_pending=pending.created_at if pending else None,
        oldest_sent=sent.updated_at if sent else None,
        quarantined=counts.get(str(State.QUARANTINED), 0),
        open_alerts=tuple(AlertDispatcher(state=store).open_alerts()),
        checked_at=now or utcnow(),
        reference_writes_waiting=sum(
            n for state, n in references.items() if state not in ARCHIVABLE_STATES
        ),
    )


def release_quarantined(
    store: IdempotencyStore,
    key: str,
    *,
    reason: str = "released by a person",
    actor: str | None = None,
) -> None:
    """Move a quarantined record (an order, a package, a cancellation) back to ``pending``.

    ``actor`` (who released it) is kept in the record's history with the reason. Its quarantine
    alert is forgotten too, so the same cause alerts again if it comes back.
    """
    record = store.get(key)
    if record is None:
        raise ConfigError(f"{key} is not in the ledger")
    if record.state != State.QUARANTINED:
        raise ConfigError(f"{key} is {record.state}, not quarantined")
    store.mark(key, State.PENDING, reason=reason, actor=actor)
    if record.kind == ORDER_KIND:
        AlertDispatcher(state=store).resolve(AlertKind.ORDER_QUARANTINED, record.subject)


def open_store(url: str, *, clock: Clock | None = None) -> IdempotencyStore:
    """Open a store from a URL: ``memory://``, ``sqlite:///path.db`` or ``postgresql://...``.

    ``clock`` is the store's notion of "now" (default: the real UTC clock).
    """
    if url.startswith("memory:"):
        return MemoryStore(clock=clock)
    if url.startswith("sqlite:///"):
        from .store import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"), clock=clock)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from .store.postgres import PostgresStore
        except ImportError:
            raise ConfigError(
                "a PostgreSQL ledger needs the postgres extra: pip install 'scayle-orderwise[postgres]'"
            ) from None
        return PostgresStore(url, clock=clock)
    raise ConfigError(
        f"unsupported store URL {url.split('://')[0]}://...: use memory://, sqlite:/// or postgresql://"
    )


def shared_rate_budget(
    store: IdempotencyStore,
    settings: ConnectorSettings,
    *,
    limits: Mapping[str, tuple[int, float]] | None = None,
    clock: Callable[[], float] | None = None,
) -> SharedRateBudget | None:
    """The SCAYLE rate budget shared by every worker of ``store``, or ``None`` when the settings
    ask for a budget per process or the store cannot share one (a custom store without
    ``open_rate_ledger``)."""
    s = settings.scayle
    if s.rate_budget != "shared":
        return None
    options: dict[str, Any] = {
        "limits": limits if limits is not None else scope_limits(window=s.rate_window_seconds),
        "headroom": s.rate_headroom,
    }
    if clock is not None:
        options["clock"] = clock
    budget = SharedRateBudget.for_store(store, **options)
    if budget is None:
        logger.info("%s keeps no rate ledger: each process keeps its own SCAYLE budget", store)
    return budget


class Connector:
    """Connects one SCAYLE shop to one OrderWise installation.

    ``worker_id`` names this worker in the ledger: it must be unique among live workers and stable
    across restarts (a restarted worker takes back its own in-flight claims at once, while other
    workers wait for the lease to expire). It defaults to the host name.

    ``clock`` (a callable returning an aware UTC datetime) is the flows' notion of "now"; a store
    passed in should use the same clock (the default ``MemoryStore`` does).
    """

    def __init__(
        self,
        *,
        scayle: ScayleClient,
        orderwise: OrderwiseClient,
        store: IdempotencyStore | None = None,
        mapper: OrderMapper | None = None,
        alerts: Iterable[AlertSink] = (),
        worker_id: str | None = None,
        settings: ConnectorSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings or ConnectorSettings()
        self.scayle = scayle
        self.orderwise = orderwise
        self.store: IdempotencyStore = store if store is not None else MemoryStore(clock=clock)
        self.mapper = mapper or OrderMapper(MappingConfig())
        self.alerts: list[AlertSink] = list(alerts)
        self.worker_id = worker_id or self.settings.worker_id or socket.gethostname()
        self._clock = clock or utcnow
        self._closables: list[Any] = []  # what the constructors built for this connector alone
        self._dispatcher = AlertDispatcher(self.alerts, clock=self._clock, state=self.store)
        self.context = FlowContext(
            scayle=self.scayle,
            orderwise=self.orderwise,
            store=self.store,
            mapper=self.mapper,
            alerts=self._dispatcher,
            worker_id=self.worker_id,
            flows=self.settings.flows,
            inventory=self.settings.inventory,
            status_map=dict(self.settings.orderwise.status_map) or None,
            clock=self._clock,
        )

    def __repr__(self) -> str:
        return f"Connector(worker_id={self.worker_id!r}, store={type(self.store).__name__})"

    # ----------------------------------------------------------------------------------- construction

    @classmethod
    def for_sandbox(
        cls,
        sandbox: Sandbox,
        store: IdempotencyStore | str | None = None,
        mapping: MappingConfig | OrderMapper | None = None,
        alerts: Iterable[AlertSink] = (),
        settings: ConnectorSettings | None = None,
        worker_id: str | None = None,
        *,
        flows: FlowSettings | None = None,
        inventory: InventorySettings | None = None,
        clock: Clock | None = None,
    ) -> Connector:
        """A connector wired to a :class:`~scayle_orderwise.sandbox.Sandbox`.

        Time runs on the sandbox's clock (``sandbox.clock``) unless ``clock`` is given, so grace
        periods, leases and backoffs can be driven with ``sandbox.clock.advance(...)``. ``store``
        is a store, a store URL (``sqlite:///ledger.db``, opened on that clock) or ``None`` (a
        ``MemoryStore`` on that clock). A store you build yourself keeps its own clock: pass it
        ``clock=sandbox.clock.utcnow`` too.
        """
        clock = clock or sandbox.clock.utcnow
        if store is None or isinstance(store, str):
            store = open_store(store or "memory://", clock=clock)
        base = settings or ConnectorSettings()
        overrides: dict[str, Any] = {}
        if flows is not None:
            overrides["flows"] = flows
        if inventory is not None:
            overrides["inventory"] = inventory
        elif base.inventory.default_warehouse is None:
            overrides["inventory"] = base.inventory.model_copy(
                update={"default_warehouse": sandbox.scayle.default_warehouse}
            )
        if overrides:
            base = base.model_copy(update=overrides)
        mapper = (
            mapping if isinstance(mapping, OrderMapper) else OrderMapper(mapping or MappingConfig())
        )
        omitted = base.orderwise.omitted_fields()
        fake = sandbox.scayle
        budget = shared_rate_budget(
            store,
            base,
            limits=scope_limits(fake.rate_limits, window=fake.rate_window),
            clock=sandbox.clock.monotonic,
        )
        connector = cls(
            scayle=sandbox.scayle_client(
                budget=budget if budget is not None else sandbox.scayle_budget
            ),
            orderwise=sandbox.orderwise_client(**({"omit_fields": omitted} if omitted else {})),
            store=store,
            mapper=mapper,
            alerts=alerts,
            worker_id=worker_id or "sandbox-worker",
            settings=base,
            clock=clock,
        )
        if budget is not None:
            connector._closables.append(budget)
        return connector

    @classmethod
    def from_settings(
        cls,
        settings: ConnectorSettings,
        *,
        alerts: Iterable[AlertSink] = (),
        mapper: OrderMapper | None = None,
        store: IdempotencyStore | None = None,
    ) -> Connector:
        """Build clients, store, mapper and alert sinks from :class:`ConnectorSettings`.

        Raises :class:`ConfigError` when a setting is missing, or when OrderWise lacks the service
        item delivery charges are booked to (``[mapping] delivery_variant_code``, default
        ``CARRIAGE``; checked once and remembered in the ledger).
        """
        s, o = settings.scayle, settings.orderwise
        if not s.base_url or s.token is None:
            raise ConfigError(
                "SCAYLE base_url and token (SCAYLE_ORDERWISE_SCAYLE__TOKEN) are required"
            )
        if not o.api_root or not o.username or o.password is None:
            raise ConfigError(
                "OrderWise api_root, username and password (SCAYLE_ORDERWISE_ORDERWISE__PASSWORD) are required"
            )
        missing = o.missing_exports()
        if missing:
            raise ConfigError(
                "set the ids of the OrderWise export definitions "
                + ", ".join(f"[orderwise.export_definitions] {name}" for name in missing)
                + " (create them in OrderWise; see the configuration guide)"
            )
        own_store = store is None
        store = store if store is not None else open_store(settings.store.url)
        budget: SharedRateBudget | None = None
        try:
            budget = shared_rate_budget(store, settings)
            connector = cls._assemble(settings, store, budget, alerts=alerts, mapper=mapper)
        except BaseException:
            # Nothing else holds what was opened here: a service retrying start-up must not leak it.
            for opened in (budget, store if own_store else None):
                if opened is not None:
                    opened.close()
            raise
        from .sync.delivery_item import check_delivery_item

        try:  # OrderWise must hold the item delivery is booked to (P10), else refuse to start
            check_delivery_item(connector.orderwise, connector.store, connector.mapper.config)
        except BaseException:
            connector.close()
            raise
        return connector

    @classmethod
    def _assemble(
        cls,
        settings: ConnectorSettings,
        store: IdempotencyStore,
        budget: SharedRateBudget | None,
        *,
        alerts: Iterable[AlertSink],
        mapper: OrderMapper | None,
    ) -> Connector:
        """The clients, mapper and sinks of :meth:`from_settings` around an open store."""
        s, o = settings.scayle, settings.orderwise
        assert s.base_url and s.token is not None and o.api_root and o.username and o.password
        from .orderwise.client import ExportDefinitions

        scayle = ScayleClient(
            s.base_url,
            s.token,
            shop_key=s.shop_key,
            country_code=s.country_code,
            company_id=s.company_id,
            budget=budget if budget is not None else RateBudget(headroom=s.rate_headroom),
        )
        # The optional definitions default to "not configured", never to the sandbox's ids.
        optional = {"stock_full": None, "orders_by_references": None}
        exports = ExportDefinitions(**{**optional, **o.export_definitions})  # type: ignore[arg-type]
        if exports.orders_by_references is None:
            logger.warning(
                "[orderwise.export_definitions] orders_by_references is not set: every order is "
                "looked up in OrderWise with its own call before its create (one more API call "
                "per order); create the definition to look up a batch with one call"
            )
        orderwise = OrderwiseClient(
            o.api_root,
            o.username,
            o.password,
            session_id=o.session_id,
            export_definitions=exports,
            cancel_endpoint=o.cancel_endpoint,
            omit_fields=o.omitted_fields(),
        )
        if settings.inventory.default_warehouse is None and s.default_warehouse:
            inventory = settings.inventory.model_copy(
                update={"default_warehouse": s.default_warehouse}
            )
            settings = settings.model_copy(update={"inventory": inventory})
        sinks: list[AlertSink] = list(alerts)
        if settings.alerts.log:
            sinks.append(LoggingAlertSink())
        if settings.alerts.webhook_url is not None:
            sinks.append(WebhookAlertSink(settings.alerts.webhook_url.get_secret_value()))
        connector = cls(
            scayle=scayle,
            orderwise=orderwise,
            store=store,
            mapper=mapper or OrderMapper(settings.mapping_config()),
            alerts=sinks,
            worker_id=settings.worker_id,
            settings=settings,
        )
        if budget is not None:
            connector._closables.append(budget)
        return connector

    # ------------------------------------------------------------------------------------------ flows

    def sync_orders(self, *, poll: bool = True) -> SyncResult:
        """Push confirmed SCAYLE orders to OrderWise exactly once (see :mod:`.sync.orders`)."""
        return OrderSync(self.context).run(poll=poll)

    def sync_fulfilments(self) -> SyncResult:
        """Turn OrderWise despatches into SCAYLE shipments, once per package."""
        from .sync.fulfilment import FulfilmentSync

        return FulfilmentSync(self.context).run()

    def sync_cancellations(self) -> SyncResult:
        """Cancel in OrderWise what customers cancelled in SCAYLE (while possible), and vice versa."""
        from .sync.cancellations import CancellationSync

        return CancellationSync(self.context).run()

    def sync_inventory(self) -> SyncResult:
        """Push OrderWise free-stock changes to SCAYLE as shaped, changed-only deltas."""
        from .sync.inventory import InventorySync

        return InventorySync(self.context).run()

    def sync_all(self) -> list[SyncResult]:
        """Every flow once, in dependency order; a flow that fails does not stop the others.

        A failed flow's result has ``failed_pass == 1`` and the error in ``errors``.
        """
        results = []
        for name, flow in (
            ("orders", self.sync_orders),
            ("cancellations", self.sync_cancellations),
            ("fulfilments", self.sync_fulfilments),
            ("inventory", self.sync_inventory),
        ):
            try:
                results.append(flow())
            except ConnectorError as exc:
                failed = SyncResult(name)
                failed.add("failed_pass")
                failed.errors.append(f"{type(exc).__name__}: {exc}")
                results.append(failed)
        return results

    def ingest_webhook(
        self, body: bytes | str, headers: Mapping[str, str] | None = None
    ) -> WebhookOutcome:
        """Authenticate, parse and record one SCAYLE webhook; the work happens on the next pass.

        Raises only the library's own errors, whatever the body: :class:`WebhookAuthError` (wrong
        credentials), :class:`WebhookTooLargeError` (over ``scayle.webhook_max_body_bytes``),
        :class:`MalformedWebhookError` (not an envelope, or an intake/cancellation event without a
        usable order id) and :class:`StoreError` (the ledger failed). Duplicates (another event
        with the same envelope ``key``, or the same envelope when it has none) are recognised
        across workers through the store: a new order's ledger record notes its envelope
        (``webhook_key`` in the payload, one write); a further envelope for an order already
        recorded is noted on its own and answered ``recorded`` (recording is idempotent). The
        order is never trusted from the payload: the flow re-reads it from the API.
        """
        s = self.settings.scayle
        password = s.webhook_password.get_secret_value() if s.webhook_password else None
        webhooks.authenticate(headers or {}, s.webhook_username, password)
        raw = webhooks.as_bytes(body)
        webhooks.check_size(raw, s.webhook_max_body_bytes)
        event = webhooks.parse_event(raw)
        kind = webhooks.classify(event)
        dedupe = webhooks.dedupe_key(event, raw)
        if kind == "other":
            fresh = self.store.remember("webhook", dedupe)
            return WebhookOutcome(
                event.event_name, "ignored" if fresh else "duplicate", event.order_id
            )
        order_id = webhooks.require_order_id(event, max_order_id=s.max_order_id)
        if kind == "order":
            # A new order's record notes the envelope itself (one write); only a further envelope
            # for an order already recorded needs a note of its own.
            key = order_key(order_id)
            record = self.store.get(key)
            if record is None:
                self.store.ensure(
                    key, kind=ORDER_KIND, subject=str(order_id), payload={WEBHOOK_KEY: dedupe}
                )
            elif record.payload.get(WEBHOOK_KEY) == dedupe or not self.store.remember(
                "webhook", dedupe
            ):
                return WebhookOutcome(event.event_name, "duplicate", order_id)
        else:
            # Record first, remember the envelope after: if recording fails, SCAYLE's redelivery
            # is not mistaken for a duplicate. Recording is idempotent, so a duplicate does no harm.
            from .sync.cancellations import record_shop_cancellation

            record_shop_cancellation(self.context, order_id, source=event.event_name)
            if not self.store.remember("webhook", dedupe):
                return WebhookOutcome(event.event_name, "duplicate", order_id)
        logger.info(
            "webhook %s recorded for order %s",
            event.event_name,
            order_id,
            extra={"event": "webhook", "flow": kind, "order_id": order_id, "outcome": "recorded"},
        )
        return WebhookOutcome(event.event_name, "recorded", order_id)

    # -------------------------------------------------------------------------------- reconciliation

    def reconcile(
        self,
        since: date | datetime | None = None,
        until: date | datetime | None = None,
        *,
        tolerance: Tolerance | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> ReconciliationReport:
        """Reconcile SCAYLE orders against OrderWise orders for a period (all orders by default).

        The period is ``[since, until)``: dates and naive datetimes are read in the books' time
        zone (``settings.timezone``, default Europe/London), aware datetimes as they are; the same
        rule as :meth:`export_postings`. ``tolerance`` tunes which rounding variances are
        explained (default: the derived bounds). ``progress`` is called with ``"scayle"`` or
        ``"orderwise"`` for every order read.
        """
        from .sync.reconciliation import reconcile_period

        return reconcile_period(
            self.context,
            since=since,
            until=until,
            tolerance=tolerance,
            timezone=self.settings.timezone,
            progress=progress,
        )

    def export_postings(
        self, *, since: date | datetime, until: date | datetime, journal: str = "full"
    ) -> str:
        """The period's batched financial postings as CSV (see :meth:`postings`)."""
        return self.postings(since=since, until=until, journal=journal).csv

    def postings(
        self, *, since: date | datetime, until: date | datetime, journal: str = "full"
    ) -> PostingsExport:
        """The period's postings with what a person must know (see :mod:`.reconcile.postings`).

        One period rule with :meth:`reconcile`. ``journal="full"`` gives the whole period (it
        replaces any earlier export of it); ``"additions"`` only the orders acknowledged since the
        last export (it adds to it). ``warnings`` names an empty ledger and late orders.
        """
        from .sync.reconciliation import postings_export

        return postings_export(
            self.context,
            since=since,
            until=until,
            journal=journal,
            timezone=self.settings.timezone,
        )

    def reconcile_stock(self) -> StockReport:
        """Full drift check: OrderWise free stock (after shaping) against SCAYLE stock per SKU/warehouse."""
        from .sync.inventory import InventorySync

        return InventorySync(self.context).drift_report()

    # ------------------------------------------------------------------------------------ monitoring

    def check_setup(self) -> SetupReport:
        """Check the SCAYLE tenant against the settings: warehouses and carriers the configuration
        names that SCAYLE lacks (see :mod:`.sync.setup_check`). Run it at start-up; the flows
        reuse the lists it read."""
        from .sync.setup_check import check_setup

        return check_setup(self.context)

    def health(self) -> Health:
        """Ledger counts, the oldest pending and sent orders, quarantined count, open alerts."""
        return ledger_health(self.store, now=self._clock())

    def release_quarantined(
        self, order_id: int | str, *, reason: str = "released by a person"
    ) -> None:
        """Put a quarantined order back to ``pending`` so the next pass tries it again."""
        release_quarantined(self.store, order_key(order_id), reason=reason)

    def close(self) -> None:
        """Close the clients and the store."""
        for thing in (self.scayle, self.orderwise, *self._closables, self.store):
            close = getattr(thing, "close", None)
            if callable(close):
                close()

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
