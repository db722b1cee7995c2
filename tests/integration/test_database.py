"""Idempotent forecast writes: the bulk path (COPY on PostgreSQL) and the plain path give the same table."""

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting.config.credentials import masked_url
from forecasting.sources.database import create_db_engine
from forecasting.sources.schema import migrate
from forecasting.sources.tables import FORECAST_KEY
from forecasting.sources.upserts import frame_to_rows, upsert, upsert_frame


def forecast_frame(n_series=50, horizon=6, shift=0.0):
    origin = pd.Timestamp("2025-12-01")
    rows = []
    for index in range(n_series):
        for step in range(1, horizon + 1):
            rows.append(
                {
                    "model_name": "m", "model_version": 1, "series_id": f"S{index:03d}", "forecast_origin": origin,
                    "target_ts": origin + pd.DateOffset(months=step), "step": step, "yhat": index + step / 10 + shift,
                    "yhat_lower_80": np.nan if step == 1 else index, "yhat_upper_80": index + 1.0,
                    "yhat_lower_95": index - 1.0, "yhat_upper_95": index + 2.0, "run_id": f"run-{shift}", "created_at": pd.Timestamp("2026-01-01"),
                }
            )
    return pd.DataFrame(rows)


def read(engine):
    with engine.connect() as connection:
        frame = pd.read_sql(sa.text("SELECT * FROM forecasts ORDER BY series_id, target_ts"), connection)
    return frame.assign(forecast_origin=pd.to_datetime(frame.forecast_origin), target_ts=pd.to_datetime(frame.target_ts))


def test_bulk_upsert_is_idempotent_and_matches_the_plain_path(database_url):
    engine = create_db_engine(database_url)
    migrate(engine)
    with engine.begin() as connection:
        table = sa.Table("forecasts", sa.MetaData(), autoload_with=connection)
        assert upsert_frame(connection, table, forecast_frame(), FORECAST_KEY) == 300
    with engine.begin() as connection:
        upsert_frame(connection, table, forecast_frame(shift=1.0), FORECAST_KEY)
    bulk = read(engine)
    assert len(bulk) == 300 and set(bulk.run_id) == {"run-1.0"}
    assert bulk.yhat_lower_80.isna().sum() == 50
    with engine.begin() as connection:
        connection.execute(sa.delete(table))
        upsert(connection, table, frame_to_rows(forecast_frame(shift=1.0)), FORECAST_KEY)
    pd.testing.assert_frame_equal(bulk, read(engine), check_dtype=False)


def test_a_failed_bulk_write_leaves_the_table_as_it_was(database_url):
    engine = create_db_engine(database_url)
    migrate(engine)
    with engine.begin() as connection:
        table = sa.Table("forecasts", sa.MetaData(), autoload_with=connection)
        upsert_frame(connection, table, forecast_frame(), FORECAST_KEY)
    broken = forecast_frame(shift=2.0)
    broken.loc[len(broken) - 1, "yhat"] = None  # yhat is NOT NULL: the write fails on the last row
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as connection:
            upsert_frame(connection, table, broken, FORECAST_KEY)
    stored = read(engine)
    assert len(stored) == 300 and set(stored.run_id) == {"run-0.0"}


def test_masked_url_hides_the_password():
    assert masked_url("postgresql+psycopg://job:s3cret@db:5432/x") == "postgresql+psycopg://job:***@db:5432/x"
