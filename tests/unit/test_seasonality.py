import numpy as np
import pandas as pd
import pytest

from forecasting.preparation.scaling import SeriesScaler
from forecasting.preparation.seasonality import is_seasonal, season_ticks, seasonal_factors
from forecasting.preparation.windows import make_windows, split_windows, to_series_arrays

MONTHLY_FACTORS = np.array([0.7, 0.8, 0.9, 1.0, 1.1, 1.3, 1.4, 1.3, 1.1, 1.0, 0.8, 0.6])
MONTHLY_FACTORS = MONTHLY_FACTORS / MONTHLY_FACTORS.mean()


@pytest.mark.parametrize(
    ("start", "frequency", "season"),
    [("2019-03-01", "MS", 12), ("2019-03-31", "ME", 12), ("2019-01-01", "QS", 4), ("2024-01-01", "D", 7), ("2024-01-01", "h", 24), ("2024-01-07", "W", 52)],
)
def test_season_ticks_count_steps_and_tie_positions_to_the_calendar(start, frequency, season):
    index = pd.date_range(start, periods=3 * season + 1, freq=frequency)
    ticks = season_ticks(index, frequency)
    assert (np.diff(ticks) == 1).all()
    # The same position in the season comes back every `season` steps, whatever row a read starts at.
    np.testing.assert_array_equal(ticks[season:] % season, ticks[:-season] % season)
    np.testing.assert_array_equal(season_ticks(index[5:], frequency), ticks[5:])


def test_monthly_positions_are_months_of_the_year():
    index = pd.date_range("2019-01-01", periods=24, freq="MS")
    np.testing.assert_array_equal(season_ticks(index, "MS") % 12, index.month - 1)


def test_seasonality_test_tells_a_seasonal_series_from_noise():
    rng = np.random.default_rng(3)
    months = np.arange(72)
    seasonal = 100 * MONTHLY_FACTORS[months % 12] * (1 + 0.02 * rng.normal(size=72))
    noise = 100 + rng.normal(size=72)
    assert is_seasonal(seasonal, 12)
    assert not is_seasonal(noise, 12)
    assert not is_seasonal(seasonal[:30], 12)  # fewer than three seasons: not judged seasonal
    assert not is_seasonal(seasonal, 1)


def test_factors_recover_a_multiplicative_season_by_calendar_position():
    index = pd.date_range("2018-04-01", periods=96, freq="MS")  # starts in April: row 0 is not position 0
    ticks = season_ticks(index, "MS")
    trend = 200 + 0.5 * np.arange(96)
    values = trend * MONTHLY_FACTORS[ticks % 12]
    factors = seasonal_factors(values, ticks, 12)
    np.testing.assert_allclose(factors, MONTHLY_FACTORS, rtol=0.01)
    assert factors.mean() == pytest.approx(1.0)
    assert seasonal_factors(values - 300, ticks, 12) is None  # not positive: no multiplicative factors
    assert seasonal_factors(200 + np.random.default_rng(0).normal(size=96), ticks, 12) is None


def _seasonal_frame(rows: int = 72, start: str = "2019-01-01") -> pd.DataFrame:
    index = pd.date_range(start, periods=rows, freq="MS")
    values = (100 + np.arange(rows)) * MONTHLY_FACTORS[index.month - 1]
    flat = 50 + np.random.default_rng(1).normal(size=rows)
    return pd.concat(
        [pd.DataFrame({"series_id": "seasonal", "ts": index, "value": values}), pd.DataFrame({"series_id": "flat", "ts": index, "value": flat})]
    )


