"""Holiday calendars by country (`source.holidays`): inputs computed from the timestamps, known for
the forecast periods, recorded with the model and rebuilt by a loaded one."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from forecasting.config.settings import ModelConfig, SourceConfig, load_settings
from forecasting.errors import ConfigError
from forecasting.model.artifacts import read_manifest, upgrade_manifest
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.model.inputs import InputSpec
from forecasting.preparation.future_inputs import horizon_blocks
from forecasting.preparation.holiday_inputs import holiday_features
from forecasting.preparation.windows import build_arrays
from forecasting.steps.mode import changed_inputs
from tests.support.data import TINY_MODEL, write_config

COMMITTED = [pytest.param(name, id=name) for name in ("artifact-v1", "artifact-v2")]


def test_daily_columns_mark_the_holiday_its_eve_and_the_day_after():
    days = pd.DatetimeIndex(["2024-07-03", "2024-07-04", "2024-07-05", "2024-07-06", "2024-12-24", "2024-12-25"])
    columns = holiday_features(days, "D", ("US",))
    np.testing.assert_array_equal(columns[:, 0], [0, 1, 0, 0, 0, 1])  # on the day: Independence Day, Christmas
    np.testing.assert_array_equal(columns[:, 1], [1, 0, 0, 0, 1, 0])  # the day before one
    np.testing.assert_array_equal(columns[:, 2], [0, 0, 1, 0, 0, 0])  # the day after one


def test_weekly_and_monthly_columns_count_the_holidays_in_the_period():
    # Weeks end on their timestamp (pandas' W-SUN): 2024-07-07 holds July 4, 2024-06-23 Juneteenth.
    weeks = pd.date_range("2024-06-16", periods=5, freq="W-SUN")
    np.testing.assert_array_equal(holiday_features(weeks, "W-SUN", ("US",)).ravel(), [0, 1, 0, 1, 0])
    months = pd.date_range("2024-10-01", periods=3, freq="MS")  # Columbus Day; Veterans Day and Thanksgiving; Christmas
    np.testing.assert_array_equal(holiday_features(months, "MS", ("US",)).ravel(), [1, 2, 1])
    # A region's calendar adds its own days (California: Cesar Chavez Day, the day after Thanksgiving).
    year = pd.date_range("2024-01-01", "2024-12-31", freq="D")
    assert holiday_features(year, "D", ("US-CA",))[:, 0].sum() > holiday_features(year, "D", ("US",))[:, 0].sum()


def test_an_unknown_country_code_is_a_one_line_config_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, "sqlite:///x.db", source={"frequency": "D", "holidays": ["US", "XX"]}))
    message = str(caught.value)
    assert "\n" not in message and "source.holidays" in message and "'XX'" in message
    with pytest.raises(ConfigError, match=r"source.holidays: unknown subdivision 'US-ZZ'"):
        load_settings(write_config(tmp_path, "sqlite:///x.db", source={"holidays": ["US-ZZ"]}))
    assert load_settings(write_config(tmp_path, "sqlite:///x.db", source={"holidays": ["us", "DE-BY"]})).source.holidays == ["US", "DE-BY"]


def test_the_requested_inputs_and_a_changed_calendar_name_the_holidays():
    source = SourceConfig(holidays=["US"])
    assert InputSpec.requested(source, ModelConfig(**TINY_MODEL)).holidays == ("US",)
    champion = SimpleNamespace(version=1, features=(), future_features=(), calendar=False, holidays=())
    assert changed_inputs(champion, source, False) == "source.holidays ['US'] (champion v1: [])"
    assert changed_inputs(champion, source) is None  # the forecast step accepts it: the model builds its own inputs


def daily_frame(n_series=4, end="2024-07-01", days=150, seed=0):
    """Daily series with a weekly cycle, whose sales drop 60% on US holidays."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(end=end, periods=days, freq="D")
    holiday = holiday_features(ts, "D", ("US",))[:, 0]
    parts = []
    for index in range(n_series):
        level = rng.uniform(50, 200) * (1 + 0.2 * np.sin(2 * np.pi * np.arange(days) / 7))
        values = level * (1 - 0.6 * holiday) + rng.normal(0, 2, days)
        parts.append(pd.DataFrame({"series_id": f"D{index}", "ts": ts, "value": values}))
    return pd.concat(parts, ignore_index=True)


def test_a_saved_forecaster_rebuilds_its_holiday_inputs_for_the_forecast_periods(tmp_path):
    frame = daily_frame()
    empty = frame.iloc[:0]
    config = ModelConfig(**{**TINY_MODEL, "lookback": 14, "horizon": 7, "epochs": 2, "refit": False})
    arrays = build_arrays(frame, empty, SourceConfig(frequency="D", holidays=["US"]), "D")
    forecaster = RecurrentForecaster.fit(arrays, config).forecaster
    assert forecaster.holidays == ("US",) and len(arrays.future_columns) == 3  # on the day, the eve, the day after
    (tmp_path / "v1").mkdir()
    forecaster.save(tmp_path / "v1")
    assert read_manifest(tmp_path / "v1")["holidays"] == ["US"]
    loaded = RecurrentForecaster.load(tmp_path / "v1")
    assert loaded.inputs == forecaster.inputs
    # The loaded model builds its holiday inputs itself: the configured source need not name them.
    rebuilt = loaded.prepare(frame, empty, SourceConfig(frequency="D"))
    blocks = horizon_blocks(rebuilt, rebuilt.ids, 7, "D")  # 2024-07-02 .. 07-08
    np.testing.assert_array_equal(blocks[0, :, 0], [0, 0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(blocks, horizon_blocks(arrays, arrays.ids, 7, "D"))
    pd.testing.assert_frame_equal(loaded.predict(rebuilt).forecasts, forecaster.predict(arrays).forecasts)


@pytest.mark.parametrize("name", COMMITTED)
def test_artifacts_saved_before_holidays_load_without_them(name):
    from pathlib import Path

    folder = Path(__file__).parents[1] / "data" / name
    assert "holidays" not in read_manifest(folder) and upgrade_manifest(read_manifest(folder))["holidays"] == []
    assert RecurrentForecaster.load(folder).holidays == ()
