"""The Parquet store: forecasts as a hive-partitioned dataset under `<storage>/forecasts/`.

Layout: `forecasts/model_name=<model>/origin_date=<YYYY-MM-DD>/part-0.parquet`. Writing a partition
merges with what it holds (rows with the same key are replaced, others kept), writes a hidden
temporary file and renames it into place (on an object store: uploads it as one object), so
readers never see a partial file.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from forecasting.config.settings import MODEL_NAME_PATTERN
from forecasting.sources.tables import FORECAST_KEY
from forecasting.errors import ConfigError
from forecasting.storage.files import replace_atomically
from forecasting.runtime.progress import Progress
from forecasting.storage.locations import arrow_source, location, make_dirs

PARTITION_FILE = "part-0.parquet"
PARTITIONING = ds.partitioning(pa.schema([("model_name", pa.string()), ("origin_date", pa.string())]), flavor="hive")


def forecasts_root(storage_root: Path, dataset: Path | None = None) -> Path:
    """The dataset's folder: `dataset` when given (`storage.forecasts`), else `<storage>/forecasts`."""
    return location(dataset) if dataset is not None else location(storage_root) / "forecasts"


def _partition_dir(root: Path, model_name: str, origin_date: str) -> Path:
    if not MODEL_NAME_PATTERN.match(model_name):
        raise ConfigError(f"model name {model_name!r} is not allowed (letters, digits, '-' and '_' only)")
    return root / f"model_name={model_name}" / f"origin_date={origin_date}"


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    # `assign`, not a copy of the whole frame: pandas copies on write, so the caller's frame is unchanged.
    frame = frame.assign(**{column: pd.to_datetime(frame[column]).astype("datetime64[us]") for column in ("forecast_origin", "target_ts", "created_at")})
    return pa.Table.from_pandas(frame, preserve_index=False)


def rows_not_in(existing: pd.DataFrame, rows: pd.DataFrame, key: list[str]) -> np.ndarray:
    """Which rows of `existing` have a key `rows` does not hold (what a left anti-join keeps; keys unique
    in each), found on one integer per key (each column's codes combined) instead of a merged frame."""
    sizes, combined = 1, np.zeros(len(existing) + len(rows), dtype="int64")
    for column in key:
        codes, uniques = pd.factorize(pd.concat([existing[column], rows[column]], ignore_index=True), use_na_sentinel=False)
        sizes *= max(len(uniques), 1)
        if sizes >= 2**62:  # the combined integer would overflow: join the frames
            merged = existing.merge(rows[key], on=key, how="left", indicator=True)
            return (merged["_merge"] == "left_only").to_numpy()
        combined = combined * len(uniques) + codes
    return ~np.isin(combined[: len(existing)], combined[len(existing) :])


def write_forecasts(storage_root: Path, forecasts: pd.DataFrame, dataset: Path | None = None) -> int:
    """Upsert forecast rows (with a `model_name` column) into their partitions; returns rows written."""
    if forecasts.empty:
        return 0
    root = forecasts_root(storage_root, dataset)
    # Each distinct origin formatted once, not a string built per row.
    codes, origins = pd.factorize(pd.to_datetime(forecasts["forecast_origin"]), use_na_sentinel=False)
    origin_dates = pd.Series(np.asarray(origins.strftime("%Y-%m-%d"), dtype=object)[codes], index=forecasts.index)
    key = [c for c in FORECAST_KEY if c != "model_name"]
    progress = Progress("parquet write", len(forecasts), "rows").start()
    groups = forecasts.groupby([forecasts["model_name"], origin_dates], sort=True).indices
    for model_name, origin_date in sorted(groups):
        folder = _partition_dir(root, str(model_name), str(origin_date))
        make_dirs(folder)
        index = groups[(model_name, origin_date)]
        rows = forecasts if len(index) == len(forecasts) else forecasts.iloc[index]  # one partition: no copy of the rows
        rows = rows.drop(columns=["model_name"])
        count = len(rows)
        target = folder / PARTITION_FILE
        # The stored keys first: the stored rows are read only when some are kept (not when all are replaced).
        existing = _read_partition(target, key)
        keep = rows_not_in(existing, rows, key) if existing is not None else None
        existing = _read_partition(target) if keep is not None and keep.any() else None
        if existing is not None:
            if len(existing) != len(keep):  # the file changed between the two reads: decide on the rows read last
                keep = rows_not_in(existing, rows, key)
            rows = pd.concat([existing.loc[keep], rows], ignore_index=True)
            if "method" in rows:  # rows kept from a partition written before the column
                rows = legacy_methods(rows)
        order = ["series_id", "forecast_origin", "target_ts"]
        # Staged forecasts come in this order already: no sorted copy of them (1.8 M rows at 100,000 series).
        rows = rows.reset_index(drop=True) if is_sorted_by(rows, order) else rows.sort_values(order).reset_index(drop=True)
        table = _to_arrow(rows)
        replace_atomically(target, lambda path: pq.write_table(table, path), kill_point="parquet-write")
        progress.advance(count, f"partition {model_name}/{origin_date}")
    progress.finish()
    return len(forecasts)


