"""The database: engine, URL handling, source checks and reads (tables: `forecasting.sources.tables`; writes: `forecasting.sources.upserts`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from forecasting.config.credentials import url_origin, masked_url, parse_url, redact
from forecasting.config.settings import DATABASE_URL_ENV, SourceConfig
from forecasting.errors import ConfigError, InputError
from forecasting.preparation.validation import to_utc_naive
from forecasting.sources.arrow_reads import adbc_available, copy_records
from forecasting.storage.files import file_kind

SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def create_db_engine(url: str | sa.engine.URL, schema: str | None = None) -> Engine:
    """An engine for `url`; SQLite files get their folder, WAL mode and a busy timeout. With a
    PostgreSQL `schema` (`database.schema`), every connection's search path is that schema alone, so
    the job's unqualified table and view names (Core tables, Alembic, raw SQL) all resolve there."""
    parsed = parse_url(url)
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise ConfigError(
            f"database.url: {parsed.get_backend_name()} databases are not supported ({masked_url(parsed)}); "
            "use SQLite (sqlite:///path/to/file.db) or PostgreSQL (postgresql+psycopg://user@host/db)"
        )
    if schema is not None:
        if parsed.get_backend_name() != "postgresql":
            raise ConfigError(
                f"database.schema: {schema!r} is set, but only PostgreSQL has schemas and the database is {masked_url(parsed)} "
                f"({url_origin()}); set {DATABASE_URL_ENV} to your PostgreSQL URL, or leave database.schema unset"
            )
        return sa.create_engine(parsed, pool_pre_ping=True, connect_args={"options": f'-csearch_path="{schema}"'})
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            if Path(database).exists() and not Path(database).is_file():
                raise ConfigError(f"{url_origin()}: the SQLite database {database} is {file_kind(Path(database))}, not a regular file")
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)


def connect_checked(url: str, schema: str | None = None) -> Engine:
    """An engine that has been shown to connect, or a ConfigError naming `database.url`."""
    try:
        engine = create_db_engine(url, schema)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as error:
        raise ConfigError(f"{url_origin()}: {masked_url(url)} is not a usable SQLAlchemy URL: {redact(str(error), url)}") from None
    except ImportError as error:
        raise ConfigError(
            f"database.url: the driver for {masked_url(url)} is not installed ({error}); "
            "use SQLite or PostgreSQL with psycopg (postgresql+psycopg://user@host/db)"
        ) from None
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0] if str(getattr(error, "orig", error)).strip() else type(error).__name__
        raise ConfigError(f"{url_origin()}: cannot connect to {masked_url(engine)}: {redact(reason, url)}") from None
    return engine


def split_table(table: str) -> tuple[str | None, str]:
    """(schema or None, name) of a table name that may be schema-qualified (`analytics.sales`)."""
    schema, _, name = table.rpartition(".")
    return schema or None, name


def table_columns(connection: Connection, table: str) -> dict[str, Any] | None:
    """Column name -> type of a live table or view (`schema.name` allowed), or None when there is none."""
    schema, name = split_table(table)
    inspector = sa.inspect(connection)
    if schema is not None and schema not in inspector.get_schema_names():
        return None
    if not inspector.has_table(name, schema=schema):
        return None
    return {column["name"]: column["type"] for column in inspector.get_columns(name, schema=schema)}


def check_source(connection: Connection, source: SourceConfig) -> sa.Table:
    """The live source table (or view), after checking every configured column exists in it."""
    columns = table_columns(connection, source.table)
    if columns is None:
        schema, _ = split_table(source.table)
        inspector = sa.inspect(connection)
        if schema is not None and schema not in inspector.get_schema_names():
            raise ConfigError(f"source.table: schema {schema!r} of {source.table!r} not found in the database")
        names = [*inspector.get_table_names(schema=schema), *inspector.get_view_names(schema=schema)]
        where = f"schema {schema!r}" if schema else "the database"
        raise ConfigError(
            f"source.table: table {source.table!r} not found in {where} (tables and views: {', '.join(sorted(names)) or 'none'}); "
            "run `forecasting init` to create the default one"
        )
    for key, name in [("source.series", source.series), ("source.time", source.time), ("source.target", source.target)] + [
        (f"source.features[{i}]", feature) for i, feature in enumerate(source.features)
    ] + [(f"source.future_features[{i}]", feature) for i, feature in enumerate(source.future_features)]:
        if name not in columns:
            raise ConfigError(
                f"{key}: column {name!r} not found in table {source.table!r} (columns: {', '.join(columns)})"
            )
    schema, name = split_table(source.table)
    # Schema and name stay separate identifiers, so SQLAlchemy quotes each one.
    return sa.Table(name, sa.MetaData(), schema=schema, autoload_with=connection)


