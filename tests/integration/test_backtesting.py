"""Rolling-origin backtests: origins, cuts, scores next to baselines, the command and its table."""

import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting.model.backtesting import backtest, cut, rolling_origins
from forecasting.config.settings import ModelConfig
from forecasting.preparation.windows import to_series_arrays
from tests.support.data import TINY_MODEL, synthetic_frame
from tests.support.cli import assert_one_line_error, forecasting


def test_origins_step_back_from_the_latest_observation():
    arrays = to_series_arrays(synthetic_frame(n_series=2, length=48), [])
    origins = rolling_origins(arrays, "MS", horizon=6, windows=3, step=4)
    # latest 2023-12; last origin leaves 6 months of actuals; the others 4 months apart
    assert origins == [pd.Timestamp("2022-10-01"), pd.Timestamp("2023-02-01"), pd.Timestamp("2023-06-01")]


def test_cut_keeps_the_past_for_training_and_the_next_horizon_as_actuals():
    arrays = to_series_arrays(synthetic_frame(n_series=2, length=48), [])
    known, actuals = cut(arrays, pd.Timestamp("2023-06-01"), 6, "MS")
    assert all(index[-1] == pd.Timestamp("2023-06-01") for index in known.timestamps.values())
    assert len(actuals) == 12 and actuals["ts"].min() == pd.Timestamp("2023-07-01") and actuals["ts"].max() == pd.Timestamp("2023-12-01")


@pytest.mark.slow
def test_backtest_scores_model_and_baselines_per_window_and_step():
    arrays = to_series_arrays(synthetic_frame(n_series=6, length=60), [])
    config = ModelConfig.model_validate({**TINY_MODEL, "epochs": 2})
    result = backtest(arrays, config, "MS", season=12, windows=2)
    scores = result.scores
    assert set(scores["method"]) == {"model", "naive", "seasonal_naive"}
    assert set(scores["window"]) == {0, 1, 2} and set(scores["step"]) == set(range(0, 7))
    overall = scores[(scores["window"] == 0) & (scores["step"] == 0)].set_index("method")
    assert (overall["series"] == 6).all()
    # All windows together: the mean of the two windows' step-0 scores (each window scores 6 series x 6 steps).
    per_window = scores[(scores["window"] > 0) & (scores["step"] == 0)]
    for method in ("model", "seasonal_naive"):
        assert overall.loc[method, "smape"] == pytest.approx(per_window[per_window["method"] == method]["smape"].mean())
    assert 0 <= overall.loc["model", "coverage_95"] <= 100 and "coverage_95" in overall.columns


@pytest.mark.slow
def test_backtest_command_stores_scores_and_replaces_them_when_repeated(tmp_path, prefect_server):
    from tests.support.data import write_config

    write_config(tmp_path, "sqlite:///db.sqlite", model={"epochs": 2})
    assert forecasting("init", cwd=tmp_path).returncode == 0
    synthetic_frame(n_series=6, length=60).to_csv(tmp_path / "obs.csv", index=False)
    assert forecasting("load", "obs.csv", cwd=tmp_path).returncode == 0
    assert_one_line_error(forecasting("backtest", "--model", "tiny", "--windows", "0", cwd=tmp_path), 2, "--windows: must be a positive number")
    first = forecasting("backtest", "--model", "tiny", "--windows", "2", cwd=tmp_path, api_url=prefect_server)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "sMAPE" in first.stdout and "window 2 (origin 2024-06-01)" in first.stdout
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT window_number, method, step, smape, intervals FROM backtests")).all()
        mode = connection.execute(sa.text("SELECT mode, status FROM runs")).all()
    # 3 methods x (6 steps + all) x (2 windows + all)
    assert len(rows) == 3 * 7 * 3
    assert ("backtest", "completed") in mode
    model_all = [row for row in rows if row.window_number == 0 and row.method == "model" and row.step == 0][0]
    assert set(json.loads(model_all.intervals)) == {"80", "95"}
    again = forecasting("backtest", "--model", "tiny", "--windows", "2", "--json", cwd=tmp_path, api_url=prefect_server)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert summary["rows"] == 63 and np.isfinite(summary["smape"])
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM backtests")).scalar_one() == 63


