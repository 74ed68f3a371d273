"""Bounded-memory plumbing for reconciliation: external sort, grouping by key and merge join.

A sorted stream is grouped and merge-joined holding only the current key group of each side.
An unsorted stream is sorted externally: chunks of ``chunk_size`` items are sorted in memory and,
once there is more than one chunk, spilled as sorted runs to one temporary SQLite database (the
library's embedded ledger engine; one table per run, rows of 256 items) and merged back lazily with
:func:`heapq.merge`, which holds one batch per run. Memory is O(chunk_size) items while reading and
O(number of runs) while merging, whatever the input size, at the cost of writing each item to disk
once; one file holds every run (the earlier design kept one open temporary file per chunk, so ten
million summaries meant 500 open files).

The rows hold the items pickled. The database is a private temporary file that this process writes
and reads back, so no untrusted bytes are ever unpickled; pickle round-trips the summaries exactly
(``Fraction`` rates, aware datetimes, tuples) and is several times faster than a JSON codec for them.
Letting SQLite sort the items itself (``ORDER BY`` over one table) was measured too: 10–30 % slower
and with more memory than merging pre-sorted runs. Figures: ``python benchmarks/reconciliation.py``
and ``docs/performance.md``.
"""

from __future__ import annotations

import heapq
import operator
import pickle
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Generic, TypeVar

import attrs

from ..errors import ConnectorError

T = TypeVar("T")
U = TypeVar("U")

__all__ = [
    "UnsortedInputError",
    "external_sort",
    "group_sorted",
    "merge_join",
    "sorted_by_reference",
]


class UnsortedInputError(ConnectorError, ValueError):
    """A stream declared sorted (``presorted=True``) is not sorted by reference."""


_BATCH = 256  # items per stored row: fewer calls, and the merge holds one batch per run


class _Spill(Generic[T]):
    """One temporary SQLite database: each sorted run a table of pickled batches of items."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="scayle-orderwise-sort-")
        self._db = sqlite3.connect(Path(self._folder.name) / "spill.sqlite")
        # A throwaway file: no journal, no fsync.
        for pragma in ("journal_mode=OFF", "synchronous=OFF"):
            self._db.execute(f"PRAGMA {pragma}")
        self.runs = 0

    def write(self, run: list[T]) -> None:
        """Store one run (already sorted) as the next table."""
        table = f"run{self.runs}"
        self._db.execute(f"CREATE TABLE {table} (n INTEGER PRIMARY KEY, batch BLOB NOT NULL)")
        dump, protocol = pickle.dumps, pickle.HIGHEST_PROTOCOL
        self._db.executemany(
            f"INSERT INTO {table} (batch) VALUES (?)",
            ((dump(run[i : i + _BATCH], protocol),) for i in range(0, len(run), _BATCH)),
        )
        self._db.commit()
        self.runs += 1

    def read(self, run: int) -> Iterator[T]:
        """The items of one run, in their stored order."""
        load = pickle.loads
        for (batch,) in self._db.execute(f"SELECT batch FROM run{run} ORDER BY n"):
            yield from load(batch)

    def close(self) -> None:
        self._db.close()
        self._folder.cleanup()


def external_sort(
    items: Iterable[T], key: Callable[[T], str], *, chunk_size: int = 20_000
) -> Iterator[T]:
    """Yield ``items`` sorted by ``key`` (stable), holding at most about ``chunk_size`` in memory."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    spill: _Spill[T] | None = None
    buffer: list[T] = []
    try:
        for item in items:
            buffer.append(item)
            if len(buffer) >= chunk_size:
                buffer.sort(key=key)
                spill = spill or _Spill()
                spill.write(buffer)
                buffer = []
        buffer.sort(key=key)
        if spill is None:
            yield from buffer
            return
        if buffer:
            spill.write(buffer)
            buffer = []
        # heapq.merge is stable across its inputs (runs in arrival order), so equal keys keep
        # their input order; it holds one batch per run.
        yield from heapq.merge(*(spill.read(run) for run in range(spill.runs)), key=key)
    finally:
        if spill is not None:
            spill.close()