def check_column_types(connection: Connection, source: SourceConfig) -> dict[str, str]:
    """The configured source columns and their types as the database names them (series, time, target,
    features, future features), after `check_source`; a ConfigError for the first column whose type the
    job cannot read as it reads it: the time a date, a timestamp or text (ISO 8601), the target and
    the features numbers (a feature may be a boolean too). A type the database does not declare
    (a SQLite column without one, some views) passes: its values are read as they come."""
    check_source(connection, source)
    columns = table_columns(connection, source.table) or {}
    roles = [("source.series", source.series, None), ("source.time", source.time, (sa.DateTime, sa.Date, sa.String)),
             ("source.target", source.target, (sa.Integer, sa.Numeric, sa.Float))] + [
        (f"source.features[{i}]", name, (sa.Integer, sa.Numeric, sa.Float, sa.Boolean)) for i, name in enumerate(source.features)
    ] + [(f"source.future_features[{i}]", name, (sa.Integer, sa.Numeric, sa.Float, sa.Boolean)) for i, name in enumerate(source.future_features)]
    found = {}
    for key, name, usable in roles:
        kind = columns[name]
        found[name] = "untyped" if isinstance(kind, sa.types.NullType) else str(kind)
        if usable is None or isinstance(kind, sa.types.NullType) or isinstance(kind, usable):
            continue
        wanted = "a date, a timestamp or ISO 8601 text" if key == "source.time" else "a number" if key == "source.target" else "a number or a boolean"
        raise ConfigError(f"{key}: column {name!r} of table {source.table!r} is {kind}, which cannot be read as {wanted}")
    return found


def _time_column(connection: Connection, table: sa.Table, source: SourceConfig) -> Any:
    """The source's time column as selected: raw text on SQLite (it stores timestamps as text, in
    whatever form they were written, `Z` and offsets included), so one parser reads them all."""
    column = table.c[source.time]
    return sa.type_coerce(column, sa.String()) if connection.dialect.name == "sqlite" else column


def _bound_time(table: sa.Table, source: SourceConfig, value: Any) -> Any:
    """A naive-UTC bound as the time column compares it (aware UTC for a column with a time zone)."""
    stamp = pd.Timestamp(value)
    if getattr(table.c[source.time].type, "timezone", False):
        stamp = stamp.tz_localize("UTC")
    return stamp.to_pydatetime()


def _newer_than(connection: Connection, table: sa.Table, source: SourceConfig, since: Any) -> Any:
    """A condition keeping (at least) the rows after `since`; the caller filters exactly once parsed.
    A text time column (any column on SQLite, which stores times as text) cannot be compared with a
    timestamp: PostgreSQL refuses it, and text order is not time order once offsets are written
    (`2024-01-02 22:00-02:00` is after `2024-01-02 23:00` UTC). The text is compared, byte by byte,
    with `since` minus 14 hours (no local time is further behind UTC) as 'YYYY-MM-DD HH:MM:SS': a 'T'
    sorts after the space, an unpadded field after the padded one it could exceed, and a date alone
    before its own day's times, which it precedes; each of these only reads more."""
    column = table.c[source.time]
    if connection.dialect.name == "sqlite" or isinstance(column.type, sa.String):
        floor = (pd.Timestamp(since) - pd.Timedelta(hours=14)).strftime("%Y-%m-%d %H:%M:%S")
        text = sa.type_coerce(column, sa.String())
        return (text.collate("C") if connection.dialect.name == "postgresql" else text) >= floor
    return column > _bound_time(table, source, since)


