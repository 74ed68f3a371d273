"""The external sort behind unsorted reconciliation input: SQLite spill, stable, cleaned up."""

from __future__ import annotations

import glob
import os
import random
import tempfile

from scayle_orderwise.reconcile._streams import external_sort


def test_sorted_stably_like_python_with_one_spill_file_removed_afterwards() -> None:
    rng = random.Random(7)
    alphabet = ["A", "b", "Z", "é", "ß", "😀", "SCAYLE-1", "SCAYLE-10", "SCAYLE-9", ""]
    items = [(rng.choice(alphabet) + rng.choice(alphabet), n) for n in range(5000)]
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "scayle-orderwise-sort-*")))
    spilled = external_sort(items, key=lambda item: item[0], chunk_size=64)
    first = next(spilled)
    during = set(glob.glob(os.path.join(tempfile.gettempdir(), "scayle-orderwise-sort-*")))
    (folder,) = during - before
    assert os.listdir(folder) == ["spill.sqlite"]  # one file, however many chunks
    result = [first, *spilled]
    assert result == sorted(items, key=lambda item: item[0])  # stable: arrival order kept
    assert not os.path.exists(folder)


def test_small_input_never_touches_the_disk() -> None:
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "scayle-orderwise-sort-*")))
    out = external_sort(iter(["b", "a", "c"]), key=str, chunk_size=10)
    assert next(out) == "a"
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "scayle-orderwise-sort-*"))) == before
    assert list(out) == ["b", "c"]


def test_an_abandoned_sort_cleans_up() -> None:
    pattern = os.path.join(tempfile.gettempdir(), "scayle-orderwise-sort-*")
    before = set(glob.glob(pattern))
    out = external_sort((str(n) for n in range(100)), key=str, chunk_size=10)
    next(out)
    (folder,) = set(glob.glob(pattern)) - before
    out.close()  # the caller stops reading half way
    assert not os.path.exists(folder)
