"""`forecasting load FILE`: read a CSV or Parquet file of observations and upsert it, all or nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from forecasting.config.settings import SourceConfig
from forecasting.sources.upserts import bulk_upsert
from forecasting.sources.database import check_source
from forecasting.errors import InputError
from forecasting.preparation.validation import check_loaded_file, to_utc_naive  # noqa: F401 - to_utc_naive is part of this module's API

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class LoadResult:
    rows: int
    inserted: int
    updated: int
    series: int
    first_ts: pd.Timestamp | None
    last_ts: pd.Timestamp | None


def read_observation_file(
    path: str | Path,
    series: str = "series_id",
    time: str = "ts",
    value: str = "value",
    features: list[str] | None = None,
    file_format: str | None = None,
) -> pd.DataFrame:
    """The file as a checked long frame (series_id, ts, value, features...), or an InputError."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a CSV or Parquet file")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    kind = file_format or FORMATS.get(path.suffix.lower())
    if kind not in ("csv", "parquet"):
        raise InputError(f"{path}: unknown file type {path.suffix!r}; use .csv or .parquet, or pass --format")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False) if kind == "csv" else pd.read_parquet(path)
    except Exception as error:  # noqa: BLE001 - any reader failure is a bad file for the user
        raise InputError(f"{path}: cannot read as {kind}: {error}") from None
    wanted = {"series": series, "time": time, "value": value}
    missing = [f"{name} (--{flag}-column)" for flag, name in wanted.items() if name not in raw.columns]
    if missing:
        raise InputError(f"{path}: missing column {', '.join(missing)}; the file has: {', '.join(map(str, raw.columns))}")
    if raw.empty:
        raise InputError(f"{path}: the file has no rows (only a header); nothing was loaded")
    present_features = [name for name in (features or []) if name in raw.columns]
    raw = raw[[series, time, value, *present_features]].reset_index(drop=True)
    parsed = pd.DataFrame({"series_id": raw[series].astype("string").str.strip(), "ts": to_utc_naive(raw[time])})
    parsed.loc[parsed["series_id"] == "", "series_id"] = pd.NA
    value_columns = ["value", *present_features]
    for source_name, column in zip([value, *present_features], value_columns):
        column_values = raw[source_name]
        if column_values.dtype == object or pd.api.types.is_string_dtype(column_values):
            column_values = column_values.astype("string").str.strip()
        parsed[column] = pd.to_numeric(column_values, errors="coerce").astype("float64")
    check_loaded_file(raw, parsed, str(path), value_columns)
    parsed["series_id"] = parsed["series_id"].astype(str)
    return parsed


def load_observations(engine: Engine, source: SourceConfig, frame: pd.DataFrame) -> LoadResult:
    """Upsert a checked frame into the source table in one transaction."""
    with engine.begin() as connection:
        table = check_source(connection, source)
        renamed = frame.rename(columns={"series_id": source.series, "ts": source.time, "value": source.target})
        renamed = renamed[[c for c in renamed.columns if c in table.c]]
        before = connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        written = bulk_upsert(connection, table, renamed, key=[source.series, source.time])
        after = connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    inserted = after - before
    return LoadResult(
        rows=written,
        inserted=inserted,
        updated=written - inserted,
        series=int(frame["series_id"].nunique()),
        first_ts=frame["ts"].min() if len(frame) else None,
        last_ts=frame["ts"].max() if len(frame) else None,
    )
