"""Cold start: series shorter than the lookback forecast from a padded window, with the method on every row;
the derived lookback of established series is the same with and without new ones."""

import numpy as np
import pandas as pd
import pytest

from forecasting.config.settings import ModelConfig
from forecasting.model.defaults import default_lookback, new_series, resolve_config
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.preparation.short_history import pad_period, pad_window
from forecasting.preparation.windows import to_series_arrays
from tests.support.data import TINY_MODEL, synthetic_frame


@pytest.mark.parametrize(("horizon", "season"), [(14, 7), (7, 7), (28, 7), (18, 12)])
def test_new_series_do_not_change_the_lookback_of_the_established_ones(horizon, season):
    established, new = [300] * 12, [14, 14]
    assert default_lookback(horizon, season, established + new) == default_lookback(horizon, season, established)
    config = ModelConfig(horizon=horizon)
    assert resolve_config(config, "D", established + new).lookback == resolve_config(config, "D", established).lookback


def test_the_issue_example_no_longer_reads_two_days():
    # 12 stores x 300 days + 2 new stores x 14 days, daily, a 14-day horizon: 18 days (1.25 x 14), not 2.
    assert default_lookback(14, 7, [300] * 12 + [14] * 2) == 18
    assert new_series(14, 7, [300] * 12 + [14] * 2) == 2


def test_a_data_set_short_as_a_whole_still_fits_the_lookback_to_its_series():
    assert new_series(8, 4, [16] * 50 + [40] * 50) == 0  # half the series: not new ones among established ones
    assert default_lookback(8, 4, [16] * 50 + [40] * 50) == 8
    assert default_lookback(6, 1, [14] * 100) == 8


def test_a_short_window_repeats_its_first_season_backwards():
    values = np.arange(10, dtype="float64").reshape(-1, 1)  # 10 days, weekly season
    padded = pad_window(values, 16, 7)
    assert padded.shape == (16, 1)
    assert list(padded[-10:, 0]) == list(range(10))
    # Row i before the first is the row a whole number of weeks later: same weekday.
    assert list(padded[:6, 0]) == [1, 2, 3, 4, 5, 6]
    assert pad_period(3, 7) == 3 and list(pad_window(values[:3], 5, 7)[:, 0]) == [1, 2, 0, 1, 2]


def test_series_shorter_than_the_lookback_are_forecast_with_their_method_recorded():
    frame = synthetic_frame()
    last = frame["ts"].max()
    new = pd.DataFrame({"series_id": "NEW", "ts": pd.date_range(end=last, periods=5, freq="MS"), "value": [5.0, 6.0, 7.5, 6.5, 8.0]})
    flat = pd.DataFrame({"series_id": "FLAT", "ts": pd.date_range(end=last, periods=3, freq="MS"), "value": 4.0})
    forecaster = RecurrentForecaster.fit(to_series_arrays(frame, []), ModelConfig(**TINY_MODEL)).forecaster
    arrays = to_series_arrays(pd.concat([frame, new, flat], ignore_index=True), [])
    result = forecaster.predict(arrays)
    rows = result.forecasts
    assert set(rows["series_id"]) == set(arrays.values) and not result.skipped
    methods = rows.groupby("series_id")["method"].first()
    assert methods["NEW"] == "short_history" and methods["FLAT"] == "constant"
    assert (methods.drop(["NEW", "FLAT"]) == "network").all()
    short = rows[rows["series_id"] == "NEW"]
    assert len(short) == forecaster.horizon and np.isfinite(short[["yhat", "yhat_lower_95", "yhat_upper_95"]].to_numpy()).all()
    assert (short["yhat_lower_95"] < short["yhat"]).all() and (short["yhat"] < short["yhat_upper_95"]).all()
    assert result.short == {"NEW": "5 observations, fewer than lookback 12: padded"}
    # Holdout scores still read full windows only: the new series is not scored.
    assert forecaster.score_holdout(arrays, "smape")["series"] == len(set(frame["series_id"]))


def test_a_new_series_of_a_seasonal_data_set_keeps_its_own_weekly_shape():
    from forecasting.preparation.scaling import SeriesScaler

    week = np.array([1.0, 1.0, 1.0, 1.0, 1.2, 1.5, 0.8])
    long_ts, short_ts = pd.date_range("2024-01-01", periods=70, freq="D"), pd.date_range("2024-02-26", periods=15, freq="D")
    series = {"OLD": (100 * week[long_ts.dayofweek]).reshape(-1, 1), "NEW": (50 * week[short_ts.dayofweek]).reshape(-1, 1)}
    scaler = SeriesScaler.fit(series)
    scaler.fit_seasonal(series, {"OLD": long_ts, "NEW": short_ts}, {}, "D", 7)
    assert set(scaler.factors) == {"OLD", "NEW"}  # two weeks: too short for the test, given its own factors
    np.testing.assert_allclose(scaler.factors["NEW"], scaler.factors["OLD"], rtol=1e-9)


def test_short_series_of_a_data_set_of_short_series_still_shorten_the_lookback():
    # M3 quarterly's shape: 7% of the series at 16 quarters, the median at 44. They are not new stores:
    # the lookback stays 8 (16 - 8), which scores better on the holdout than 10 with them padded.
    lengths = [16] * 52 + [44] * 704
    assert new_series(8, 4, lengths) == 0
    assert default_lookback(8, 4, lengths) == 8
