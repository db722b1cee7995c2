"""Bulk upserts of a frame on SQLite: the rows go to the driver's `executemany` as tuples, converted
column by column with the table's own bind processors (so the stored values are those SQLAlchemy
stores), instead of a dict per row processed by SQLAlchemy row by row (half of a 10,000-series
forecast write went to building and processing those dicts)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from forecasting.errors import ConfigError
from forecasting.progress import Progress

CHUNK_ROWS = 20_000


def column_values(frame: pd.DataFrame, name: str, processor: Any) -> list[Any]:
    """One column as the driver takes it: Python values, None for missing, through `processor`."""
    series = frame[name]
    if pd.api.types.is_datetime64_any_dtype(series):
        values = pd.Series(series.dt.to_pydatetime(), index=series.index, dtype=object)
    else:
        values = series.astype(object)
    values = values.where(series.notna(), None).tolist()
    if processor is None:
        return values
    return [None if value is None else processor(value) for value in values]


def sqlite_upsert_frame(connection: Connection, table: sa.Table, frame: pd.DataFrame, key: Iterable[str]) -> int:
    """INSERT ... ON CONFLICT (key) DO UPDATE of every row of `frame` into `table` (SQLite), in the
    caller's transaction; returns the number of rows written."""
    key = list(key)
    columns = [str(c) for c in frame.columns]
    unknown = [c for c in columns if c not in table.c]
    if unknown:
        raise ConfigError(f"table {table.name!r} has no columns {unknown}")
    quote = connection.dialect.identifier_preparer.quote
    updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in key)
    conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    statement = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT ({', '.join(quote(k) for k in key)}) {conflict}"
    )
    with Progress(f"sql write {table.name}", len(frame), "rows") as progress:  # finished (or stopped) whatever happens
        for start in range(0, len(frame), CHUNK_ROWS):
            part = frame.iloc[start : start + CHUNK_ROWS]
            processors = {name: table.c[name].type.dialect_impl(connection.dialect).bind_processor(connection.dialect) for name in columns}
            values = [column_values(part, name, processors[name]) for name in columns]
            connection.exec_driver_sql(statement, list(zip(*values)))
            progress.advance(len(part))
    return len(frame)
