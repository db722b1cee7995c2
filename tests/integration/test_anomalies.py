"""Anomaly flags on arriving actuals: the actuals outside the 95% interval of the newest forecast made for
their period are flagged in forecast_errors with how far out they are, listed by the view `anomalies`, the run
summary and the report, and left out of training with `ignore_anomalies` (SQLite and PostgreSQL)."""

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting.sources.database import create_db_engine
from forecasting.sources.loading import load_observations
from forecasting.sources.schema import head_revision, migrate
from forecasting.sources.tables import FORECAST_KEY
from forecasting.sources.upserts import upsert_frame
from forecasting.steps.data import prepare_data
from forecasting.steps.scoring import score_forecasts
from forecasting.steps.summaries import accuracy_line
from tests.support.data import pull, synthetic_frame
from tests.support.scoring import ORIGIN_INDEX, forecast_frame


def store_forecasts(engine, frame: pd.DataFrame) -> None:
    with engine.begin() as connection:
        upsert_frame(connection, sa.Table("forecasts", sa.MetaData(), autoload_with=connection), frame, key=FORECAST_KEY)


def spiked(full: pd.DataFrame, months: pd.Series) -> pd.DataFrame:
    """S01's month 31 50 above the truth (its only forecast, step 1 from month 30, is truth + 5 +- 20: 25 beyond
    the upper bound, 1.25 half-widths); S02's month 32 45 below it (newest forecast: step 1 from month 31,
    truth + 5 +- 20, 30 below the lower bound, 1.5 half-widths; the older step-2 one is truth - 5 +- 20)."""
    frame = full.copy()
    frame.loc[(frame.series_id == "S01") & (months == ORIGIN_INDEX + 1), "value"] += 50.0
    frame.loc[(frame.series_id == "S02") & (months == ORIGIN_INDEX + 2), "value"] -= 45.0
    return frame


def scored_with_spikes(scenario):
    settings, engine, full, months, forecasts = scenario
    newer = forecast_frame(full, ORIGIN_INDEX + 1, horizon=4, version=2)
    store_forecasts(engine, newer)
    load_observations(engine, settings.source, spiked(full, months)[months <= ORIGIN_INDEX + 2])
    pull(settings)
    return score_forecasts(engine, settings, "tiny", "r1"), pd.concat([forecasts, newer], ignore_index=True)


def test_exactly_the_actuals_outside_the_newest_forecasts_95_band_are_flagged_with_their_distance(scenario):
    settings, engine, full, months, _ = scenario
    result, forecasts = scored_with_spikes(scenario)
    assert (result.scored, result.anomalies) == (9, 2)
    with engine.connect() as connection:
        rows = pd.read_sql(sa.text("SELECT * FROM forecast_errors"), connection)
    for column in ("forecast_origin", "target_ts"):
        rows[column] = pd.to_datetime(rows[column])
    rows = rows.merge(forecasts[[*FORECAST_KEY, "yhat_lower_95", "yhat_upper_95"]], on=FORECAST_KEY)
    lower, upper, actual = rows.yhat_lower_95, rows.yhat_upper_95, rows.actual
    by_hand = np.maximum(np.maximum(actual - upper, lower - actual), 0.0) / ((upper - lower) / 2.0)
    np.testing.assert_allclose(rows.interval_distance.astype(float), by_hand, rtol=1e-9)
    newest = rows.forecast_origin == rows.groupby(["series_id", "target_ts"]).forecast_origin.transform("max")
    flags = rows.anomaly.map(lambda value: None if value is None or pd.isna(value) else bool(value))
    assert flags[~newest].isna().all()  # older origins' rows are not judged
    flagged = rows[flags.eq(True)].sort_values("series_id")
    assert list(flagged.series_id) == ["S01", "S02"]
    assert list(flagged.interval_distance) == pytest.approx([1.25, 1.5])
    assert flags[newest].eq(False).sum() == 4  # the other newest forecasts held their actual
    older_s03 = rows[(rows.series_id == "S02") & ~newest & (rows.target_ts == flagged.target_ts.iloc[1])]
    assert older_s03.interval_distance.iloc[0] == pytest.approx(1.0)  # outside its own band too, but not the one judged

    again = score_forecasts(engine, settings, "tiny", "r2")  # nothing new: nothing listed again
    assert (again.scored, again.anomalies, again.anomaly_examples) == (0, 0, [])


def test_the_view_and_the_summary_line_list_the_anomalies_newest_first(scenario):
    settings, engine, full, months, _ = scenario
    result, _ = scored_with_spikes(scenario)
    with engine.connect() as connection:
        view = pd.read_sql(sa.text("SELECT * FROM anomalies ORDER BY target_ts"), connection)
    assert list(view.series_id) == ["S01", "S02"]
    assert list(view.direction) == ["above", "below"]
    assert list(view.model_version) == [1, 2] and list(view.step) == [1, 1]
    assert list(view.interval_distance) == pytest.approx([1.25, 1.5])
    assert list(view.actual) == pytest.approx(list(view.yhat + [45.0, -50.0]))
    assert list(view.upper_95 - view.lower_95) == pytest.approx([40.0, 40.0])

    assert [example["series_id"] for example in result.anomaly_examples] == ["S02", "S01"]
    line = accuracy_line({"scoring": result.as_dict()})
    assert "anomalies: 2 arriving actuals outside the 95% interval of the newest forecast (view anomalies): S02 " in line
    assert "below 95% [" in line and "by 1.50 half-widths (v2, origin " in line and "S01 " in line and "by 1.25 half-widths (v1" in line

    from forecasting.report.render import build_report

    html = build_report(engine, settings, "tiny").html
    assert "<h2>Anomalies</h2>" in html and html.count("half-widths out") == 1 and ">S02</td>" in html


