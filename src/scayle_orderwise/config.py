"""Connector settings from a TOML file and the environment (pydantic-settings).

Environment variables use the prefix ``SCAYLE_ORDERWISE_`` and ``__`` between nested names, e.g.
``SCAYLE_ORDERWISE_SCAYLE__TOKEN`` or ``SCAYLE_ORDERWISE_ORDERWISE__PASSWORD``. The environment
overrides the file. Secrets (tokens, passwords, the alert webhook URL) are accepted **only** from the
environment: a TOML file that contains one is refused with a :class:`~scayle_orderwise.errors.ConfigError`,
so configuration files can be committed and shared safely.
"""

from __future__ import annotations

import os
import tomllib
import warnings
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .errors import ConfigError
from .redaction import dsn_has_password, mask_dsn

__all__ = [
    "DEPRECATED_PG_DSN_ENVS",
    "STORE_URL_ENV",
    "AlertSettings",
    "ConnectorSettings",
    "FlowSchedule",
    "FlowSettings",
    "InventorySettings",
    "OrderwiseSettings",
    "ScayleSettings",
    "ServiceSettings",
    "StockShaping",
    "StoreSettings",
    "postgres_dsn_from_env",
]

STORE_URL_ENV = "SCAYLE_ORDERWISE_STORE__URL"
"""The one environment variable naming the ledger, a PostgreSQL DSN included (``[store] url``)."""

DEPRECATED_PG_DSN_ENVS = ("SCAYLE_ORDERWISE_TEST_PG_DSN", "SCAYLE_ORDERWISE_PG_DSN")
"""Older names of the PostgreSQL DSN (tests, benchmarks, examples), still read with a warning."""

SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "scayle": ("token", "webhook_password"),
    "orderwise": ("password",),
    "alerts": ("webhook_url",),
    "service": ("dashboard_password",),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScayleSettings(_Section):
    """SCAYLE Admin API access. ``token`` comes from the environment only."""

    base_url: str = ""
    token: SecretStr | None = None
    shop_key: str | None = None
    country_code: str | None = None
    company_id: int | None = None
    default_warehouse: str | None = None
    webhook_username: str | None = None
    webhook_password: SecretStr | None = None
    rate_budget: Literal["shared", "process"] = "shared"
    """``shared``: workers of one ledger share SCAYLE's per-scope limits through the store (when
    it can; a custom store without a rate ledger falls back); ``process``: a budget per process."""
    rate_window_seconds: float = Field(default=60.0, gt=0)
    """Length of SCAYLE's rate-limit window (inferred: the OpenAPI ``decayMinutes: 1``)."""
    rate_headroom: int = Field(default=0, ge=0)
    """Calls per window and scope left unused, e.g. for other applications on the same key."""
    webhook_max_body_bytes: int = Field(default=1_000_000, gt=0)
    """Largest webhook body ``ingest_webhook`` accepts (bytes); larger ones raise
    :class:`~scayle_orderwise.errors.WebhookTooLargeError`."""
    max_order_id: int = Field(default=2**31 - 1, gt=0)
    """Largest order id a webhook may name. Inferred from the SDKs' 32-bit ``Integer`` ids; raise it
    if your tenant's ids grow past it."""


