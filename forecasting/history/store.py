"""The history store: observations pulled from the source, as Parquet under
`<storage>/history/<source table>/<generation>/bucket=<NN>/part-0.parquet`, bucketed by a stable
hash of the series id so one series is cheap to read.

`manifest.json` beside the generations names the current generation and its buckets; it is
written last (atomically), so a store is complete exactly when its manifest is there and every
bucket it lists exists. A full rebuild writes a new generation aside and swaps the manifest to it
in one rename: a rebuild that dies leaves the previous store in place. An incremental merge
replaces each bucket of the current generation through a temporary file renamed into place; the
pull state that would skip its rows moves only after the run commits, so a merge that dies is
simply done again by the next pull.

On an object store (no rename) each bucket and the manifest are written whole on the local disk and
put as one object, so the same holds: a reader sees the old object or the new one.

A run reads the store once: each local bucket file read (or written) is kept in this process, keyed by
the file's inode, size and modification time, and the whole store sorted by series and time is kept
while no bucket changes, so the pull, the scoring, every data preparation and the report of one run
share one read (`history_cache`). A bucket rewritten by a merge is kept as written, not read back.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from forecasting.errors import RunError
from forecasting.runtime.faults import checkpoint
from forecasting.storage.files import replace_atomically
from forecasting.history.cache import bucket_table, remember, store_table
from forecasting.runtime.progress import Progress
from forecasting.storage.locations import arrow_source, location, make_dirs, remove_tree

BUCKETS = 16
PART = "part-0.parquet"
MANIFEST = "manifest.json"
FORMAT = 2


def history_root(storage_root: Path, source_table: str) -> Path:
    return location(storage_root) / "history" / source_table


def bucket_of(series_ids: pd.Series) -> np.ndarray:
    """Stable bucket number (0..BUCKETS-1) of each series id."""
    unique = pd.unique(series_ids)
    lookup = {sid: int.from_bytes(hashlib.sha1(str(sid).encode()).digest()[:4], "big") % BUCKETS for sid in unique}
    return series_ids.map(lookup).to_numpy()


@dataclass
class MergeStats:
    rows_new: int = 0
    rows_revised: int = 0
    rows_unchanged: int = 0
    rows_removed: int = 0
    new_series: int = 0
    series_removed: int = 0


def manifest(root: Path) -> dict | None:
    """The store's manifest, or None when there is none."""
    path = location(root) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def status(root: Path) -> str:
    """`complete` (manifest and every bucket it lists), `missing` (no store) or `incomplete`
    (a rebuild that died before its manifest, a bucket gone, or a store from before manifests)."""
    root = location(root)
    found = manifest(root)
    if found is None:
        return "incomplete" if root.is_dir() and any(root.iterdir()) else "missing"
    folder = root / found["generation"]
    if not all((folder / f"bucket={int(b):02d}" / PART).is_file() for b in found["buckets"]):
        return "incomplete"
    return "complete"


def exists(root: Path) -> bool:
    """Whether a complete store is there (without reading a bucket)."""
    return status(root) == "complete"


def _current(root: Path) -> Path:
    state = status(root)
    if state != "complete":
        raise RunError(
            f"the history store {root} is {state} (an interrupted rebuild, a removed bucket, or a store from an older version); "
            "it is never read as if complete: the next run's pull rebuilds it from the source"
        )
    return location(root) / manifest(root)["generation"]  # type: ignore[index]


