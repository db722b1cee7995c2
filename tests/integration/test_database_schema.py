"""`database.schema` (PostgreSQL): the job's tables, views and Alembic's version table in their own
schema; schema-qualified source tables and views as the source."""

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting import steps
from forecasting.cli.main import main
from forecasting.config.settings import load_settings, parse_settings
from forecasting.sources.database import create_db_engine
from forecasting.errors import ConfigError
from forecasting.sources.schema import head_revision
from tests.support.data import synthetic_frame, write_config
from tests.support.postgres_server import create_database

JOB_TABLES = {
    "observations", "forecasts", "model_versions", "model_events", "tuning_records", "model_aliases", "runs",
    "ingestion_state", "backtests", "quarantine", "alembic_version", "forecast_errors",
}
JOB_VIEWS = {"forecast_latest", "forecast_vs_actual", "accuracy_by_version_step", "accuracy_by_period", "anomalies"}
SOURCE = {"table": "analytics.sales", "series": "store", "time": "day", "target": "amount", "frequency": "MS"}


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    """Write a config with `database.schema = "forecasting_job"` for the given database and source."""
    for name in ("FORECASTING_DATABASE_URL", "FORECASTING_STORAGE_ROOT", "FORECASTING_CONFIG"):
        monkeypatch.delenv(name, raising=False)

    def write(url, source=None, schema="forecasting_job"):
        path = write_config(tmp_path, url, source=source)
        lines = path.read_text().splitlines()
        lines.insert(2, f'schema = "{schema}"')
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    return write


def relations(engine, schema):
    inspector = sa.inspect(engine)
    return set(inspector.get_table_names(schema=schema)), set(inspector.get_view_names(schema=schema))


@pytest.mark.postgres
def test_init_puts_the_job_tables_into_their_schema_and_nothing_into_public(postgres_admin_url, config_file, capsys):
    url = create_database(postgres_admin_url)
    path = config_file(url)
    assert main(["--config", path, "init"]) == 0
    assert main(["--config", path, "init"]) == 0  # repeatable
    assert "already current" in capsys.readouterr().out.splitlines()[-2]
    engine = create_db_engine(url)
    tables, views = relations(engine, "forecasting_job")
    assert JOB_TABLES <= tables and views == JOB_VIEWS
    assert relations(engine, "public") == (set(), set())
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM forecasting_job.alembic_version")).scalar() == head_revision()


@pytest.mark.postgres
def test_a_source_in_another_schema_gets_no_empty_observations_table_beside_the_job(postgres_admin_url, config_file):
    """Issue 27.8c: `init` creates the default source table only where it is the configured source."""
    url = create_database(postgres_admin_url)
    engine = create_db_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE SCHEMA analytics"))
        connection.execute(sa.text("CREATE TABLE analytics.sales (store TEXT, day TIMESTAMP, amount DOUBLE PRECISION)"))
    assert main(["--config", config_file(url, source=SOURCE), "init"]) == 0
    tables, views = relations(engine, "forecasting_job")
    assert JOB_TABLES - {"observations"} <= tables and "observations" not in tables and views == JOB_VIEWS
    assert relations(engine, "analytics")[0] == {"sales"}


