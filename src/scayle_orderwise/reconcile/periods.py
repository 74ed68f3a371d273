"""One period rule for reconciliation and postings: instants ``[since, until)`` in the books' zone.

A bound given as a date means midnight at the start of that day in the books' time zone
(``Europe/London`` unless configured); a naive datetime is a wall-clock time in that zone; an aware
datetime is taken as it is. An order belongs to the period when its booking time (``confirmedAt``,
else ``createdAt``) is at or after ``since`` and before ``until``, whatever the time of day of
either bound. Reports show the period in the books' zone with its **inclusive** end: whole days as
``1 May 2026 – 31 May 2026``, other bounds to the minute with the end marked as excluded.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from ..errors import ConfigError

__all__ = ["DEFAULT_TIMEZONE", "ReportingPeriod", "zone"]

DEFAULT_TIMEZONE = "Europe/London"
"""The books' time zone when none is configured."""

Bound = date | datetime | None


def zone(name: str | ZoneInfo) -> ZoneInfo:
    """The ``ZoneInfo`` of an IANA name; :class:`ConfigError` for an unknown one."""
    if isinstance(name, ZoneInfo):
        return name
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r}: use an IANA name like 'Europe/London'"
        ) from None


def _instant(value: Bound, tz: ZoneInfo) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.min)
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def _day(value: date) -> str:
    return f"{value.day} {value:%B %Y}"


@attrs.frozen
class ReportingPeriod:
    """Instants ``[since, until)`` (aware, UTC; ``None`` = open) and the books' time zone."""

    since: datetime | None
    until: datetime | None
    timezone: ZoneInfo = attrs.field(factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))

    def __attrs_post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ConfigError(
                f"the period ends ({self.until.isoformat()}) before it starts "
                f"({self.since.isoformat()})"
            )

    @classmethod
    def of(
        cls, since: Bound = None, until: Bound = None, timezone: str | ZoneInfo = DEFAULT_TIMEZONE
    ) -> ReportingPeriod:
        """The period between two bounds given as dates, naive or aware datetimes (see module)."""
        tz = zone(timezone)
        return cls(_instant(since, tz), _instant(until, tz), tz)

    @property
    def bounded(self) -> bool:
        """True when both ends are set."""
        return self.since is not None and self.until is not None

    def __contains__(self, when: object) -> bool:
        if not isinstance(when, datetime):
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=self.timezone)
        return (self.since is None or when >= self.since) and (
            self.until is None or when < self.until
        )

    def local(self, when: datetime) -> datetime:
        """``when`` in the books' zone (naive times are taken to be in it already)."""
        if when.tzinfo is None:
            return when.replace(tzinfo=self.timezone)
        return when.astimezone(self.timezone)

    def _whole_days(self) -> tuple[date | None, date | None] | None:
        """Local first and last day when each set bound is a local midnight, else ``None``."""
        days: list[date | None] = []
        for bound, last in ((self.since, False), (self.until, True)):
            if bound is None:
                days.append(None)
                continue
            local = bound.astimezone(self.timezone)
            if local.time() != time.min:
                return None
            days.append(local.date() - timedelta(days=1) if last else local.date())
        return days[0], days[1]

    @property
    def label(self) -> str:
        """The period for people, with its inclusive end (``1 May 2026 – 31 May 2026``)."""
        if self.since is None and self.until is None:
            return "all orders"
        zone_name = str(self.timezone)
        days = self._whole_days()
        if days is not None:
            first = _day(days[0]) if days[0] is not None else "the beginning"
            last = _day(days[1]) if days[1] is not None else "now"
            return f"{first} – {last} ({zone_name})"

        def moment(value: datetime | None, fallback: str) -> str:
            if value is None:
                return fallback
            local = value.astimezone(self.timezone)
            return f"{_day(local.date())} {local:%H:%M}"

        end = moment(self.until, "now")
        if self.until is not None:
            end = f"{end} (excluded)"
        return f"{moment(self.since, 'the beginning')} – {end} ({zone_name})"

    @property
    def id(self) -> str:
        """A short stable name: ``2026-05`` (a calendar month), ``2026-05-01..2026-05-15`` (whole
        days, inclusive), else local minutes ``2026-05-01T00:00..2026-05-04T13:00`` (end excluded)."""
        if self.since is None or self.until is None:
            return "open"
        days = self._whole_days()
        first, last = days if days is not None else (None, None)
        if first is not None and last is not None:
            next_month = (last + timedelta(days=1)).day == 1
            if (
                first.day == 1
                and next_month
                and (first.year, first.month) == (last.year, last.month)
            ):
                return f"{first:%Y-%m}"
            return f"{first.isoformat()}..{last.isoformat()}"
        start = self.since.astimezone(self.timezone)
        end = self.until.astimezone(self.timezone)
        return f"{start:%Y-%m-%dT%H:%M}..{end:%Y-%m-%dT%H:%M}"