def is_sorted_by(frame: pd.DataFrame, columns: list[str]) -> bool:
    """Whether `frame` is in the order `sort_values(columns)` gives (no missing values; found on integer codes)."""
    keys = [pd.factorize(frame[column], sort=True)[0] for column in columns]
    if any((codes < 0).any() for codes in keys):
        return False
    return bool((np.lexsort(keys[::-1]) == np.arange(len(frame))).all())


def _read_partition(path: Path, columns: list[str] | None = None) -> pd.DataFrame | None:
    """A partition's rows (`columns` of them, default all), or None when it is missing or unreadable (a
    truncated file): the rows about to be written replace it, and `repair_parquet` rebuilds the rest from SQL."""
    if not path.exists():
        return None
    try:
        with path.open("rb") as handle:
            frame = pq.read_table(handle, columns=columns).to_pandas()
        pa.default_memory_pool().release_unused()  # the Arrow buffers the frame was copied from
        return frame
    except (OSError, pa.ArrowException):
        return None


def partition_footers(storage_root: Path, model_name: str, dataset: Path | None = None) -> dict[str, tuple[int, datetime | None] | None]:
    """Per origin date, (rows, newest `created_at`) of the model's partition file, both from its
    Parquet footer (row count and column statistics; the data is not read); None for a partition
    folder whose file is missing or unreadable."""
    folder = _partition_dir(forecasts_root(storage_root, dataset), model_name, "x").parent
    found: dict[str, tuple[int, datetime | None] | None] = {}
    if not folder.is_dir():
        return found
    for partition in sorted(folder.glob("origin_date=*")):
        if not partition.is_dir():
            continue
        try:
            with (partition / PARTITION_FILE).open("rb") as handle:
                metadata = pq.read_metadata(handle)
            found[partition.name.split("=", 1)[1]] = (metadata.num_rows, _newest_created(metadata))
        except (OSError, pa.ArrowException):
            found[partition.name.split("=", 1)[1]] = None
    return found


def _newest_created(metadata: pq.FileMetaData) -> datetime | None:
    """The largest `created_at` by the row groups' statistics (None when a row group has none)."""
    index = metadata.schema.to_arrow_schema().get_field_index("created_at")
    newest = None
    for group in range(metadata.num_row_groups):
        column = metadata.row_group(group).column(index) if index >= 0 else None
        if column is None or not column.is_stats_set or not column.statistics.has_min_max:
            return None
        newest = column.statistics.max if newest is None else max(newest, column.statistics.max)
    return newest


def replace_partition(storage_root: Path, model_name: str, origin_date: str, rows: pd.DataFrame, dataset: Path | None = None) -> int:
    """Write one partition with exactly `rows` (no `model_name` column), atomically; returns rows written."""
    folder = _partition_dir(forecasts_root(storage_root, dataset), model_name, origin_date)
    make_dirs(folder)
    rows = rows.sort_values(["series_id", "forecast_origin", "target_ts"]).reset_index(drop=True)
    table = _to_arrow(rows)
    replace_atomically(folder / PARTITION_FILE, lambda path: pq.write_table(table, path), kill_point="parquet-write")
    return len(rows)


def read_forecasts(storage_root: Path, model_name: str | None = None, dataset: Path | None = None) -> pd.DataFrame:
    """The forecasts dataset as a frame (optionally one model, pruned by partition). Partitions written
    before a column existed read with it empty (the columns of every partition, not only the first's);
    their `method` is filled as migration 0011 fills the table's (`legacy_methods`)."""
    root = forecasts_root(storage_root, dataset)
    if not root.exists():
        return pd.DataFrame()
    found = ds.dataset(**arrow_source(root), format="parquet", partitioning=PARTITIONING)
    expression = ds.field("model_name") == model_name if model_name else None
    schemas = [fragment.physical_schema for fragment in found.get_fragments(filter=expression)]
    if schemas:
        schema = pa.unify_schemas([*schemas, PARTITIONING.schema])
        found = ds.dataset(**arrow_source(root), format="parquet", partitioning=PARTITIONING, schema=schema)
    return legacy_methods(found.to_table(filter=expression).to_pandas())


def legacy_methods(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with a `method` where rows written before it have none: `constant` where the 95% interval
    has zero width at the forecast, else `network` (migration 0011's rule for the table)."""
    if frame.empty:
        return frame
    missing = frame["method"].isna().to_numpy() if "method" in frame else np.ones(len(frame), dtype=bool)
    if not missing.any():
        return frame
    constant = np.zeros(len(frame), dtype=bool)
    if {"yhat_lower_95", "yhat_upper_95"} <= set(frame.columns):
        yhat = frame["yhat"].to_numpy(dtype="float64")
        constant = (frame["yhat_lower_95"].to_numpy(dtype="float64") == yhat) & (frame["yhat_upper_95"].to_numpy(dtype="float64") == yhat)
    filled = np.where(constant, "constant", "network").astype(object)
    current = frame["method"].to_numpy(dtype=object) if "method" in frame else filled
    return frame.assign(method=np.where(missing, filled, current))