class OrderwiseSettings(_Section):
    """OrderWise OWAPI access. ``password`` comes from the environment only.

    The export-definition ids and the cancel endpoint are installation-specific (the public OWAPI
    documentation does not fix them): create the export definitions in OrderWise and enter their ids.
    """

    api_root: str = ""
    username: str = ""
    password: SecretStr | None = None
    session_id: int = 1
    export_definitions: dict[str, int | None] = Field(default_factory=dict)
    cancel_endpoint: str | None = None
    status_map: dict[str, str] = Field(default_factory=dict)
    inferred_header_fields: bool = True
    """Send the ``orderHeader`` fields whose JSON names are inferred, not seen in any public
    OrderWise client (``deliveryNet``, ``orderTax``, ``currencyId``, ...); ``false`` for an
    installation that refuses them."""
    omit_fields: list[str] = Field(default_factory=list)
    """Paths of further ``POST sales/order`` fields to leave out, e.g. ``"orderLines.taxCode"``."""

    @field_validator("omit_fields")
    @classmethod
    def _known_fields(cls, value: list[str]) -> list[str]:
        from .orderwise.field_evidence import checked_omissions

        try:
            return sorted(checked_omissions(value))
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    def omitted_fields(self) -> frozenset[str]:
        """Every field path left out of ``POST sales/order`` under these settings."""
        from .orderwise.field_evidence import INFERRED_HEADER_FIELDS

        inferred = frozenset() if self.inferred_header_fields else INFERRED_HEADER_FIELDS
        return frozenset(self.omit_fields) | inferred

    @field_validator("export_definitions")
    @classmethod
    def _known_exports(cls, value: dict[str, int | None]) -> dict[str, int | None]:
        known = {
            "order_changes",
            "order_by_reference",
            "stock_changes",
            "order_details",
            "stock_full",
            "orders_by_references",
        }
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown export definition(s) {unknown}; known: {sorted(known)}")
        for name, export_id in value.items():
            if export_id is not None and export_id <= 0:
                raise ValueError(f"export definition {name} must be a positive id")
        return value

    @field_validator("status_map")
    @classmethod
    def _canonical_targets(cls, value: dict[str, str]) -> dict[str, str]:
        from .orderwise.statuses import CanonicalStatus

        allowed = {s.value for s in CanonicalStatus}
        for text, target in value.items():
            if target.lower() not in allowed:
                raise ValueError(
                    f"status_map[{text!r}] = {target!r} is not a canonical status; use one of {sorted(allowed)}"
                )
        return {text: target.lower() for text, target in value.items()}

    def missing_exports(self) -> list[str]:
        """Export definitions a real installation must configure (the sandbox ids are no default)."""
        required = ("order_changes", "order_by_reference", "stock_changes", "order_details")
        return [name for name in required if not self.export_definitions.get(name)]