def _timestamps(values: pd.Series, source: SourceConfig, series_ids: pd.Series) -> pd.Series:
    """Source timestamps as naive UTC; a value that cannot be read is an InputError naming its row."""
    parsed = to_utc_naive(values if values.dtype == object or pd.api.types.is_datetime64_any_dtype(values) else values.astype(object))
    unreadable = parsed.isna().to_numpy()
    if unreadable.any():
        first = int(unreadable.argmax())
        raise InputError(
            f"source table {source.table!r}: {int(unreadable.sum())} rows have a {source.time} that cannot be read as a timestamp, "
            f"for example the row with {source.series} = {series_ids.iloc[first]!r} and {source.time} = {values.iloc[first]!r}; "
            "fix or delete them in the source (ISO 8601 text or a timestamp type; no time zone means UTC)"
        )
    return parsed


def records(result: Any, columns: list[str]) -> pd.DataFrame:
    """A result's rows as a frame, from the driver's plain tuples (a frame built from SQLAlchemy
    Row objects probes each one for keys first: seconds per million rows). The callers convert
    every column themselves, so no result processing is skipped that they need."""
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    return pd.DataFrame.from_records(rows, columns=columns, coerce_float=False) if rows else pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def read_observations(connection: Connection, source: SourceConfig, since: Any = None, series: Sequence[Any] | None = None) -> pd.DataFrame:
    """Observations (of the `series` keys as the source stores them, None for rows without a series
    id, when given) in long format: series_id (str), ts (naive UTC), value, features. With `since`,
    every row newer than it, and on a text time column (any on SQLite) also those of up to 14 hours
    before it or in a looser text form (see `_newer_than`): the caller cuts exactly."""
    table = check_source(connection, source)
    selected = [
        table.c[source.series].label("series_id"),
        _time_column(connection, table, source).label("ts"),
        table.c[source.target].label("value"),
    ] + [table.c[name].label(name) for name in source.columns]
    query = sa.select(*selected).order_by(table.c[source.series], table.c[source.time])
    if since is not None:
        query = query.where(_newer_than(connection, table, source, since))
    if series is not None:
        keys = [key for key in series if key is not None]
        chosen = table.c[source.series].in_(keys)
        query = query.where(sa.or_(chosen, table.c[source.series].is_(None)) if len(keys) < len(series) else chosen)
    names = ["series_id", "ts", "value", *source.columns]

    if connection.dialect.name == "postgresql" and adbc_available():
        frame = copy_records(connection, query, names, numeric=names[2:])
    else:
        frame = records(connection.execute(query), names)
    frame["series_id"] = frame["series_id"].astype(str)
    frame["ts"] = _timestamps(frame["ts"], source, frame["series_id"]).astype("datetime64[us]")
    for column in ["value", *source.columns]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def source_summary(connection: Connection, source: SourceConfig) -> pd.DataFrame:
    """One row per series in the source: key (as the source stores it), series_id (str), rows,
    first and last (naive UTC) and total (sum of the target):
    `SELECT series, count(*), min(ts), max(ts), sum(value) GROUP BY series`."""
    table = check_source(connection, source)
    time_column = _time_column(connection, table, source)
    query = sa.select(
        table.c[source.series], sa.func.count(), sa.func.min(time_column), sa.func.max(time_column),
        sa.func.sum(table.c[source.target]) if isinstance(table.c[source.target].type, (sa.Numeric, sa.Float, sa.Integer)) else sa.null(),
    ).group_by(table.c[source.series])
    frame = records(connection.execute(query), ["key", "rows", "first", "last", "total"])
    frame["total"] = pd.to_numeric(frame["total"], errors="coerce").astype("float64")
    frame["series_id"] = frame["key"].astype(str)
    # On SQLite min/max compare text, not instants; they only signal a change, so that is enough.
    frame["first"] = _timestamps(frame["first"], source, frame["series_id"])
    frame["last"] = _timestamps(frame["last"], source, frame["series_id"])
    frame["rows"] = frame["rows"].astype("int64")
    return frame[["key", "series_id", "rows", "first", "last", "total"]]
