"""What this process has read of the history store, so a run reads each bucket file once.

Each local bucket file is kept as the Arrow table read from it (or written to it by a merge), keyed by
its path and checked against its inode, size and modification time on every use: a file replaced by
anyone (an atomic rename gives a new inode) is read again. The store as a whole, sorted by series and
time, is kept for the set of bucket files it was built from; once it is, the buckets' own tables are let
go (one copy of the store in memory, not two) and a bucket a merge needs is cut from it again. Files on
an object store are not kept (their listings give no inode, and their times are coarse): they are read
on each use as before.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from forecasting.storage.locations import is_remote

_lock = threading.Lock()
_buckets: dict[str, tuple[tuple, pa.Table | None]] = {}  # bucket file -> (identity, its table; None: in a store)
_stores: dict[str, tuple[tuple, pa.Table]] = {}  # store root -> (its files' identities, the sorted store)
_rows: dict[str, np.ndarray] = {}  # store root -> each row's bucket number
_builds: dict[str, threading.Lock] = {}  # store root -> held while its store is being built


def _identity(path: Path) -> tuple | None:
    if is_remote(path):
        return None
    try:
        found = path.stat()
    except OSError:
        return None
    return (found.st_ino, found.st_size, found.st_mtime_ns)


def read_file(path: Path) -> pa.Table:
    """One bucket file from the disk or the object store, all columns."""
    if is_remote(path):
        with path.open("rb") as handle:
            return pq.read_table(handle)
    return pq.ParquetFile(str(path)).read()


def bucket_table(path: Path) -> pa.Table:
    """The bucket file's table: kept from an earlier read or write while the file is unchanged."""
    identity = _identity(path)
    with _lock:
        kept = _buckets.get(str(path))
    if identity is not None and kept is not None and kept[0] == identity:
        if kept[1] is not None:
            return kept[1]
        cut = _from_store(path, identity)
        if cut is not None:
            return cut
    table = read_file(path)
    if identity is not None:
        with _lock:
            _buckets[str(path)] = (identity, table)
    return table


def remember(path: Path, table: pa.Table) -> None:
    """Keep what was just written to `path` (local files only), so it is not read back."""
    identity = _identity(path)
    if identity is not None:
        with _lock:
            _buckets[str(path)] = (identity, table)


def store_table(root: Path, files: list[Path]) -> pa.Table:
    """The store made of `files` (its current buckets), sorted by series and time: kept while they are unchanged.
    Steps running at once in one process (a training and a forecast) build it once: a second one asking
    while the first builds waits for that store instead of reading and sorting every bucket again
    (at 100,000 series two builds at once nearly doubled the peak memory)."""
    identities = tuple((str(path), _identity(path)) for path in files)
    if not all(identity is not None for _, identity in identities):
        return _build(root, files, identities, cacheable=False)
    kept = _kept_store(root, identities)
    if kept is not None:
        return kept
    with _build_lock(root):
        kept = _kept_store(root, identities)  # built by the step this one waited for
        return kept if kept is not None else _build(root, files, identities, cacheable=True)


def _kept_store(root: Path, identities: tuple) -> pa.Table | None:
    with _lock:
        kept = _stores.get(str(root))
    return kept[1] if kept is not None and kept[0] == identities else None


def _build_lock(root: Path) -> threading.Lock:
    with _lock:
        return _builds.setdefault(str(root), threading.Lock())


def _build(root: Path, files: list[Path], identities: tuple, cacheable: bool) -> pa.Table:
    tables = [bucket_table(path) for path in files]
    if cacheable:
        with _lock:  # the buckets' own tables are let go as their columns are sorted (cut from the store later)
            for name, identity in identities:
                _buckets[name] = (identity, None)
    whole = sorted_table(tables)
    if cacheable:
        names = {name for name, _ in identities}
        with _lock:
            _stores[str(root)] = (identities, whole)
            _rows.pop(str(root), None)
            # Buckets of older generations or of other stores under this root are not needed again.
            for name in [n for n in _buckets if n.startswith(str(root) + os.sep) and n not in names]:
                del _buckets[name]
            for name, identity in identities:
                _buckets[name] = (identity, None)
    pa.default_memory_pool().release_unused()  # the buckets' and the sort's buffers, back to the system
    return whole


def sorted_table(tables: list[pa.Table]) -> pa.Table:
    """The `tables` (emptied: this holds the only reference) concatenated and sorted by series and time
    (`sort_by(...).combine_chunks()`), a column at a time: each column's unsorted buffers are freed
    once it is sorted, so the peak is the store and one column, not the store twice."""
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    tables.clear()
    order = pc.sort_indices(table, sort_keys=[("series_id", "ascending"), ("ts", "ascending")])
    schema, columns = table.schema, {}
    # The ids last: taking them is the costliest step, best done once the other columns' unsorted copies are gone.
    for name in sorted(table.column_names, key=lambda name: name == "series_id"):
        taken = pc.take(table.column(name), order, memory_pool=pa.system_memory_pool())
        columns[name] = pa.chunked_array([taken.combine_chunks(memory_pool=pa.system_memory_pool()) if taken.num_chunks > 1 else taken.chunk(0)], type=schema.field(name).type)
        table = table.drop_columns([name])
        pa.default_memory_pool().release_unused()
    return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)


def _from_store(path: Path, identity: tuple) -> pa.Table | None:
    """The bucket's rows cut from a kept store holding this very file (sorted by series and time, as
    the file is), or None."""
    from forecasting.history.store import bucket_of

    with _lock:
        found = [(root, kept) for root, kept in _stores.items() if (str(path), identity) in kept[0]]
    if not found:
        return None
    root, (_, whole) = found[0]
    with _lock:
        rows = _rows.get(root)
    if rows is None:
        encoded = pc.dictionary_encode(whole.column("series_id")).combine_chunks()
        numbers = bucket_of(pd.Series(encoded.dictionary.to_pylist(), dtype=object)).astype(np.int16)
        # A row without a series id (older versions stored such source rows) is in no bucket: left out.
        rows = np.append(numbers, -1)[pc.fill_null(encoded.indices, len(numbers)).to_numpy(zero_copy_only=False)]
        with _lock:
            _rows[root] = rows
    number = int(path.parent.name.split("=", 1)[1])
    return whole.filter(pa.array(rows == number))


def forget() -> None:
    """Drop everything kept (tests; a long-lived process between runs)."""
    with _lock:
        _buckets.clear()
        _stores.clear()
        _rows.clear()