@pytest.mark.slow
def test_backtest_step_stores_the_same_rows_on_each_database(database_url, settings_for):
    from forecasting import steps
    from forecasting.config.settings import SourceConfig
    from forecasting.sources.database import create_db_engine
    from forecasting.sources.loading import load_observations
    from forecasting.sources.schema import migrate
    from tests.support.data import pull

    settings, _ = settings_for(database_url, model={"epochs": 2})
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame(n_series=4, length=60))
    pull(settings)
    first = steps.backtest_step(settings, "tiny", "run-1", windows=1)
    second = steps.backtest_step(settings, "tiny", "run-2", windows=1)
    assert first.backtest_id == second.backtest_id and first.smape == pytest.approx(second.smape)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT run_id, count(*) FROM backtests GROUP BY run_id")).all()
    assert rows == [("run-2", 3 * 7 * 2)]  # replaced, not duplicated: methods x (6 steps + all) x (1 window + all)


@pytest.mark.slow
def test_backtest_feeds_the_future_features_after_each_origin_without_its_targets():
    from forecasting.config.settings import SourceConfig
    from forecasting.preparation.windows import build_arrays
    from forecasting.preparation.future_rows import split_future
    from tests.support.data import promotion_frame

    frame = promotion_frame(n_series=4, length=48, ahead=0)
    observed, ahead = split_future(frame)
    arrays = build_arrays(observed, ahead, SourceConfig(future_features=["promo"], frequency="MS"), "MS")
    origin = pd.Timestamp("2021-06-01")
    known, _ = cut(arrays, origin, 6, "MS")
    later = frame[frame["ts"] > origin]
    for sid in known.ids:
        # No target after the origin is in the inputs: the lookback ends at it, the future block holds promo only.
        assert known.timestamps[sid][-1] == origin and len(known.values[sid]) == len(known.timestamps[sid])
        assert known.future[sid].shape[1] == 1 and not np.isin(later.loc[later["series_id"] == sid, "value"], known.values[sid][:, 0]).any()
        # The future block after the origin is the stored promo of those months.
        promo = later[later["series_id"] == sid].set_index("ts")["promo"]
        assert list(known.future_timestamps[sid]) == list(promo.index)
        np.testing.assert_array_equal(known.future[sid][:, 0], promo.to_numpy())
    result = backtest(arrays, ModelConfig.model_validate({**TINY_MODEL, "epochs": 1}), "MS", season=12, windows=1)
    overall = result.scores[(result.scores["window"] == 0) & (result.scores["step"] == 0)].set_index("method")
    assert overall.loc["model", "series"] == 4 and np.isfinite(overall.loc["model", "smape"])


@pytest.mark.slow
def test_backtests_with_and_without_future_features_keep_their_own_rows(settings_for):
    from forecasting import steps
    from forecasting.sources.database import create_db_engine
    from forecasting.sources.schema import migrate
    from tests.support.data import insert_promotion_rows, promotion_frame, pull
    from tests.support.data import execute

    def settings_with(future):
        return settings_for("sqlite:///backtests.db", source={"frequency": "MS", "future_features": future}, model={"epochs": 1})[0]

    plain, promoted = settings_with([]), settings_with(["promo"])
    engine = create_db_engine(plain.database.url)
    migrate(engine)
    execute(engine, "ALTER TABLE observations ADD COLUMN promo DOUBLE PRECISION")
    insert_promotion_rows(engine, promotion_frame(n_series=4, length=48, ahead=0))
    pull(promoted)
    without = steps.backtest_step(plain, "tiny", "run-plain", windows=1)
    with_promo = steps.backtest_step(promoted, "tiny", "run-promo", windows=1)
    assert without.backtest_id != with_promo.backtest_id
    with engine.connect() as connection:
        rows = dict(connection.execute(sa.text("SELECT run_id, count(*) FROM backtests GROUP BY run_id")).all())
    assert rows == {"run-plain": 3 * 7 * 2, "run-promo": 3 * 7 * 2}  # neither replaced the other