def read(
    root: Path,
    newer_than: pd.Timestamp | None = None,
    columns: list[str] | None = None,
    series: Iterable[str] | None = None,
    shared: bool = False,
) -> pd.DataFrame:
    """The store (only rows with ts > `newer_than` and of `series`, when given) as a long frame sorted
    by series and time; empty when there is none; a RunError when it is incomplete. With `shared`, the
    frame's columns are read-only views of the store kept in memory where Arrow allows (no copy of
    12 M timestamps and values): for readers that never write into the frame (a write raises)."""
    if status(root) == "missing":
        return pd.DataFrame(columns=columns or ["series_id", "ts", "value"])
    folder = _current(root)
    files = [folder / f"bucket={int(b):02d}" / PART for b in sorted(manifest(root)["buckets"], key=int)]  # type: ignore[index]
    if not files:
        return pd.DataFrame(columns=columns or ["series_id", "ts", "value"])
    table = store_table(location(root), files)
    if newer_than is not None:
        table = table.filter(ds.field("ts") > pd.Timestamp(newer_than))
    if series is not None:
        table = table.filter(ds.field("series_id").isin(pa.array(sorted({str(s) for s in series}), type=table.schema.field("series_id").type)))
    if columns is not None:
        table = table.select(columns)
    return table.to_pandas(split_blocks=True) if shared else table.to_pandas()


def stored_columns(root: Path) -> set[str]:
    """The value columns every bucket of the current store holds (empty when there is no complete store)."""
    if status(root) != "complete":
        return set()
    folder = _current(root)
    names = [set(ds.dataset(**arrow_source(path), format="parquet").schema.names) for path in sorted(folder.glob(f"bucket=*/{PART}"))]
    return set.intersection(*names) - {"series_id", "ts", "bucket"} if names else set()


def merge(root: Path, frame: pd.DataFrame, replace_after: Mapping[str, pd.Timestamp | None] | None = None) -> MergeStats:
    """Upsert long-format rows (series_id, ts, value, features...) into the current store.

    For each series in `replace_after`, its stored rows after the given time (all of them for None)
    are replaced by its rows in `frame`: rows deleted from the source there leave the store too.
    Other series' rows are upserted on (series_id, ts). An empty store becomes a first generation.
    """
    root = location(root)
    state = status(root)
    if state == "missing":
        with Rebuild(root) as rebuild:
            stats = rebuild.merge(frame)
            rebuild.commit()
        return stats
    folder = _current(root)
    _remove_unreferenced(root)  # what a killed rebuild left aside
    found = manifest(root)
    stats, buckets = _merge_into(folder, frame, replace_after or {}, dict(found["buckets"]))  # type: ignore[index]
    _write_manifest(root, {**found, "buckets": buckets})  # type: ignore[dict-item]
    return stats


class Rebuild:
    """A new generation written aside; `commit` swaps the manifest to it in one atomic rename."""

    def __init__(self, root: Path) -> None:
        self.root = location(root)
        make_dirs(self.root)
        self.generation = f"g-{uuid.uuid4().hex[:12]}"
        self.folder = self.root / self.generation
        self.buckets: dict[str, dict[str, int]] = {}
        self.committed = False

    def __enter__(self) -> "Rebuild":
        _remove_unreferenced(self.root)
        make_dirs(self.folder)
        return self

    def merge(self, frame: pd.DataFrame) -> MergeStats:
        stats, self.buckets = _merge_into(self.folder, frame, {}, self.buckets)
        return stats

    def commit(self) -> None:
        checkpoint("rebuild-swap")
        previous = manifest(self.root)
        _write_manifest(
            self.root, {"format": FORMAT, "generation": self.generation, "previous": previous["generation"] if previous else None, "buckets": self.buckets}
        )
        self.committed = True
        _remove_unreferenced(self.root)

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            remove_tree(self.folder)


def _write_manifest(root: Path, content: dict) -> None:
    content = {**content, "series": sum(b["series"] for b in content["buckets"].values()), "rows": sum(b["rows"] for b in content["buckets"].values())}
    replace_atomically(location(root) / MANIFEST, lambda path: path.write_text(json.dumps(content, indent=1, sort_keys=True)))


def _remove_unreferenced(root: Path) -> None:
    """Remove generations neither current nor previous (a reader may still be on the previous one),
    and buckets of a store from before generations."""
    found = manifest(root)
    keep = {found["generation"], found.get("previous")} if found else set()
    if not location(root).exists():
        return
    for child in location(root).iterdir():
        if child.name not in keep and (child.name.startswith("g-") or child.name.startswith("bucket=")) and child.is_dir():
            remove_tree(child)


