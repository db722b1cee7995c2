"""Cold start through the steps: a new series shorter than the lookback is forecast, its method recorded in
`forecasts` and the Parquet dataset and scored live like the rest; migration 0011 fills the method of rows
written before; Parquet partitions written before the column still read."""

from importlib.resources import as_file, files

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command

from forecasting import steps
from forecasting.publishing.forecast_dataset import read_forecasts, write_forecasts
from forecasting.sources.database import create_db_engine
from forecasting.sources.loading import load_observations
from forecasting.sources.schema import alembic_config, head_revision, migrate
from forecasting.sources.tables import FORECAST_KEY
from forecasting.sources.upserts import upsert_frame
from forecasting.steps.scoring import score_forecasts
from forecasting.steps.summaries import format_summary
from tests.support.data import pull, synthetic_frame
from tests.support.scoring import ORIGIN_INDEX, forecast_frame

NEW_MONTHS = 5  # fewer than the tiny model's lookback of 12


@pytest.mark.slow
def test_a_new_series_is_forecast_recorded_with_its_method_and_scored_live(database_url, settings_for):
    settings, _ = settings_for(database_url)
    engine = create_db_engine(database_url)
    migrate(engine)
    full = synthetic_frame(n_series=6, length=40, seed=2)
    new = full[full.series_id == "S05"].assign(series_id="NEW").iloc[-(NEW_MONTHS + 6):]  # 5 months, then 6 to come
    months = full.groupby("series_id").cumcount()
    load_observations(engine, settings.source, pd.concat([full[months < 34], new.iloc[:NEW_MONTHS]], ignore_index=True))
    pull(settings)
    trained = steps.train_step(settings, "tiny", "r1", mode="retrain")
    assert trained.series_too_short == 1  # the new series: no window to train on
    forecast = steps.forecast_step(settings, "tiny", "r1")
    assert forecast.series_skipped == 0 and forecast.series_short_history == 1
    assert forecast.methods == {"network": 6, "short_history": 1}
    assert "series per method: network 6, short_history 1" in format_summary({**forecast.as_dict(), "run_id": "r1", "model": "tiny",
        "reason": "retrain", "champion_version": 1, "rows_sql": 0, "rows_parquet": 0, "database": "db", "parquet": "p"})
    steps.write_sql_step(settings, forecast.staged)
    steps.write_parquet_step(settings, forecast.staged)

    with engine.connect() as connection:
        sql = pd.read_sql(sa.text("SELECT series_id, method, yhat_lower_95, yhat_upper_95 FROM forecasts"), connection)
    assert set(sql.loc[sql.series_id == "NEW", "method"]) == {"short_history"} and (sql.series_id == "NEW").sum() == 6
    assert set(sql.loc[sql.series_id != "NEW", "method"]) == {"network"} and sql.notna().all().all()
    parquet = read_forecasts(settings.storage_root, "tiny", settings.forecasts_root)
    assert set(parquet.loc[parquet.series_id == "NEW", "method"]) == {"short_history"}

    load_observations(engine, settings.source, pd.concat([full, new], ignore_index=True))  # the actuals arrive
    pull(settings)
    assert score_forecasts(engine, settings, "tiny", "r2").scored == 7 * 6
    with engine.connect() as connection:
        scored = pd.read_sql(sa.text("SELECT series_id, method, abs_error, naive_abs_error, inside_95 FROM forecast_vs_actual WHERE series_id = 'NEW'"), connection)
    assert len(scored) == 6 and set(scored.method) == {"short_history"}
    assert np.isfinite(scored[["abs_error", "naive_abs_error"]].to_numpy(dtype="float64")).all() and scored.inside_95.notna().all()


def test_migration_0011_fills_the_method_of_rows_written_before(database_url, settings_for):
    settings_for(database_url)
    engine = create_db_engine(database_url)
    with engine.begin() as connection, as_file(files("forecasting.sql").joinpath("migrations")) as location:
        command.upgrade(alembic_config(connection, str(location)), "0010")
    full = synthetic_frame(n_series=2, length=36, seed=3)
    rows = forecast_frame(full, ORIGIN_INDEX)
    flat = rows.series_id == "S01"  # a constant series: zero-width bands at its value
    rows.loc[flat, ["yhat", "yhat_lower_80", "yhat_upper_80", "yhat_lower_95", "yhat_upper_95"]] = 7.0
    with engine.begin() as connection:
        upsert_frame(connection, sa.Table("forecasts", sa.MetaData(), autoload_with=connection), rows, key=FORECAST_KEY)
    assert migrate(engine)["to_revision"] == head_revision() == "0011"
    migrate(engine)  # idempotent
    with engine.connect() as connection:
        stored = pd.read_sql(sa.text("SELECT series_id, method FROM forecast_latest"), connection)
        listed = pd.read_sql(sa.text("SELECT method FROM forecast_vs_actual"), connection)
        anomalies = pd.read_sql(sa.text("SELECT method FROM anomalies"), connection)
    assert set(stored.loc[stored.series_id == "S01", "method"]) == {"constant"}
    assert set(stored.loc[stored.series_id == "S00", "method"]) == {"network"}
    assert len(listed) == len(rows) and list(anomalies.columns) == ["method"]
    with engine.begin() as connection, as_file(files("forecasting.sql").joinpath("migrations")) as location:
        command.downgrade(alembic_config(connection, str(location)), "0010")
    with engine.connect() as connection:
        assert "method" not in {column["name"] for column in sa.inspect(connection).get_columns("forecasts")}
        assert connection.execute(sa.text("SELECT COUNT(*) FROM forecast_vs_actual")).scalar() == len(rows)
    assert migrate(engine)["to_revision"] == "0011"


def test_parquet_partitions_written_before_the_method_column_still_read(tmp_path):
    full = synthetic_frame(n_series=2, length=40, seed=3)
    old = forecast_frame(full, ORIGIN_INDEX)  # no method column, as written before it
    old.loc[old.series_id == "S01", ["yhat", "yhat_lower_95", "yhat_upper_95"]] = 3.0
    write_forecasts(tmp_path, old)
    newer = forecast_frame(full, ORIGIN_INDEX + 1).assign(method="short_history")
    write_forecasts(tmp_path, newer)
    read = read_forecasts(tmp_path, "tiny")
    assert len(read) == len(old) + len(newer)
    by_origin = read.groupby([read.forecast_origin, read.series_id])["method"].agg(set)
    origin, later = sorted(read.forecast_origin.unique())
    assert by_origin[(origin, "S00")] == {"network"} and by_origin[(origin, "S01")] == {"constant"}
    assert by_origin[(later, "S00")] == {"short_history"}
    # New rows written into an old partition: the rows it keeps get their method too.
    write_forecasts(tmp_path, old[old.series_id == "S00"].assign(method="network", yhat=1.0))
    again = read_forecasts(tmp_path, "tiny")
    assert again["method"].notna().all() and len(again) == len(read)