def test_ignore_anomalies_leaves_the_flagged_actuals_out_of_the_prepared_training_data(scenario):
    settings, engine, full, months, _ = scenario
    scored_with_spikes(scenario)
    kept = prepare_data(engine, settings)
    left = prepare_data(engine, settings, anomalies_of="tiny")
    assert (kept.anomalies_left_out, left.anomalies_left_out) == (0, 2)
    for series_id, month in (("S01", ORIGIN_INDEX + 1), ("S02", ORIGIN_INDEX + 2)):
        assert np.isfinite(kept.arrays.values[series_id][month, 0])
        assert np.isnan(left.arrays.values[series_id][month, 0])
        assert len(left.arrays.timestamps[series_id]) == len(kept.arrays.timestamps[series_id])
    unflagged = np.isfinite(left.arrays.values["S00"][:, 0])
    assert unflagged.all()
    np.testing.assert_array_equal(np.isnan(left.arrays.values["S01"][:, 0]), np.arange(ORIGIN_INDEX + 3) == ORIGIN_INDEX + 1)


@pytest.mark.slow
def test_a_retrain_with_ignore_anomalies_says_how_many_actuals_it_left_out(scenario, database_url, settings_for):
    from forecasting.steps import ForecastSummary, ModeDecision, RunSummary, Writes, format_summary, train_step

    scored_with_spikes(scenario)
    settings, _ = settings_for(database_url, model={"ignore_anomalies": True, "lookback": 6, "horizon": 3, "epochs": 2})
    trained = train_step(settings, "tiny", "r2", mode="retrain")
    assert trained.anomalies_left_out == 2
    forecast = ForecastSummary(
        staged="s.parquet", version=trained.version, series_read=3, rows_read=96, series_forecast=3, series_skipped=0, skipped_examples={},
        series_constant=0, constant_examples={}, series_stale=0, stale_examples={}, origins=[], frequency="MS", horizon=3,
    )
    summary = RunSummary("r2", "tiny", ModeDecision("retrain", "retrain: requested"), forecast, Writes(9, 9), trained=trained)
    text = format_summary(summary.as_dict())
    assert "anomalies left out of training: 2 flagged actuals read as missing (ignore_anomalies)" in text


def test_migration_fills_the_flags_of_rows_scored_before_it(database_url, settings_for):
    from importlib.resources import as_file, files

    from alembic import command

    from forecasting.sources.schema import alembic_config

    settings, _ = settings_for(database_url)
    engine = create_db_engine(database_url)
    with engine.begin() as connection, as_file(files("forecasting.sql").joinpath("migrations")) as location:
        command.upgrade(alembic_config(connection, str(location)), "0009")
    full = synthetic_frame(n_series=3, length=36, seed=3)
    months = full.groupby("series_id").cumcount()
    load_observations(engine, settings.source, spiked(full, months)[months <= ORIGIN_INDEX + 2])
    pull(settings)
    forecasts = pd.concat([forecast_frame(full, ORIGIN_INDEX), forecast_frame(full, ORIGIN_INDEX + 1, horizon=4, version=2)], ignore_index=True)
    store_forecasts(engine, forecasts)
    # Rows as 0009's scoring wrote them (the columns that matter here), written the way scoring writes them.
    observed = spiked(full, months)[months <= ORIGIN_INDEX + 2].rename(columns={"ts": "target_ts", "value": "actual"})
    old = forecasts.merge(observed[["series_id", "target_ts", "actual"]], on=["series_id", "target_ts"])
    old = old.assign(
        error=old.actual - old.yhat, abs_error=(old.actual - old.yhat).abs(), smape_term=0.0, run_id="old", scored_at=pd.Timestamp("2026-02-01"),
        inside_95=((old.yhat_lower_95 <= old.actual) & (old.actual <= old.yhat_upper_95)).astype(object),
    ).drop(columns=["yhat_lower_80", "yhat_upper_80", "yhat_lower_95", "yhat_upper_95", "created_at"])
    with engine.begin() as connection:
        upsert_frame(connection, sa.Table("forecast_errors", sa.MetaData(), autoload_with=connection), old, key=FORECAST_KEY)
    assert migrate(engine)["to_revision"] == head_revision() == "0011"
    migrate(engine)  # init stays idempotent
    with engine.connect() as connection:
        rows = pd.read_sql(sa.text("SELECT series_id, interval_distance, anomaly FROM forecast_errors"), connection)
        view = pd.read_sql(sa.text("SELECT series_id, interval_distance, direction FROM anomalies ORDER BY target_ts"), connection)
    assert len(rows) == 9 and rows.interval_distance.notna().all()
    assert rows.anomaly.notna().sum() == 6  # the newest origin's row of each period
    assert list(view.series_id) == ["S01", "S02"] and list(view.interval_distance) == pytest.approx([1.25, 1.5])
    assert list(view.direction) == ["above", "below"]
    # A new scoring run leaves them as the migration filled them (nothing to re-score).
    assert score_forecasts(engine, settings, "tiny", "r1").scored == 0
