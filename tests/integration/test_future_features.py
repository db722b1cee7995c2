"""Covariates known in advance end to end: future rows pulled from SQLite and PostgreSQL, and a
promotion known ahead forecast clearly better than without it."""

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting import steps
from forecasting.history import store as history
from forecasting.config.settings import ModelConfig, SourceConfig
from forecasting.sources.database import create_db_engine
from forecasting.errors import ConfigError, InputError
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.preparation.windows import build_arrays
from forecasting.preparation.future_rows import split_future
from forecasting.sources.schema import migrate
from tests.support.data import TINY_MODEL, execute, insert_promotion_rows, promotion_frame


@pytest.fixture
def project(database_url, settings_for):
    def build(**source):
        settings, _ = settings_for(database_url, source={"frequency": "MS", "future_features": ["promo"], **source})
        engine = create_db_engine(settings.database.url)
        migrate(engine)
        with engine.begin() as connection:
            connection.execute(sa.text("ALTER TABLE observations ADD COLUMN promo DOUBLE PRECISION"))
        return settings, engine

    return build


def pulled(settings, run_id):
    result = steps.pull_step(settings, run_id)
    steps.commit_pull(settings, run_id, result)
    return result


def stored(settings):
    return history.read(history.history_root(settings.storage_root, "observations"))


def test_future_rows_are_pulled_stored_revised_and_prepared(project):
    settings, engine = project()
    frame = promotion_frame(n_series=3, length=24, ahead=4)
    insert_promotion_rows(engine, frame)
    execute(engine, "UPDATE observations SET value = NULL WHERE series_id = 'P00' AND ts = :t", t=pd.Timestamp("2018-06-01").to_pydatetime())
    first = pulled(settings, "r1")
    with engine.connect() as connection:
        quarantined = connection.execute(sa.text("SELECT series_id, ts, reason FROM quarantine")).fetchall()
    # The empty target before the last observation is quarantined as ever; the 12 future rows are kept.
    assert first.quarantined == 1 and [(r[0], pd.Timestamp(r[1]), r[2]) for r in quarantined] == [
        ("P00", pd.Timestamp("2018-06-01"), "value missing or not finite")
    ]
    store = stored(settings)
    future = store[store["value"].isna()]
    assert len(future) == 12 and set(future["ts"]) == set(pd.date_range("2020-01-01", periods=4, freq="MS"))
    assert pd.Timestamp(first.watermark) == pd.Timestamp("2019-12-01")  # future rows move no watermark

    # A revised plan (the same row count, first and last time, and target sum) is picked up, once.
    when = pd.Timestamp("2020-02-01").to_pydatetime()
    old = float(frame.loc[(frame.series_id == "P01") & (frame.ts == when), "promo"].item())
    execute(engine, "UPDATE observations SET promo = :p WHERE series_id = 'P01' AND ts = :t", p=1.0 - old, t=when)
    second = pulled(settings, "r2")
    store = stored(settings)
    assert second.rows_revised == 1 and not store.duplicated(["series_id", "ts"]).any() and len(store) == len(frame) - 1
    assert store.loc[(store.series_id == "P01") & (store.ts == when), "promo"].item() == 1.0 - old
    assert pulled(settings, "r3").rows_revised == 0  # nothing changed: nothing revised

    # The first planned month is observed; a planned row is withdrawn.
    execute(engine, "UPDATE observations SET value = 123.0 WHERE series_id = 'P02' AND ts = :t", t=pd.Timestamp("2020-01-01").to_pydatetime())
    execute(engine, "DELETE FROM observations WHERE series_id = 'P01' AND ts = :t", t=pd.Timestamp("2020-04-01").to_pydatetime())
    third = pulled(settings, "r4")
    store = stored(settings)
    assert pd.Timestamp(third.watermark) == pd.Timestamp("2020-01-01")
    assert store.loc[(store.series_id == "P02") & (store.ts == "2020-01-01"), "value"].item() == 123.0
    assert not ((store.series_id == "P01") & (store.ts == "2020-04-01")).any()

    data = steps.prepare_data(engine, settings)
    arrays = data.arrays
    assert {sid: len(values) for sid, values in arrays.values.items()} == {"P00": 24, "P01": 24, "P02": 25}
    assert np.isnan(arrays.values["P00"][5, 0])  # the quarantined month is a gap, never a future row
    assert len(arrays.future["P01"]) == 3 and len(arrays.future["P02"]) == 3
    np.testing.assert_array_equal(arrays.future["P01"][:, 0], [*frame.loc[(frame.series_id == "P01") & (frame.ts >= "2020-01-01"), "promo"][:1], 1.0 - old, frame.loc[(frame.series_id == "P01") & (frame.ts == "2020-03-01"), "promo"].item()])
    assert not data.stale


