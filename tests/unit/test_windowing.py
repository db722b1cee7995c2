import numpy as np
import pandas as pd
import pytest

from forecasting.preparation.scaling import SeriesScaler
from forecasting.preparation.windows import make_windows, split_windows, to_series_arrays


def test_exact_windows_on_a_small_series():
    values = np.arange(10, dtype=float)
    inputs, targets = make_windows(values, lookback=3, horizon=2)
    assert inputs.shape == (6, 3, 1) and targets.shape == (6, 2)
    np.testing.assert_array_equal(inputs[0, :, 0], [0, 1, 2])
    np.testing.assert_array_equal(targets[0], [3, 4])
    np.testing.assert_array_equal(inputs[-1, :, 0], [5, 6, 7])
    np.testing.assert_array_equal(targets[-1], [8, 9])


def test_windows_carry_feature_columns_but_target_only_from_column_zero():
    values = np.column_stack([np.arange(6.0), np.arange(100.0, 106.0)])
    inputs, targets = make_windows(values, lookback=2, horizon=1)
    np.testing.assert_array_equal(inputs[1], [[1, 101], [2, 102]])
    np.testing.assert_array_equal(targets[:, 0], [2, 3, 4, 5])


def test_series_too_short_gives_no_windows():
    inputs, targets = make_windows(np.arange(4.0), lookback=3, horizon=2)
    assert inputs.shape == (0, 3, 1) and targets.shape == (0, 2)


def test_validation_is_the_latest_part_of_each_series():
    ts = pd.date_range("2020-01-01", periods=12, freq="MS")
    frame = pd.concat(
        [
            pd.DataFrame({"series_id": "a", "ts": ts, "value": np.arange(12.0)}),
            pd.DataFrame({"series_id": "b", "ts": ts[:9], "value": np.arange(100.0, 109.0)}),
        ]
    )
    arrays = to_series_arrays(frame, [])
    identity = SeriesScaler(loc={k: np.zeros(1) for k in "ab"}, scale={k: np.ones(1) for k in "ab"})
    split = split_windows(arrays, identity, lookback=3, horizon=2, validation_steps=2)
    # a: 8 windows; the last 2 reach into rows 10-11 -> validation. b: 5 windows, last 2 validation.
    assert len(split.x_train) == 6 + 3 and len(split.x_val) == 2 + 2
    assert split.y_train.max() < 100 + 7  # no training target of b reaches its last 2 rows (107, 108)
    assert set(split.y_train[split.y_train < 100].ravel()) <= set(range(10))
    assert sorted(split.val_series) == ["a", "a", "b", "b"]
    np.testing.assert_array_equal(split.y_val[split.val_series == "a"][-1], [10, 11])


def test_windows_spanning_missing_values_are_dropped():
    values = np.arange(10.0)
    values[5] = np.nan
    ts = pd.date_range("2020-01-01", periods=10, freq="MS")
    arrays = to_series_arrays(pd.DataFrame({"series_id": "a", "ts": ts, "value": values}), [])
    identity = SeriesScaler(loc={"a": np.zeros(1)}, scale={"a": np.ones(1)})
    split = split_windows(arrays, identity, lookback=2, horizon=1, validation_steps=1)
    assert np.isfinite(split.x_train).all() and np.isfinite(split.y_train).all()
    assert len(split.x_train) + len(split.x_val) == 8 - 3


def test_calendar_features_fit_the_frequency():
    from forecasting.preparation.calendar import calendar_features

    months = calendar_features(pd.date_range("2024-01-01", periods=12, freq="MS"), "MS")
    assert months.shape == (12, 2)
    np.testing.assert_allclose(months[0], [0.0, 1.0], atol=1e-12)  # January
    np.testing.assert_allclose(months[3], [1.0, 0.0], atol=1e-12)  # April: a quarter turn
    assert calendar_features(pd.date_range("2024-01-01", periods=5, freq="D"), "D").shape == (5, 4)  # weekday, month
    hours = calendar_features(pd.date_range("2024-01-01", periods=24, freq="h"), "h")
    assert hours.shape == (24, 4)
    np.testing.assert_allclose(hours[6, :2], [1.0, 0.0], atol=1e-12)  # 06:00
    arrays = to_series_arrays(_frame_with_feature(), ["promo"], "MS", calendar=True)
    assert next(iter(arrays.values.values())).shape[1] == 1 + 1 + 2


def _frame_with_feature(n_series: int = 6, length: int = 60) -> pd.DataFrame:
    from tests.support.data import synthetic_frame

    frame = synthetic_frame(n_series=n_series, length=length)
    frame["promo"] = np.random.default_rng(3).normal(size=len(frame))
    return frame


def test_window_inputs_hold_no_row_after_their_origin():
    values = np.column_stack([np.arange(20.0), np.arange(100.0, 120.0)])
    inputs, targets = make_windows(values, lookback=5, horizon=3)
    for i, window in enumerate(inputs):
        assert window[:, 1].max() == 100.0 + i + 4  # the feature up to the window's last row, not beyond
        assert targets[i, 0] == i + 5


@pytest.mark.slow
def test_past_only_features_after_an_origin_do_not_change_its_forecast():
    """Leakage check: a backtest trains and forecasts from each origin; rewriting every feature value
    after the origin (what was not yet known there) must leave its forecasts exactly as they were."""
    from forecasting.model.backtesting import backtest
    from forecasting.config.settings import ModelConfig
    from tests.support.data import TINY_MODEL

    frame = _frame_with_feature()
    config = ModelConfig.model_validate({**TINY_MODEL, "epochs": 2, "calendar": True})
    origin = frame["ts"].max() - pd.DateOffset(months=config.horizon)
    tampered = frame.copy()
    later = tampered["ts"] > origin
    tampered.loc[later, "promo"] = 1e6
    clean = backtest(to_series_arrays(frame, ["promo"], "MS", True), config, "MS", season=12, windows=1).scores
    changed = backtest(to_series_arrays(tampered, ["promo"], "MS", True), config, "MS", season=12, windows=1).scores
    pd.testing.assert_frame_equal(clean, changed)
    # ...while the feature is a real input: changing it before the origin changes the forecasts.
    tampered.loc[~later & (tampered["ts"] > origin - pd.DateOffset(months=3)), "promo"] = 1e3
    earlier = backtest(to_series_arrays(tampered, ["promo"], "MS", True), config, "MS", season=12, windows=1).scores
    assert not np.allclose(clean["mae"], earlier["mae"])