def ids(frame: pd.DataFrame) -> set[str]:
    """The distinct series ids of a frame (through `unique`: iterating a whole Arrow-backed column is slow)."""
    return set(frame["series_id"].unique().tolist())


def _merge_into(
    folder: Path, frame: pd.DataFrame, replace_after: Mapping[str, pd.Timestamp | None], buckets: dict[str, dict[str, int]]
) -> tuple[MergeStats, dict[str, dict[str, int]]]:
    stats = MergeStats()
    buckets = dict(buckets)
    frame = frame.assign(ts=frame["ts"].astype("datetime64[us]"))
    touched = pd.Index(pd.unique(pd.concat([frame["series_id"], pd.Series(list(replace_after), dtype=object)], ignore_index=True)))
    if not len(touched):
        return stats, buckets
    frame_buckets = bucket_of(frame["series_id"])
    value_columns = [c for c in frame.columns if c not in ("series_id", "ts")]
    todo = sorted(set(bucket_of(pd.Series(touched))))
    progress = Progress("pull: history store merge", len(todo), "buckets").start()
    for bucket in todo:
        rows = frame.loc[frame_buckets == bucket]
        target = location(folder) / f"bucket={bucket:02d}" / PART
        existing = bucket_table(target).to_pandas() if target.exists() else frame.iloc[0:0]
        existing = existing.assign(ts=existing["ts"].astype("datetime64[us]"))
        known_series = ids(existing)
        stats.new_series += len(ids(rows) - known_series)
        joined = rows.merge(existing, on=["series_id", "ts"], how="left", suffixes=("", "__old"), indicator=True)
        is_new = (joined["_merge"] == "left_only").to_numpy()
        old_columns = [f"{c}__old" if f"{c}__old" in joined else None for c in value_columns]
        old = np.column_stack([joined[c].to_numpy(dtype="float64") if c else np.full(len(joined), np.nan) for c in old_columns]) if value_columns else np.empty((len(joined), 0))
        new = joined[value_columns].to_numpy(dtype="float64")
        same = ((old == new) | (np.isnan(old) & np.isnan(new))).all(axis=1)
        stats.rows_new += int(is_new.sum())
        stats.rows_revised += int((~is_new & ~same).sum())
        stats.rows_unchanged += int((~is_new & same).sum())
        whole = [sid for sid, after in replace_after.items() if after is None]
        after = pd.Series({sid: t for sid, t in replace_after.items() if t is not None}, dtype="datetime64[us]")
        after = after.reindex(existing["series_id"].to_numpy()).to_numpy()
        replaced = existing["series_id"].isin(whole).to_numpy() | (existing["ts"].to_numpy() > after)
        key = ["series_id", "ts"]
        keep = existing.loc[~replaced].merge(rows[key], on=key, how="left", indicator=True)
        kept = existing.loc[~replaced].loc[(keep["_merge"] == "left_only").to_numpy()]
        dropped = existing.loc[replaced].merge(rows[key], on=key, how="left", indicator=True)
        stats.rows_removed += int((dropped["_merge"] == "left_only").sum())
        merged = pd.concat([kept, rows], ignore_index=True).sort_values(key).reset_index(drop=True)
        stats.series_removed += len(known_series - ids(merged))
        make_dirs(target.parent)
        if merged.empty:
            target.unlink(missing_ok=True)
            buckets.pop(str(bucket), None)
        else:
            written = pa.Table.from_pandas(merged, preserve_index=False)
            replace_atomically(target, lambda path: pq.write_table(written, path))
            remember(target, written)
            buckets[str(bucket)] = {"series": int(merged["series_id"].nunique()), "rows": len(merged)}
        checkpoint("pull")
        progress.advance(1, f"{stats.rows_new:,} new rows, {stats.rows_revised:,} revised")
    progress.finish()
    return stats, buckets


def clear(root: Path) -> None:
    """Forget the store."""
    remove_tree(location(root))