def test_deseasonalised_windows_decode_to_the_original_values_and_state_round_trips():
    arrays = to_series_arrays(_seasonal_frame(), [], "MS")
    scaler = SeriesScaler.fit(arrays.values, {sid: 54 for sid in arrays.values}, target="window_log")
    scaler.fit_seasonal(arrays.values, arrays.timestamps, {sid: 54 for sid in arrays.values}, "MS", 12)
    assert set(scaler.factors) == {"seasonal"}  # the noisy series fails the test and is left alone
    split = split_windows(arrays, scaler, lookback=24, horizon=6, validation_steps=6)
    seasonal = split.val_series == "seasonal"
    # Deseasonalised, a trend times a season becomes a smooth trend: the scaled targets rise steadily.
    assert (np.diff(split.y_val[seasonal], axis=1) > 0).all()
    # The validation windows are each series' last six; series in id order.
    inputs, targets = zip(*(make_windows(arrays.values[sid][:, :1], 24, 6) for sid in ("flat", "seasonal")))
    np.testing.assert_allclose(split.val_levels.decode(split.y_val), np.concatenate([t[-6:] for t in targets]), rtol=1e-5)
    expected_inputs = np.concatenate([i[-6:, :, 0] for i in inputs])
    np.testing.assert_allclose(split.val_levels.decode(split.x_val[:, :, 0], shift=-24), expected_inputs, rtol=1e-5)
    restored = SeriesScaler.from_dict(scaler.to_dict())
    assert (restored.season, restored.frequency) == (12, "MS")
    np.testing.assert_array_equal(restored.factors["seasonal"], scaler.factors["seasonal"])
    assert "seasonal" not in SeriesScaler.from_dict({k: v for k, v in scaler.to_dict().items() if k != "seasonal"}).to_dict()


def test_a_window_encodes_alike_whatever_row_the_history_starts_at():
    full = to_series_arrays(_seasonal_frame(), [], "MS")
    scaler = SeriesScaler.fit(full.values, target="window_log")
    scaler.fit_seasonal(full.values, full.timestamps, {sid: 72 for sid in full.values}, "MS", 12)
    later = to_series_arrays(_seasonal_frame().groupby("series_id").tail(40), [], "MS")  # the first 32 months gone
    window = full.values["seasonal"][-24:]
    x_full, _, _ = scaler.encode("seasonal", window[np.newaxis], first_ticks=scaler.ticks(full.timestamps["seasonal"][-24:])[:1])
    x_later, _, _ = scaler.encode("seasonal", later.values["seasonal"][-24:][np.newaxis], first_ticks=scaler.ticks(later.timestamps["seasonal"][-24:])[:1])
    np.testing.assert_allclose(x_full, x_later)
    with pytest.raises(ValueError, match="first tick"):
        scaler.encode("seasonal", window[np.newaxis])


@pytest.mark.slow
def test_the_refit_estimates_factors_from_all_rows_and_the_holdout_network_keeps_its_own():
    from forecasting.config.settings import ModelConfig
    from forecasting.model.forecaster import RecurrentForecaster
    from tests.support.data import TINY_MODEL

    # 48 months pass the seasonality test; the 42 before the last horizon (6) do not.
    assert is_seasonal(_seasonal_frame(rows=48).query("series_id == 'seasonal'").value.to_numpy(), 12)
    assert not is_seasonal(_seasonal_frame(rows=42).query("series_id == 'seasonal'").value.to_numpy(), 12)
    arrays = to_series_arrays(_seasonal_frame(rows=48), [], "MS")
    outcome = RecurrentForecaster.fit(arrays, ModelConfig(**{**TINY_MODEL, "epochs": 2}))
    result, holdout = outcome.forecaster, outcome.holdout
    assert "seasonal" not in holdout.scaler.factors
    assert set(result.scaler.factors) == {"seasonal"}
    # Only the factors are estimated again: level statistics stay those of the training part.
    np.testing.assert_array_equal(result.scaler.loc["seasonal"], holdout.scaler.loc["seasonal"])
    assert result.network is not holdout.network
    forecasts = result.predict(arrays).forecasts
    assert forecasts.yhat.notna().all() and len(forecasts) == 12
    unseasonal = RecurrentForecaster.fit(arrays, ModelConfig(**{**TINY_MODEL, "epochs": 2, "deseasonalize": False})).forecaster
    assert not unseasonal.scaler.seasonal and "seasonal" not in unseasonal.scaler.to_dict()
