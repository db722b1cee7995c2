"""Scoring as actuals arrive: forecast_errors rows equal errors computed by hand, nothing is scored twice, a
revised actual re-scores exactly its rows, and the views agree with pandas (SQLite and PostgreSQL)."""

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting.sources.database import create_db_engine
from forecasting.sources.upserts import upsert_frame
from forecasting.sources.loading import load_observations
from forecasting.sources.schema import migrate
from forecasting.steps.scoring import champion_live_accuracy, score_forecasts
from forecasting.sources.tables import FORECAST_KEY
from tests.support.data import pull, synthetic_frame
from tests.support.scoring import ORIGIN_INDEX, by_hand, forecast_frame




def stored(engine) -> pd.DataFrame:
    with engine.connect() as connection:
        frame = pd.read_sql(sa.text("SELECT * FROM forecast_errors"), connection)
    frame["target_ts"] = pd.to_datetime(frame["target_ts"])
    return frame.sort_values(["series_id", "target_ts"], ignore_index=True)


def test_actuals_are_scored_as_they_arrive_once_and_revisions_rescore_exactly_their_rows(scenario):
    settings, engine, full, months, forecasts = scenario
    assert score_forecasts(engine, settings, "tiny", "r0").scored == 0  # no actual has arrived yet

    load_observations(engine, settings.source, full[months <= ORIGIN_INDEX + 2])
    pull(settings)
    first = score_forecasts(engine, settings, "tiny", "r1")
    assert (first.scored, first.rescored, first.total) == (6, 0, 6)
    expected = by_hand(full[months <= ORIGIN_INDEX + 2], forecasts)
    rows = stored(engine)
    for column in expected.columns.drop(["series_id", "target_ts"]):
        np.testing.assert_allclose(rows[column].astype(float), expected[column].astype(float), rtol=1e-9, err_msg=column)
    assert set(rows["run_id"]) == {"r1"} and set(rows["step"]) == {1, 2}

    again = score_forecasts(engine, settings, "tiny", "r2")
    assert (again.scored, again.rescored, again.removed) == (0, 0, 0)
    assert set(stored(engine)["run_id"]) == {"r1"}  # nothing scored twice

    load_observations(engine, settings.source, full)  # the rest of the months arrive
    pull(settings)
    assert score_forecasts(engine, settings, "tiny", "r3").scored == 12

    revised = full[(full.series_id == "S01") & (months == ORIGIN_INDEX + 3)].assign(value=lambda f: f.value + 100.0)
    load_observations(engine, settings.source, revised)
    pull(settings)
    result = score_forecasts(engine, settings, "tiny", "r4")
    assert (result.scored, result.rescored, result.total) == (0, 1, 18)
    rows = stored(engine)
    changed = rows[rows.run_id == "r4"]
    assert list(changed.series_id) == ["S01"] and list(changed.step) == [3]
    assert changed.actual.iloc[0] == pytest.approx(revised.value.iloc[0])


def test_the_models_own_season_sets_the_naive_forecast_and_the_scale(database_url, settings_for):
    """A model configured with `season = 3` is scored with the season its gate used, not the frequency's 12."""
    settings, _ = settings_for(database_url, model={"season": 3})
    engine = create_db_engine(database_url)
    migrate(engine)
    full = synthetic_frame(n_series=3, length=36, seed=3)
    load_observations(engine, settings.source, full)
    pull(settings)
    forecasts = forecast_frame(full, ORIGIN_INDEX)
    with engine.begin() as connection:
        upsert_frame(connection, sa.Table("forecasts", sa.MetaData(), autoload_with=connection), forecasts, key=FORECAST_KEY)
    assert score_forecasts(engine, settings, "tiny", "r1").scored == 18
    expected, rows = by_hand(full, forecasts, season=3), stored(engine)
    for column in ("scale", "scaled_error", "naive_yhat", "naive_scaled_error"):
        np.testing.assert_allclose(rows[column].astype(float), expected[column].astype(float), rtol=1e-9, err_msg=column)


def test_views_agree_with_pandas_on_the_same_rows(scenario):
    settings, engine, full, months, forecasts = scenario
    load_observations(engine, settings.source, full)
    pull(settings)
    score_forecasts(engine, settings, "tiny", "r1")
    rows = stored(engine)
    with engine.connect() as connection:
        by_step = pd.read_sql(sa.text("SELECT * FROM accuracy_by_version_step WHERE model_name = 'tiny' ORDER BY step"), connection)
        by_period = pd.read_sql(sa.text("SELECT * FROM accuracy_by_period WHERE model_name = 'tiny' ORDER BY target_ts"), connection)
        joined = pd.read_sql(sa.text("SELECT * FROM forecast_vs_actual WHERE model_name = 'tiny'"), connection)
    assert len(joined) == len(forecasts) and joined["actual"].notna().all()
    for frame, groups in ((by_step[by_step.step > 0], "step"), (by_period, "target_ts")):
        keys = rows.groupby(groups).size().index
        grouped = rows.assign(inside_80=rows.inside_80.astype(float) * 100).groupby(groups)
        np.testing.assert_allclose(frame["scored"], grouped.size().loc[keys])
        np.testing.assert_allclose(frame["mae"], grouped["abs_error"].mean().loc[keys])
        np.testing.assert_allclose(frame["smape"], grouped["smape_term"].mean().loc[keys])
        np.testing.assert_allclose(frame["mase"], grouped["scaled_error"].mean().loc[keys])
        np.testing.assert_allclose(frame["naive_mase"], grouped["naive_scaled_error"].mean().loc[keys])
        np.testing.assert_allclose(frame["coverage_80"], grouped["inside_80"].mean().loc[keys])
    total = by_step[by_step.step == 0].iloc[0]
    assert total["scored"] == len(rows) and total["mase"] == pytest.approx(rows.scaled_error.mean())


def test_live_accuracy_reads_the_latest_periods_of_one_version(scenario):
    settings, engine, full, months, forecasts = scenario
    load_observations(engine, settings.source, full)
    pull(settings)
    score_forecasts(engine, settings, "tiny", "r1")
    live = champion_live_accuracy(engine, "tiny", 1, "mase", 2)
    rows = stored(engine)
    latest = rows[rows.target_ts >= sorted(rows.target_ts.unique())[-2]]
    assert live.periods == 2 and live.rows == len(latest) == 6
    assert live.score == pytest.approx(latest.scaled_error.mean()) and live.naive_score == pytest.approx(latest.naive_scaled_error.mean())
    assert champion_live_accuracy(engine, "tiny", 2, "mase", 2) is None


def test_a_schema_from_before_forecast_errors_is_named_and_init_migrates_it(database_url, settings_for):
    from alembic import command

    from forecasting.errors import ConfigError
    from forecasting.sources.schema import alembic_config, head_revision
    from forecasting.steps import check_schema

    settings, _ = settings_for(database_url)
    engine = create_db_engine(database_url)
    with engine.begin() as connection:
        from importlib.resources import as_file, files

        with as_file(files("forecasting.sql").joinpath("migrations")) as location:
            command.upgrade(alembic_config(connection, str(location)), "0006")
    with pytest.raises(ConfigError, match="older version \\(no table forecast_errors\\); run `forecasting init` to migrate it"):
        check_schema(engine, settings, "tiny")
    assert migrate(engine)["to_revision"] == head_revision() == "0011"
    load_observations(engine, settings.source, synthetic_frame(n_series=1, length=24))
    check_schema(engine, settings, "tiny")
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT COUNT(*) FROM accuracy_by_period")).scalar() == 0