def test_plans_past_now_plus_max_future_are_pulled_not_quarantined(project):
    settings, engine = project()  # the default source.max_future (92D)
    frame = promotion_frame(n_series=2, length=24, ahead=18)
    this_month = pd.Timestamp.now().normalize().replace(day=1)
    frame["ts"] = frame["ts"] + pd.DateOffset(months=(this_month.year - 2019) * 12 + this_month.month - 12)  # observed up to this month
    insert_promotion_rows(engine, frame)
    result = pulled(settings, "r1")
    assert result.quarantined == 0 and result.series_set_aside == 0
    assert int(stored(settings)["value"].isna().sum()) == 2 * 18
    assert pd.Timestamp(result.watermark) == this_month


def test_future_rows_never_move_the_watermark_when_every_series_is_set_aside(project):
    settings, engine = project(max_quarantined_fraction=0.1, on_bad_series="skip")
    insert_promotion_rows(engine, promotion_frame(n_series=2, length=24, ahead=4))
    assert pd.Timestamp(pulled(settings, "r1").watermark) == pd.Timestamp("2019-12-01")
    execute(engine, "UPDATE observations SET promo = NULL WHERE value IS NULL")  # every plan unusable: every series set aside
    second = pulled(settings, "r2")
    assert second.series_set_aside == 2
    assert pd.Timestamp(second.watermark) == pd.Timestamp("2019-12-01")


def test_an_unknown_future_feature_column_is_named(project):
    settings, engine = project(future_features=["promo", "price"])
    insert_promotion_rows(engine, promotion_frame(n_series=1, length=6, ahead=1))
    with pytest.raises(ConfigError, match=r"source.future_features\[1\]: column 'price' not found in table 'observations'"):
        steps.pull_step(settings, "r1")


def promoted_horizon_mae(forecasts: pd.DataFrame, truth: pd.DataFrame) -> float:
    """Mean absolute error of the forecasts on the horizon periods with a promotion."""
    joined = forecasts.merge(truth, left_on=["series_id", "target_ts"], right_on=["series_id", "ts"])
    promoted = joined[joined["promo"] == 1.0]
    assert len(promoted) >= 20  # enough promoted periods inside the horizon to measure
    return float(np.mean(np.abs(promoted["yhat"] - promoted["value"])))


@pytest.mark.slow
def test_a_promotion_known_in_advance_is_forecast_clearly_better(capsys):
    # Promotions lift the level by 60% in random months (about one in four), inside the horizon too.
    # Without the flag the network cannot know which horizon months are promoted: its error there
    # is of the order of the lift. With the flag known ahead it can add the lift where it falls.
    frame = promotion_frame(n_series=40, length=60, ahead=0, seed=3)
    horizon_start = pd.Timestamp("2022-07-01")  # the last 6 of 60 months are the horizon
    truth = frame[frame["ts"] >= horizon_start]
    known = frame.assign(value=frame["value"].where(frame["ts"] < horizon_start))  # future rows: target empty, promo kept
    config = ModelConfig(**{**TINY_MODEL, "epochs": 40, "patience": 8, "refit": False, "layers": [{"units": 16}], "learning_rate": 0.01})
    errors = {}
    for name, future in (("with", ["promo"]), ("without", [])):
        observed, ahead = split_future(known)
        arrays = build_arrays(observed, ahead, SourceConfig(frequency="MS"), "MS", future=future)
        forecaster = RecurrentForecaster.fit(arrays, config, future_features=tuple(future)).forecaster
        errors[name] = promoted_horizon_mae(forecaster.predict(arrays).forecasts, truth)
    ratio = errors["with"] / errors["without"]
    with capsys.disabled():
        print(f"\npromoted horizon periods: MAE with promo {errors['with']:.2f}, without {errors['without']:.2f}, ratio {ratio:.3f}")
    # "Clearly better": the flag removes at least half the error on the promoted periods.
    assert ratio < 0.5