class StockShaping(_Section):
    """How OrderWise free stock becomes a sellable quantity for one SKU (or the default).

    ``sellable = floor(max(0, free - buffer))``, then ``percentage`` of it (rounded down), then
    capped at ``cap``; at or below ``zero_at_or_below`` the result is 0.
    """

    buffer: Decimal = Decimal(0)
    percentage: Decimal | None = None
    cap: int | None = None
    zero_at_or_below: Decimal | None = None

    @field_validator("buffer")
    @classmethod
    def _buffer_not_negative(cls, value: Decimal) -> Decimal:
        if value < 0:
            raise ValueError("buffer must not be negative")
        return value

    @field_validator("percentage")
    @classmethod
    def _percentage_range(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and not 0 <= value <= 100:
            raise ValueError("percentage must be between 0 and 100")
        return value

    @field_validator("cap")
    @classmethod
    def _cap_not_negative(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError("cap must not be negative")
        return value


class InventorySettings(_Section):
    """Stock sync: shaping per SKU and default, OrderWise stock location → SCAYLE warehouse."""

    default: StockShaping = StockShaping()
    per_sku: dict[str, StockShaping] = Field(default_factory=dict)
    location_warehouses: dict[str, str] = Field(default_factory=dict)
    default_warehouse: str | None = None
    overlap_seconds: int = 300
    max_workers: int = Field(default=4, ge=1, le=32)
    poll_min_seconds: float = Field(default=2.0, gt=0)
    """``sync inventory --watch``: seconds between passes while stock changes flow."""
    poll_max_seconds: float = Field(default=10.0, gt=0)
    """... and at most this long once it is quiet (each quiet pass waits ``poll_growth`` times longer)."""
    poll_growth: float = Field(default=1.5, ge=1)

    @model_validator(mode="after")
    def _poll_bounds(self) -> InventorySettings:
        if self.poll_max_seconds < self.poll_min_seconds:
            raise ValueError("poll_max_seconds must be at least poll_min_seconds")
        return self


class FlowSettings(_Section):
    """Timing of the flows: leases, overlaps, grace periods and alert thresholds (seconds)."""

    lease_seconds: int = Field(default=300, gt=0)
    batch_size: int = Field(default=10, gt=0)
    """Records one worker claims at a time. Small batches keep every worker busy on a backlog; the
    orders flow looks each batch up in OrderWise with one call, so a batch of 10 adds 0.1 calls
    per order."""
    reference_write_max_wait_seconds: float = Field(default=1.0, ge=0)
    """Longest wait for SCAYLE's ``ordersWrite`` budget before a reference write-back is left to
    wait in the ledger instead (orders keep reaching OrderWise; later passes catch up)."""
    poll_overlap_seconds: int = Field(default=300, ge=0)
    resend_grace_seconds: int = Field(default=900, ge=0)
    order_stalled_after_seconds: int = Field(default=1800, gt=0)
    fulfilment_ack_timeout_seconds: int = Field(default=3600, gt=0)
    sync_stalled_after_seconds: int = Field(default=3600, gt=0)
    backoff_base_seconds: int = Field(default=30, ge=0)
    backoff_max_seconds: int = Field(default=3600, ge=0)
    max_attempts: int = Field(default=10, gt=0)
    unconfirmed_expiry_seconds: int = Field(default=3 * 86400, gt=0)
    """An order recorded (e.g. by a webhook) but still not confirmed by SCAYLE after this long is
    closed as ``cancelled`` (an abandoned checkout; SCAYLE retries placement for up to two days)."""
    order_poll: bool = True
    order_poll_page_size: int = Field(default=100, gt=0, le=1000)
    order_poll_since_param: str | None = None
    """Query parameter of SCAYLE's order list that filters by last update (the public docs do not
    name one; ask SCAYLE for your tenant's, e.g. ``filters[updatedAtFrom]``). ``None``: the safety-net
    poll walks the whole list each pass."""
    carrier_map: dict[str, str] = Field(default_factory=dict)
    """OrderWise courier name → SCAYLE carrier key (matched ignoring case and spaces); merged over
    the built-in map of :data:`scayle_orderwise.sync.fulfilment.DEFAULT_CARRIER_MAP`."""
    default_carrier: str | None = None
    """SCAYLE carrier key for couriers not in the map (``None``: the courier name in upper case)."""


class StoreSettings(_Section):
    """Where the ledger lives: ``sqlite:///path.db``, ``memory://`` or a ``postgresql://`` DSN.

    A URL with a password is accepted from the environment only, and never shown in reprs.
    """

    url: str = Field(default="sqlite:///scayle-orderwise.db", repr=False)

    @property
    def display_url(self) -> str:
        """The URL with any password masked, for logs and messages."""
        return mask_dsn(self.url)

    def __repr_args__(self) -> Any:
        yield "url", self.display_url


class AlertSettings(_Section):
    """Alert sinks: the log always; a webhook (Slack-compatible) when ``webhook_url`` is set (env only)."""

    log: bool = True
    webhook_url: SecretStr | None = None


class FlowSchedule(_Section):
    """When ``scayle-orderwise serve`` runs one flow: every ``interval_seconds`` while ``enabled``.

    ``stall_after_seconds`` is how long the flow may go without a good pass before ``/readyz``
    answers 503 (``None``: ``flows.sync_stalled_after_seconds``).
    """

    enabled: bool = True
    interval_seconds: float = Field(default=60.0, gt=0)
    stall_after_seconds: int | None = Field(default=None, gt=0)
    wake_delay_seconds: float = Field(default=2.0, ge=0)
    """When a webhook wakes the flow, wait this long first so a burst of events shares one pass
    (the orders flow looks a whole batch up in OrderWise with one call)."""


class ServiceSettings(_Section):
    """The service (``scayle-orderwise serve``): flow schedule, dashboard access, reports.

    ``dashboard_password`` comes from the environment only
    (``SCAYLE_ORDERWISE_SERVICE__DASHBOARD_PASSWORD``); without it the dashboard is closed.
    ``reconciliation`` runs :meth:`Connector.reconcile` over the last ``reconcile_days`` days and
    writes the report to ``reports_dir`` (linked from the dashboard).
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    orders: FlowSchedule = FlowSchedule(interval_seconds=60)
    cancellations: FlowSchedule = FlowSchedule(interval_seconds=120)
    fulfilments: FlowSchedule = FlowSchedule(interval_seconds=300)
    inventory: FlowSchedule = FlowSchedule(interval_seconds=300)
    reconciliation: FlowSchedule = FlowSchedule(interval_seconds=86400)
    reconcile_days: int = Field(default=35, gt=0)
    reports_dir: str = "reports"
    dashboard_username: str = "operations"
    dashboard_password: SecretStr | None = None
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    """How long SIGTERM waits for running passes before releasing their claims and exiting."""


class ConnectorSettings(BaseSettings):
    """Everything the connector and the ``scayle-orderwise`` command need."""

    model_config = SettingsConfigDict(
        env_prefix="SCAYLE_ORDERWISE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    scayle: ScayleSettings = ScayleSettings()
    orderwise: OrderwiseSettings = OrderwiseSettings()
    store: StoreSettings = StoreSettings()
    flows: FlowSettings = FlowSettings()
    inventory: InventorySettings = InventorySettings()
    alerts: AlertSettings = AlertSettings()
    service: ServiceSettings = ServiceSettings()
    mapping: dict[str, Any] = Field(default_factory=dict)
    worker_id: str | None = None
    timezone: str = "Europe/London"
    """The books' time zone: reconciliation and postings read dates and naive times in it."""

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name like 'Europe/London'"
            ) from None
        return value

    _toml_path: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls._toml_path))
        return tuple(sources)

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> ConnectorSettings:
        """Read ``path`` (TOML, optional) and the environment; raise ``ConfigError`` on bad input."""
        toml_path = Path(path) if path is not None else None
        if toml_path is not None:
            _refuse_secrets_in_file(toml_path)
        loader = type("_LoadedSettings", (cls,), {"_toml_path": toml_path})
        try:
            loaded = loader(**overrides)
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from None
        return cls.model_validate(loaded.model_dump())

    def mapping_config(self) -> Any:
        """The :class:`~scayle_orderwise.mapping.MappingConfig` described by the ``mapping`` table."""
        from .mapping import MappingConfig

        try:
            return MappingConfig(**self.mapping)
        except TypeError as exc:
            raise ConfigError(f"invalid [mapping] setting: {exc}") from None


