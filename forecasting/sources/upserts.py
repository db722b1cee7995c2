"""Bulk upserts of a frame on SQLite: the rows go to the driver's `executemany` as tuples, converted
column by column with the table's own bind processors (so the stored values are those SQLAlchemy
stores), instead of a dict per row processed by SQLAlchemy row by row (half of a 10,000-series
forecast write went to building and processing those dicts). Timestamps and text repeat (every
period once per series, every series id once per period), so each distinct value is converted once.

`bulk_upsert` (every frame upsert: `forecasting load`, forecasts, forecast errors, pull state, through
`database.upsert_frame`): the SQLite path above, or on PostgreSQL a COPY of CSV blocks into a temporary
table and one INSERT ... ON CONFLICT DO UPDATE from it. One rule for missing values on both: NaN (NumPy
or Arrow), None, pd.NA and NaT are stored as NULL, never as a float NaN."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from forecasting.errors import ConfigError
from forecasting.runtime.progress import Progress

CHUNK_ROWS = 20_000


def missing_as_null(series: pd.Series) -> pd.Series:
    """A float column as NumPy float64 with NaN for every missing value (an Arrow-backed column keeps
    NaN apart from null, and would store it as a float NaN); other columns unchanged."""
    if pd.api.types.is_float_dtype(series) and not isinstance(series.dtype, np.dtype):
        return pd.Series(series.to_numpy(dtype="float64", na_value=np.nan), index=series.index, name=series.name)
    return series


def column_values(frame: pd.DataFrame, name: str, processor: Any) -> list[Any]:
    """One column as the driver takes it: Python values, None for missing, through `processor`."""
    series = missing_as_null(frame[name])
    if pd.api.types.is_float_dtype(series) or pd.api.types.is_integer_dtype(series) or pd.api.types.is_bool_dtype(series):
        values = series.astype(object).where(series.notna(), None).tolist()
        return values if processor is None else [None if value is None else processor(value) for value in values]
    codes, distinct = pd.factorize(series)  # missing values get code -1
    python = list(distinct.to_pydatetime()) if isinstance(distinct, pd.DatetimeIndex) else distinct.astype(object).tolist()
    lookup = np.empty(len(python) + 1, dtype=object)
    lookup[: len(python)] = python if processor is None else [processor(value) for value in python]
    lookup[-1] = None
    return lookup[codes].tolist()


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




def bulk_upsert(connection: Connection, table: sa.Table, frame: pd.DataFrame, key: Iterable[str]) -> int:
    """INSERT ... ON CONFLICT (key) DO UPDATE of every row of `frame` (unique on `key`) into `table`,
    in the caller's transaction: executemany on SQLite, COPY into a staging table on PostgreSQL."""
    if frame.empty:
        return 0
    if connection.dialect.name == "sqlite":
        return sqlite_upsert_frame(connection, table, frame, key)
    if connection.dialect.name != "postgresql":
        from forecasting.sources.database import frame_to_rows, upsert

        return upsert(connection, table, frame_to_rows(frame), key)
    return _postgres_copy_upsert(connection, table, frame, list(key))


def _postgres_copy_upsert(connection: Connection, table: sa.Table, frame: pd.DataFrame, key: list[str]) -> int:
    columns = [str(c) for c in frame.columns]
    unknown = [c for c in columns if c not in table.c]
    if unknown:
        raise ConfigError(f"table {table.name!r} has no columns {unknown}")
    preparer = connection.dialect.identifier_preparer
    column_list = ", ".join(preparer.quote(c) for c in columns)
    stage = preparer.quote(f"stage_{uuid.uuid4().hex[:12]}")
    target = preparer.format_table(table)
    # The staging table has the frame's types, not the target's: PostgreSQL then converts as it converted
    # the row-by-row upsert's values (a float into an integer column rounds, a timestamp into a text column
    # reads "2024-01-01 00:00:00"), where COPY would refuse "1.0" for an integer column.
    staged = ", ".join(f"{preparer.quote(c)} {_stage_type(frame[c])}" for c in columns)
    connection.exec_driver_sql(f"CREATE TEMPORARY TABLE {stage} ({staged}) ON COMMIT DROP")
    # \N for NULL, so an empty text stays an empty text; floats as Python writes them (round-trip exact).
    statement = f"COPY {stage} ({column_list}) FROM STDIN (FORMAT csv, NULL '\\N')"
    dbapi_error = connection.dialect.loaded_dbapi.Error
    progress = Progress(f"sql write {table.name}", len(frame), "rows").start()  # stopped on errors by the phase, or below
    try:
        with connection.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
            for start in range(0, len(frame), CHUNK_ROWS):
                part = frame.iloc[start : start + CHUNK_ROWS].apply(missing_as_null)
                copy.write(part.to_csv(header=False, index=False, na_rep="\\N", date_format="%Y-%m-%d %H:%M:%S.%f"))
                progress.update(start + len(part), "copied into a staging table")
    except dbapi_error as error:
        progress.finish(failed=True)
        raise sa.exc.DBAPIError.instance(statement, None, error, dbapi_error, dialect=connection.dialect) from None
    updates = ", ".join(f"{preparer.quote(c)} = EXCLUDED.{preparer.quote(c)}" for c in columns if c not in key)
    conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    select = _select_list(table, frame, columns, preparer.quote, connection.dialect)
    # Naive times are UTC: staged as `timestamp` (or text) they become `timestamptz` in the session's
    # TimeZone, so the conversion runs in UTC; the caller's transaction gets its own zone back after.
    zone = connection.exec_driver_sql("SELECT current_setting('TimeZone')").scalar_one()
    connection.execute(sa.text("SELECT set_config('TimeZone', 'UTC', true)"))
    connection.exec_driver_sql(
        f"INSERT INTO {target} ({column_list}) SELECT {select} FROM {stage} ON CONFLICT ({', '.join(preparer.quote(k) for k in key)}) {conflict}"
    )
    connection.execute(sa.text("SELECT set_config('TimeZone', :zone, true)"), {"zone": zone})
    progress.finish("copied, then upserted in one statement")
    return len(frame)


def _stage_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series):
        return "double precision"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "timestamp"
    return "text"


def _select_list(table: sa.Table, frame: pd.DataFrame, columns: list[str], quote: Any, dialect: Any) -> str:
    """The staged columns as the target takes them: numbers into a boolean column as `<> 0` (PostgreSQL has no
    cast from double precision to boolean); text (an object column: Python numbers or times, or None
    throughout) into a column of another type by an explicit cast (there is no assignment cast from text);
    everything else by PostgreSQL's assignment casts."""
    chosen = []
    for name in columns:
        target, staged = table.c[name].type, _stage_type(frame[name])
        if isinstance(target, sa.Boolean) and staged == "double precision":
            chosen.append(f"({quote(name)} <> 0)")
        elif staged == "text" and not isinstance(target, (sa.String, sa.Enum, sa.types.NullType)):
            chosen.append(f"CAST({quote(name)} AS {target.compile(dialect=dialect)})")
        else:
            chosen.append(quote(name))
    return ", ".join(chosen)
