"""The local history store: observations pulled from the source, as Parquet under
`<storage>/history/<source table>/bucket=<NN>/part-0.parquet`, bucketed by a stable hash of the
series id so one series is cheap to read. Merging replaces rows with the same (series_id, ts),
writing each bucket to a hidden temporary file renamed into place."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from forecasting.faults import checkpoint
from forecasting.files import replace_atomically

BUCKETS = 16
PART = "part-0.parquet"


def history_root(storage_root: Path, source_table: str) -> Path:
    return Path(storage_root) / "history" / source_table


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
    new_series: int = 0


def merge(root: Path, frame: pd.DataFrame) -> MergeStats:
    """Upsert long-format rows (series_id, ts, value, features...) into the store."""
    stats = MergeStats()
    if frame.empty:
        return stats
    value_columns = [c for c in frame.columns if c not in ("series_id", "ts")]
    for bucket, rows in frame.groupby(bucket_of(frame["series_id"]), sort=True):
        folder = Path(root) / f"bucket={bucket:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / PART
        existing = pd.read_parquet(target) if target.exists() else frame.iloc[0:0]
        known_series = set(existing["series_id"])
        stats.new_series += len(set(rows["series_id"]) - known_series)
        joined = rows.merge(existing, on=["series_id", "ts"], how="left", suffixes=("", "__old"), indicator=True)
        is_new = (joined["_merge"] == "left_only").to_numpy()
        old = joined[[f"{c}__old" for c in value_columns]].to_numpy(dtype="float64")
        new = joined[value_columns].to_numpy(dtype="float64")
        same = ((old == new) | (np.isnan(old) & np.isnan(new))).all(axis=1)
        stats.rows_new += int(is_new.sum())
        stats.rows_revised += int((~is_new & ~same).sum())
        stats.rows_unchanged += int((~is_new & same).sum())
        keep = existing.merge(rows[["series_id", "ts"]], on=["series_id", "ts"], how="left", indicator=True)
        merged = pd.concat([existing.loc[(keep["_merge"] == "left_only").to_numpy()], rows], ignore_index=True)
        merged = merged.sort_values(["series_id", "ts"]).reset_index(drop=True)
        replace_atomically(target, lambda path: merged.to_parquet(path, index=False))
        checkpoint("pull")
    return stats


def exists(root: Path) -> bool:
    """Whether the store holds any bucket file (without reading one)."""
    return any(Path(root).glob(f"bucket=*/{PART}"))


def read(root: Path, newer_than: pd.Timestamp | None = None) -> pd.DataFrame:
    """The store (only rows with ts > `newer_than`, when given) as a long frame sorted by series
    and time; empty when there is none."""
    if not exists(root):
        return pd.DataFrame(columns=["series_id", "ts", "value"])
    dataset = ds.dataset(root, format="parquet", partitioning="hive")
    rows = dataset.filter(ds.field("ts") > pd.Timestamp(newer_than)) if newer_than is not None else dataset
    table = rows.to_table()
    frame = table.drop_columns(["bucket"]).to_pandas() if "bucket" in table.column_names else table.to_pandas()
    return frame.sort_values(["series_id", "ts"]).reset_index(drop=True)


def clear(root: Path) -> None:
    """Forget the store (for a full refresh)."""
    shutil.rmtree(root, ignore_errors=True)
