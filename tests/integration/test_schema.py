from datetime import datetime

import sqlalchemy as sa

from forecasting.sources.database import create_db_engine
from forecasting.sources.schema import head_revision, migrate

TABLES = {"observations", "forecasts", "model_versions", "model_aliases", "runs"}


def test_init_creates_schema_idempotently(database_url):
    engine = create_db_engine(database_url)
    first = migrate(engine, [80, 95])
    assert first["from_revision"] is None and first["to_revision"] == head_revision()
    second = migrate(engine, [80, 95])
    assert second["from_revision"] == second["to_revision"] == head_revision()
    assert second["added_columns"] == []
    inspector = sa.inspect(engine)
    assert TABLES <= set(inspector.get_table_names())
    assert "forecast_latest" in inspector.get_view_names()
    primary = inspector.get_pk_constraint("forecasts")["constrained_columns"]
    assert primary == ["model_name", "series_id", "forecast_origin", "target_ts"]


def test_new_interval_level_adds_columns_and_view_shows_them(database_url):
    engine = create_db_engine(database_url)
    migrate(engine, [80, 95])
    result = migrate(engine, [80, 90, 95])
    assert result["added_columns"] == ["yhat_lower_90", "yhat_upper_90"]
    view_columns = {column["name"] for column in sa.inspect(engine).get_columns("forecast_latest")}
    assert {"yhat_lower_90", "yhat_upper_90", "yhat_lower_80"} <= view_columns


def test_forecast_latest_shows_newest_origin_per_series(database_url):
    engine = create_db_engine(database_url)
    migrate(engine)
    rows = [
        {
            "model_name": "m", "model_version": 1, "series_id": "a",
            "forecast_origin": datetime(2024, month, 1), "target_ts": datetime(2024, month + step, 1),
            "step": step, "yhat": 1.0, "run_id": "r", "created_at": datetime(2024, 3, 1),
        }
        for month in (1, 2)
        for step in (1, 2)
    ]
    forecasts = sa.Table("forecasts", sa.MetaData(), autoload_with=engine)
    with engine.begin() as connection:
        connection.execute(sa.insert(forecasts), rows)
        latest = connection.execute(sa.text("SELECT forecast_origin, step FROM forecast_latest ORDER BY step")).fetchall()
    assert len(latest) == 2
    assert all(str(row[0]).startswith("2024-02-01") for row in latest)