def group_sorted(
    items: Iterable[T], key: Callable[[T], str], *, side: str
) -> Iterator[tuple[str, list[T]]]:
    """Group a stream sorted by ``key`` into ``(key, items)``; raise if it goes backwards."""
    current: str | None = None
    group: list[T] = []
    for position, item in enumerate(items):
        k = key(item)
        if current is not None and k < current:
            raise UnsortedInputError(
                f"{side} input is not sorted by reference: {k!r} (item {position}) comes after "
                f"{current!r}; sort both inputs by reference or call without presorted=True"
            )
        if k != current:
            if current is not None:
                yield current, group
            current, group = k, [item]
        else:
            group.append(item)
    if current is not None:
        yield current, group


def merge_join(
    left: Iterator[tuple[str, list[T]]], right: Iterator[tuple[str, list[U]]]
) -> Iterator[tuple[str, list[T], list[U]]]:
    """Full outer join of two key-grouped sorted streams; a missing side is an empty list."""
    lnext = next(left, None)
    rnext = next(right, None)
    while lnext is not None or rnext is not None:
        if rnext is None or (lnext is not None and lnext[0] < rnext[0]):
            assert lnext is not None
            yield lnext[0], lnext[1], []
            lnext = next(left, None)
        elif lnext is None or rnext[0] < lnext[0]:
            yield rnext[0], [], rnext[1]
            rnext = next(right, None)
        else:
            yield lnext[0], lnext[1], rnext[1]
            lnext = next(left, None)
            rnext = next(right, None)


def sorted_by_reference(items: Iterable[T], cls: type[T], *, chunk_size: int) -> Iterator[T]:
    """External sort by ``.reference`` of attrs instances of ``cls``.

    Exact instances of ``cls`` travel as plain tuples (several times cheaper to pickle than attrs
    slotted instances) and are rebuilt without re-running validators; so do their ``lines`` when
    every line is an exact :class:`LineSummary` (packed in a list of tuples, the ``rate`` as
    ``(numerator, denominator)`` and rebuilt once per distinct rate). Anything else (subclasses,
    duck-typed objects) travels as is.
    """
    from .summaries import LineSummary

    names = tuple(a.name for a in attrs.fields(cls))  # type: ignore[arg-type]
    at = names.index("reference")
    lines_at = names.index("lines") if "lines" in names else -1
    get = operator.attrgetter(*names)
    line_names = tuple(a.name for a in attrs.fields(LineSummary))
    rate_at = line_names.index("rate")
    line_get = operator.attrgetter(*line_names)
    line_fields = tuple((i, name) for i, name in enumerate(line_names) if i != rate_at)
    new = object.__new__
    put = object.__setattr__
    rates: dict[tuple[int, int], Fraction] = {}

    def encode_line(line: LineSummary) -> tuple[Any, ...]:
        values = line_get(line)
        rate = values[rate_at]
        packed = None if rate is None else (rate.numerator, rate.denominator)
        return (*values[:rate_at], packed, *values[rate_at + 1 :])

    def encode(item: T) -> Any:
        if type(item) is not cls:
            return item
        values = get(item)
        if lines_at >= 0:
            lines = values[lines_at]
            if lines and all(type(line) is LineSummary for line in lines):
                packed = list(map(encode_line, lines))  # a list: never a converted field value
                values = (*values[:lines_at], packed, *values[lines_at + 1 :])
        return values

    def decode_line(value: tuple[Any, ...]) -> LineSummary:
        line = new(LineSummary)
        for i, name in line_fields:
            put(line, name, value[i])
        packed = value[rate_at]
        rate = None
        if packed is not None:
            rate = rates.get(packed)
            if rate is None:
                rate = rates[packed] = Fraction(*packed)
        put(line, "rate", rate)
        return line

    def decode(value: Any) -> T:
        if type(value) is not tuple:
            return value  # type: ignore[no-any-return]
        obj = new(cls)
        for name, field_value in zip(names, value, strict=True):
            put(obj, name, field_value)
        if lines_at >= 0:
            lines = value[lines_at]
            if type(lines) is list:
                put(obj, "lines", tuple(map(decode_line, lines)))
        return obj

    def key(value: Any) -> str:
        return value[at] if type(value) is tuple else value.reference  # type: ignore[no-any-return]

    return map(decode, external_sort(map(encode, items), key, chunk_size=chunk_size))
