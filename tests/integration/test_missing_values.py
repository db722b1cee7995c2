"""One frame upsert for every writer, one rule for missing values: NaN (NumPy or Arrow), None, pd.NA and NaT are NULL."""

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from forecasting.history import ingestion
from forecasting.config.settings import SourceConfig
from forecasting.sources.database import create_db_engine, upsert_frame
from forecasting.sources.loading import load_observations
from forecasting.history.pull_result import PullResult
from forecasting.sources.schema import migrate
from forecasting.sources.tables import FORECAST_KEY


def arrow_floats(*values):
    """An Arrow-backed float column that keeps NaN apart from null (as a Parquet round trip can give)."""
    return pd.arrays.ArrowExtensionArray(pa.array(values, type=pa.float64(), from_pandas=False))


def nulls(engine, sql):
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(sql))]


def test_forecast_writes_store_every_missing_value_as_null(database_url):
    """The former `database.upsert_frame` path (forecasts, forecast_errors, pull state)."""
    engine = create_db_engine(database_url)
    migrate(engine)
    origin = pd.Timestamp("2024-01-01")
    frame = pd.DataFrame({
        "model_name": "m", "model_version": 1, "series_id": ["a", "b", "c"], "forecast_origin": origin,
        "target_ts": [origin + pd.DateOffset(months=1)] * 3, "step": 1, "yhat": [1.0, 2.0, 3.0],
        "yhat_lower_80": [np.nan, 1.0, np.nan], "yhat_upper_80": arrow_floats(float("nan"), 2.0, None),
        "yhat_lower_95": pd.array([pd.NA, 0.5, 0.5], dtype="Float64"), "yhat_upper_95": pd.Series([None, 3.0, None], dtype=object),
        "run_id": "r1", "created_at": origin,
    })
    with engine.begin() as connection:
        table = sa.Table("forecasts", sa.MetaData(), autoload_with=connection)
        assert upsert_frame(connection, table, frame, FORECAST_KEY) == 3
    assert nulls(engine, "SELECT series_id, yhat_lower_80 IS NULL, yhat_upper_80 IS NULL, yhat_lower_95 IS NULL, yhat_upper_95 IS NULL "
                         "FROM forecasts ORDER BY series_id") == [
        ("a", True, True, True, True), ("b", False, False, False, False), ("c", True, True, False, True)
    ]


def test_loaded_observations_store_every_missing_value_as_null(database_url):
    """The former `bulk.bulk_upsert` path (`forecasting load`)."""
    engine = create_db_engine(database_url)
    migrate(engine)
    frame = pd.DataFrame({
        "series_id": ["a", "b", "c"], "ts": pd.to_datetime(["2024-01-01"] * 3), "value": arrow_floats(float("nan"), 1.0, None)
    })
    load_observations(engine, SourceConfig(), frame)
    load_observations(engine, SourceConfig(), frame.assign(series_id=["d", "e", "f"], value=[np.nan, 2.0, np.nan]))
    assert nulls(engine, "SELECT series_id, value IS NULL FROM observations ORDER BY series_id") == [
        ("a", True), ("b", False), ("c", True), ("d", True), ("e", False), ("f", True)
    ]


def test_pull_state_with_columns_that_are_none_throughout_is_written(database_url, settings_for):
    """Object columns of None (no re-read window yet) go into numeric and time columns on both backends."""
    settings, _ = settings_for(database_url)
    engine = create_db_engine(database_url)
    migrate(engine)
    staged = pd.DataFrame({
        "series_id": ["a"], "source_rows": [3], "source_first": [pd.Timestamp("2024-01-01")], "source_last": [pd.Timestamp("2024-03-01")],
        "reread_from": [None], "rows_before": [None], "last_ts": [None], "source_sum": [6.0], "sum_before": [None], "gone": [False],
    })
    path = settings.storage_root / "state.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    staged.to_parquet(path)
    pulled = PullResult(
        full_refresh=True, refresh_reason="first pull", series_read_whole=1, series_read_window=0, series_unchanged=0, rows_pulled=3,
        rows_new=3, rows_revised=0, rows_removed=0, new_series=1, series_removed=0, removed_examples=(), series_in_store=1, quarantined=0,
        duplicates=0, series_set_aside=0, set_aside_examples={}, watermark=None, frequency="MS", columns={}, state_file=str(path),
        state_replace=True,
    )
    ingestion.commit(settings, engine, "r1", pulled)
    assert nulls(engine, "SELECT series_id, source_rows, reread_from IS NULL, rows_before IS NULL, sum_before IS NULL FROM ingestion_series") == [
        ("a", 3, True, True, True)
    ]
