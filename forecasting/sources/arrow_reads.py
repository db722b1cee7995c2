"""Reading a query's rows on PostgreSQL into Arrow instead of fetching one Python tuple per row
(`benchmarks/pg_read.py` measures each way and `pandas.read_sql`): with the ADBC PostgreSQL driver when it
is installed (the `adbc` extra: libpq's binary COPY decoded in C, on its own connection to the same
database and search_path). Without it the pull keeps the driver's row read: psycopg's
`COPY (query) TO STDOUT (FORMAT csv)` parsed by Arrow was measured too (one Python call per row in
psycopg's COPY) and was no faster than the row read at 240,000 rows and 0.66x its speed at 1.2 M.

ADBC gives typed columns (timestamps, float8; numeric as its exact text, read as float64 here); the
caller converts each column exactly as it converts the driver's values.
"""

from __future__ import annotations

import importlib.util

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection


def adbc_available() -> bool:
    """Whether the ADBC PostgreSQL driver is installed."""
    return importlib.util.find_spec("adbc_driver_postgresql") is not None


def copy_records(connection: Connection, query: sa.Select, columns: list[str], numeric: list[str] | None = None) -> pd.DataFrame:
    """The query's rows as a frame read by ADBC: text columns (None for NULL), timestamps, and the
    `numeric` columns as float64 where every value reads as a number (else as text, for the caller)."""
    compiled = query.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    if adbc_available():
        return _adbc_records(connection, compiled, columns, numeric or [])
    raise RuntimeError("copy_records needs the ADBC PostgreSQL driver (the adbc extra); check adbc_available() first")


def _column(values: pa.ChunkedArray, numeric: bool) -> object:
    if numeric:
        try:
            return values.cast(pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            pass  # a text column with a value that is not a number: the caller reads it (NaN)
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values.to_pandas()  # no Python object per row where pandas keeps text in Arrow
    return values.to_numpy(zero_copy_only=False)


def _adbc_records(connection: Connection, compiled: sa.sql.compiler.Compiled, columns: list[str], numeric: list[str]) -> pd.DataFrame:
    import adbc_driver_postgresql.dbapi as adbc
    import psycopg

    driver = connection.connection.driver_connection
    text = psycopg.ClientCursor(driver).mogrify(compiled.string, compiled.params)  # values quoted by psycopg
    search_path = connection.exec_driver_sql("SHOW search_path").scalar()
    uri = connection.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with adbc.connect(uri) as other, other.cursor() as cursor:
        cursor.execute(f"SET search_path TO {search_path}")
        cursor.execute(text)
        table = cursor.fetch_arrow_table()
    frame = {}
    for name, values in zip(columns, table.columns):
        if isinstance(values.type, pa.ExtensionType):
            values = pa.chunked_array([chunk.storage for chunk in values.chunks], type=values.type.storage_type)
        if pa.types.is_timestamp(values.type):
            frame[name] = values.to_pandas()
        else:
            frame[name] = _column(values, name in numeric and (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)))
    return pd.DataFrame(frame)