def sales_frame():
    frame = synthetic_frame(n_series=8, length=48)
    return frame.rename(columns={"series_id": "store", "ts": "day", "value": "amount"})


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["table", "view"])
def test_a_run_reads_a_schema_qualified_source_table_or_view(postgres_admin_url, config_file, kind):
    url = create_database(postgres_admin_url)
    admin = create_db_engine(url)
    with admin.begin() as connection:
        connection.execute(sa.text("CREATE SCHEMA analytics"))
        connection.execute(sa.text("CREATE TABLE analytics.sales (store TEXT, day TIMESTAMP, amount DOUBLE PRECISION, note TEXT)"))
        # A view over it, the way a user might expose only clean rows.
        connection.execute(sa.text("CREATE VIEW analytics.clean_sales AS SELECT store, day, amount FROM analytics.sales WHERE amount IS NOT NULL"))
    sales_frame().to_sql("sales", admin, schema="analytics", if_exists="append", index=False)
    source = dict(SOURCE, table="analytics.sales" if kind == "table" else "analytics.clean_sales")
    path = config_file(url, source=source)
    assert main(["--config", path, "init"]) == 0
    settings = load_settings(path)

    run_id = steps.start_run(settings, "tiny", "retrain")
    pulled = steps.pull_step(settings, run_id)
    assert pulled.rows_pulled == 8 * 48 and pulled.new_series == 8
    decision = steps.decide_mode(settings, "tiny", "retrain")
    trained = steps.train_step(settings, "tiny", run_id, mode=decision.mode)
    staged = steps.forecast_step(settings, "tiny", run_id)
    rows_sql = steps.write_sql_step(settings, staged.staged)
    rows_parquet = steps.write_parquet_step(settings, staged.staged)
    summary = steps.summarise(settings, "tiny", run_id, decision, staged, steps.Writes(rows_sql, rows_parquet), trained, pulled)
    steps.finish_run(settings, run_id, summary.as_dict(), staged.staged)
    steps.commit_pull(settings, run_id, pulled)
    assert rows_sql == rows_parquet == 8 * 6 and trained.version == 1

    with admin.connect() as connection:
        latest = pd.read_sql(sa.text("SELECT * FROM forecasting_job.forecast_latest"), connection)
        status = connection.execute(sa.text("SELECT status FROM forecasting_job.runs")).scalar()
        watermark = connection.execute(sa.text("SELECT source, watermark FROM forecasting_job.ingestion_state")).one()
    assert len(latest) == 48 and np.isfinite(latest.yhat).all() and status == "completed"
    assert watermark[0] == source["table"] and str(watermark[1]).startswith("2023-12-01")
    assert relations(admin, "public") == (set(), set())
    # A second pull finds nothing new in the qualified source.
    assert steps.pull_step(settings, "again").rows_new == 0


@pytest.mark.postgres
def test_a_missing_source_schema_or_table_is_named(postgres_admin_url, config_file):
    url = create_database(postgres_admin_url)
    path = config_file(url, source=dict(SOURCE, table="nowhere.sales"))
    assert main(["--config", path, "init"]) == 0
    settings = load_settings(path)
    with pytest.raises(ConfigError, match="source.table: schema 'nowhere' of 'nowhere.sales' not found"):
        steps.start_run(settings, "tiny", "retrain")
    path = config_file(url, source=dict(SOURCE, table="forecasting_job.sales"))
    with pytest.raises(ConfigError, match="source.table: table 'forecasting_job.sales' not found in schema 'forecasting_job' \\(tables and views: .*forecast_latest"):
        steps.start_run(load_settings(path), "tiny", "retrain")


def test_sqlite_refuses_a_schema_and_table_names_stay_checked(tmp_path):
    with pytest.raises(ConfigError, match="database: schema 'job' is set, but SQLite has no schemas: leave database.schema unset"):
        parse_settings({"database": {"url": "sqlite:///x.db", "schema": "job"}}, base=tmp_path)
    with pytest.raises(ConfigError, match="database.schema: .* is not a plain SQL identifier"):
        parse_settings({"database": {"url": "postgresql+psycopg://u@h/db", "schema": "job; DROP TABLE runs"}}, base=tmp_path)
    for bad in ("a.b.c", "analytics.sales;", "analytics.", '"sales"'):
        with pytest.raises(ConfigError, match=r"source.table: .* is not a plain SQL identifier .*optionally schema-qualified"):
            parse_settings({"source": {"table": bad}}, base=tmp_path)
    source = parse_settings({"source": {"table": "analytics.sales"}}, base=tmp_path).source
    assert (source.table_schema, source.table_name) == ("analytics", "sales")
    assert parse_settings({"database": {"url": "postgresql+psycopg://u@h/db", "schema": "job"}}).database.schema_name == "job"


def test_sqlite_reads_a_schema_qualified_source(tmp_path, config_file):
    """SQLite's own schema names (`main`, attached databases) qualify a source table too."""
    from forecasting.sources.loading import load_observations
    from forecasting.config.settings import SourceConfig
    from forecasting.sources.schema import migrate
    from forecasting.sources.database import read_observations

    engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame(n_series=2, length=5))
    with engine.connect() as connection:
        frame = read_observations(connection, SourceConfig(table="main.observations"))
    assert len(frame) == 10 and set(frame.series_id) == {"S00", "S01"}