def postgres_dsn_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The PostgreSQL DSN of the environment, for tools (examples, benchmarks, the test suite).

    It is ``SCAYLE_ORDERWISE_STORE__URL`` when that is a ``postgresql://`` URL, the variable the
    connector itself reads. The older names in :data:`DEPRECATED_PG_DSN_ENVS` are still read, with a
    :class:`DeprecationWarning`. ``None`` when no PostgreSQL DSN is set.
    """
    env = os.environ if environ is None else environ
    url = env.get(STORE_URL_ENV, "")
    if url.startswith(("postgresql://", "postgres://")):
        return url
    for name in DEPRECATED_PG_DSN_ENVS:
        if env.get(name):
            warnings.warn(
                f"{name} is deprecated: set {STORE_URL_ENV} to the PostgreSQL DSN instead",
                DeprecationWarning,
                stacklevel=2,
            )
            return env[name]
    return None


def _refuse_secrets_in_file(path: Path) -> None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not a configuration file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    # pydantic-settings matches names regardless of case, so the check must too.
    lowered = {str(k).lower(): v for k, v in data.items()}
    for section, names in SECRET_FIELDS.items():
        table = lowered.get(section)
        if isinstance(table, dict):
            keys = {str(k).lower() for k in table}
            for name in names:
                if name in keys:
                    env = f"SCAYLE_ORDERWISE_{section.upper()}__{name.upper()}"
                    raise ConfigError(
                        f"{path}: [{section}] {name} is a secret; set it in the environment as {env}"
                    )
    _refuse_password_in_store_url(path, data)


def _refuse_password_in_store_url(path: Path, data: dict[str, Any]) -> None:
    lowered = {str(k).lower(): v for k, v in data.items()}
    store = lowered.get("store")
    if isinstance(store, dict):
        url = {str(k).lower(): v for k, v in store.items()}.get("url")
        if isinstance(url, str) and dsn_has_password(url):
            raise ConfigError(
                f"{path}: [store] url contains a password; set the whole URL in the environment "
                "as SCAYLE_ORDERWISE_STORE__URL"
            )


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"invalid setting {where}: {first['msg']}{more}"