@pytest.mark.slow
def test_train_and_forecast_steps_use_the_future_rows_and_name_missing_ones(settings_for):
    settings, _ = settings_for("sqlite:///future.db", source={"frequency": "MS", "future_features": ["promo"]}, model={"epochs": 1})
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    execute(engine, "ALTER TABLE observations ADD COLUMN promo DOUBLE PRECISION")
    insert_promotion_rows(engine, promotion_frame(n_series=4, length=36, ahead=6))
    pulled(settings, "r1")
    trained = steps.train_step(settings, "tiny", "train-run", mode="retrain")
    summary = steps.forecast_step(settings, "tiny", "forecast-run")
    assert trained.version == summary.version and summary.series_forecast == 4
    forecasts = pd.read_parquet(summary.staged)
    assert set(forecasts["target_ts"]) == set(pd.date_range("2021-01-01", periods=6, freq="MS"))
    execute(engine, "DELETE FROM observations WHERE series_id = 'P03' AND ts >= :t", t=pd.Timestamp("2021-05-01").to_pydatetime())
    pulled(settings, "r2")
    with pytest.raises(InputError, match=r"series P03: future feature values missing for 2 of the 6 forecast periods \(2021-05-01 00:00:00, 2021-06-01"):
        steps.forecast_step(settings, "tiny", "forecast-run-2")


@pytest.mark.slow
def test_adding_future_features_to_a_running_deployment_retrains_and_replaces_the_champion(settings_for):
    def settings_with(future):
        return settings_for("sqlite:///running.db", source={"frequency": "MS", "future_features": future}, model={"epochs": 1})[0]

    before = settings_with([])
    engine = create_db_engine(before.database.url)
    migrate(engine)
    execute(engine, "ALTER TABLE observations ADD COLUMN promo DOUBLE PRECISION")
    frame = promotion_frame(n_series=4, length=36, ahead=6)
    insert_promotion_rows(engine, frame[frame["value"].notna()])
    pulled(before, "r1")
    assert steps.train_step(before, "tiny", "t1", mode="retrain").promoted
    # The plans arrive and the config names them, with a new month observed: the scheduled run continues.
    after = settings_with(["promo"])
    execute(engine, "DELETE FROM observations")
    insert_promotion_rows(engine, promotion_frame(n_series=4, length=37, ahead=6))
    pulled(after, "r2")
    decision = steps.decide_mode(after, "tiny", "auto")
    assert decision.mode == "retrain" and "source.future_features ['promo'] (champion v1: [])" in decision.reason
    trained = steps.train_step(after, "tiny", "t2", mode=decision.mode)
    assert trained.promoted and "inputs changed" in trained.decision
    assert steps.forecast_step(after, "tiny", "f2").series_forecast == 4


def test_forecasting_load_stores_the_future_feature_columns_of_a_file(project, tmp_path):
    """`forecasting load` keeps a file's future-feature column (the observed rows' promo), so the pull
    does not quarantine those rows for a missing promo."""
    from forecasting.cli.main import main

    settings, engine = project()
    path = tmp_path / "obs.csv"
    path.write_text("series_id,ts,value,promo\nA,2024-01-01,3.5,1\nA,2024-02-01,4.0,0\n")
    config = tmp_path / "forecasting.toml"
    assert main(["--config", str(config), "load", str(path)]) == 0
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT series_id, value, promo FROM observations ORDER BY ts")).fetchall()
    assert [tuple(row) for row in stored] == [("A", 3.5, 1.0), ("A", 4.0, 0.0)]
