"""Create or migrate the schema (Alembic migrations under sql/) and keep the views current."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.resources import as_file, files

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from forecasting.config.settings import SourceConfig
from forecasting.sources.database import check_source, table_columns
from forecasting.errors import ConfigError
from forecasting.sources.tables import interval_columns

DEFAULT_SOURCE_TABLE = "observations"  # created by the first migration when it is the configured source
VIEWS = ("forecast_latest", "forecast_vs_actual", "accuracy_by_version_step", "accuracy_by_period", "anomalies")


def alembic_config(connection: Connection, script_location: str, schema: str | None = None, source: SourceConfig | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["connection"] = connection
    config.attributes["version_table_schema"] = schema
    config.attributes["create_default_source"] = default_source_wanted(source, schema)
    return config


def default_source_wanted(source: SourceConfig | None, schema: str | None = None) -> bool:
    """Whether the first migration creates the default source table `observations` in the job's schema:
    only when the configured source is that table (or no source is given). A source elsewhere
    (`analytics.sales`, or another name) gets no empty `observations` beside the job's tables; a
    database migrated before keeps the one it has (the job never reads it: drop it when empty)."""
    if source is None:
        return True
    return source.table_name == DEFAULT_SOURCE_TABLE and source.table_schema in (None, schema)


def head_revision() -> str:
    """The newest migration this code knows."""
    with as_file(files("forecasting.sql").joinpath("migrations")) as location:
        config = Config()
        config.set_main_option("script_location", str(location))
        return ScriptDirectory.from_config(config).get_current_head()


def current_revision(engine: Engine, schema: str | None = None) -> str | None:
    """The migration the database is at (None for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection, opts={"version_table_schema": schema}).get_current_revision()


def migrate(
    engine: Engine, interval_levels: Iterable[int] = (80, 95), schema: str | None = None, source: SourceConfig | None = None
) -> dict[str, object]:
    """Bring the schema to the newest migration and add interval columns for configured levels.

    With a PostgreSQL `schema` (`database.schema`; the engine's search path is that schema), the
    schema is created when missing, and the tables, views and Alembic's version table go into it.
    A `source` table that exists before the first migration (the user's own, even under the default
    name `observations`) is used as it is: its columns are checked first (a ConfigError naming the
    table and its columns), and the default table is not created over it.
    Idempotent: on an up-to-date database it changes nothing but re-creating the views.
    """
    if schema is not None:
        with engine.begin() as connection:
            # Checked first: PostgreSQL checks the CREATE privilege even for IF NOT EXISTS, and a
            # least-privilege job user may own a schema its DBA made without being allowed to create one.
            if schema not in sa.inspect(connection).get_schema_names():
                connection.execute(sa.schema.CreateSchema(schema))
    before = current_revision(engine, schema)
    if before is None and source is not None:
        _check_existing_source(engine, source)
    with as_file(files("forecasting.sql").joinpath("migrations")) as location:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection, str(location), schema, source), "head")
    if source is not None and default_source_wanted(source, schema):
        _ensure_default_source(engine)
    added = ensure_interval_columns(engine, interval_levels)
    return {"from_revision": before, "to_revision": current_revision(engine, schema), "added_columns": added}


def _ensure_default_source(engine: Engine) -> None:
    """The default source table, for a database first migrated while the source was elsewhere and
    now configured to read `observations` (the columns of migration 0001's table)."""
    with engine.begin() as connection:
        if not sa.inspect(connection).has_table(DEFAULT_SOURCE_TABLE):
            sa.Table(
                DEFAULT_SOURCE_TABLE, sa.MetaData(),
                sa.Column("series_id", sa.String(200), primary_key=True),
                sa.Column("ts", sa.DateTime(), primary_key=True),
                sa.Column("value", sa.Float(), nullable=True),
            ).create(connection)


def _check_existing_source(engine: Engine, source: SourceConfig) -> None:
    """A source table already there before the job's first migration must have the configured columns."""
    with engine.connect() as connection:
        if table_columns(connection, source.table) is None:
            return  # the default one is created by the migration; another is checked by every pull
        try:
            check_source(connection, source)
        except ConfigError as error:
            raise ConfigError(
                f"table {source.table!r} already exists and init uses it as the source table as it is, but {error}; "
                "set source.series/time/target to its columns, or point source.table at another table"
            ) from None


def ensure_interval_columns(engine: Engine, levels: Iterable[int]) -> list[str]:
    """Add `yhat_lower_<L>`/`yhat_upper_<L>` columns for levels not yet in `forecasts`."""
    added: list[str] = []
    with engine.begin() as connection:
        existing = table_columns(connection, "forecasts") or {}
        for level in sorted(set(levels)):
            for name in interval_columns(level):
                if name not in existing:
                    connection.execute(sa.text(f'ALTER TABLE forecasts ADD COLUMN "{name}" FLOAT'))
                    added.append(name)
        if added:
            # PostgreSQL expands `f.*` when a view is created: re-create it to show the new columns.
            _recreate_views(connection)
    return added


def _recreate_views(connection: Connection) -> None:
    for view in VIEWS:
        connection.execute(sa.text(f"DROP VIEW IF EXISTS {view}"))
        connection.execute(sa.text(files("forecasting.sql").joinpath(f"views/{view}.sql").read_text()))
