"""The classical forecasts (Theta, damped trend): their forecasts on series whose answer is known, and
the padded all-series fits against the same methods written one series at a time."""

import numpy as np
import pandas as pd
import pytest

from forecasting.evaluation.classical import ALPHAS, DAMPED_GRID, classical_forecasts, damped_trend_forecasts, theta_forecasts
from forecasting.preparation.seasonality import season_ticks, seasonal_factors, seasonal_factors_matrix


def one_series_theta(values: np.ndarray, horizon: int) -> np.ndarray:
    """Theta for one non-seasonal series, written out plainly: the reference for the padded version."""
    best = None
    for alpha in ALPHAS:
        level, squared = values[0], 0.0
        for value in values[1:]:
            squared += (value - level) ** 2
            level += alpha * (value - level)
        if best is None or squared < best[0]:
            best = (squared, alpha, level)
    _, alpha, level = best
    slope = np.polyfit(np.arange(len(values)), values, 1)[0]
    steps = np.arange(1, horizon + 1)
    return level + 0.5 * slope * (steps - 1 + (1 - (1 - alpha) ** len(values)) / alpha)


def test_a_straight_line_is_continued_at_half_its_slope():
    line = 10.0 + 2.0 * np.arange(30)
    forecast = theta_forecasts([line], horizon=4)[0]
    # The smoothing follows the line exactly (weight 1) and Theta adds half the trend: one per step.
    np.testing.assert_allclose(forecast, line[-1] + np.arange(1, 5), rtol=1e-9)


def test_padded_fit_of_many_series_equals_the_fit_of_each_alone():
    rng = np.random.default_rng(3)
    histories = [100 + np.cumsum(rng.normal(0.5, 3, size=length)) for length in (5, 17, 40, 40, 63, 120)]
    together = theta_forecasts(histories, horizon=6)
    for history, forecast in zip(histories, together):
        np.testing.assert_allclose(forecast, one_series_theta(history, 6), rtol=1e-9)


def test_leading_gaps_are_cut_and_tiny_histories_repeat_their_last_value():
    history = np.array([np.nan, 5.0, np.nan, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    np.testing.assert_allclose(theta_forecasts([history], 3)[0], theta_forecasts([history[3:]], 3)[0])
    forecasts = theta_forecasts([np.array([7.0, 9.0]), np.array([np.nan]), np.array([])], 2)
    np.testing.assert_allclose(forecasts[0], [9.0, 9.0])
    assert np.isnan(forecasts[1:]).all()


def test_a_seasonal_series_keeps_its_season_in_the_forecast():
    index = pd.date_range("2015-01-01", periods=72, freq="MS")
    pattern = np.array([0.7, 0.8, 1.0, 1.1, 1.3, 1.4, 1.3, 1.1, 1.0, 0.9, 0.7, 0.7])
    values = 200 * pattern[index.month - 1]
    ticks = season_ticks(index, "MS")
    forecast = theta_forecasts([values], horizon=12, season=12, last_ticks=ticks[-1:])[0]
    assert seasonal_factors(values, ticks, 12) is not None
    np.testing.assert_allclose(forecast, values[-12:], rtol=1e-6)  # next year's months, in order


@pytest.mark.parametrize("count", [1, 5000])
def test_every_series_gets_a_finite_forecast_of_the_horizon(count):
    rng = np.random.default_rng(0)
    histories = [rng.gamma(2.0, 10.0, size=int(rng.integers(3, 80))) for _ in range(count)]
    forecasts = theta_forecasts(histories, horizon=8, season=4, last_ticks=np.array([len(h) + 1 for h in histories]))
    assert forecasts.shape == (count, 8) and np.isfinite(forecasts).all()


def test_the_seasonal_factors_of_many_series_at_once_are_those_of_each_alone():
    rng = np.random.default_rng(7)
    season, histories = 12, []
    for length in (30, 36, 37, 50, 72, 100, 144):
        shape = 1 + rng.uniform(0.0, 0.5) * np.sin(2 * np.pi * np.arange(length) / season + rng.uniform(0, 6))
        histories.append(50 * shape + rng.normal(0, rng.choice([0.5, 30.0]), size=length))
    histories.append(-histories[-1])  # not positive: never seasonal
    width = max(len(h) for h in histories)
    padded = np.full((len(histories), width), np.nan)
    positions = np.zeros((len(histories), width), dtype="int64")
    for row, history in enumerate(histories):
        padded[row, width - len(history):] = history
        positions[row] = (np.arange(width) - (width - len(history)) + 5 * row) % season  # each series its own phase
    together = seasonal_factors_matrix(padded, positions, season)
    decided = []
    for row, history in enumerate(histories):
        alone = seasonal_factors(history, (np.arange(len(history)) + 5 * row), season)
        decided.append(alone is not None)
        if alone is None:
            assert np.isnan(together[row]).all()
        else:
            np.testing.assert_allclose(together[row], alone, rtol=1e-9)
    assert any(decided) and not all(decided)  # both outcomes of the test are covered


def one_series_damped(values: np.ndarray, horizon: int) -> np.ndarray:
    """Damped-trend smoothing for one series, written out plainly: the reference for the padded version."""
    best = None
    for alpha, beta, phi in DAMPED_GRID:
        level, trend, squared = values[1], values[1] - values[0], 0.0
        for value in values[2:]:
            error = value - (level + phi * trend)
            squared += error**2
            level, trend = level + phi * trend + alpha * error, phi * trend + beta * error
        if best is None or squared < best[0]:
            best = (squared, phi, level, trend)
    _, phi, level, trend = best
    return level + np.cumsum(phi ** np.arange(1, horizon + 1)) * trend


def test_padded_damped_trend_fit_equals_the_fit_of_each_series_alone():
    rng = np.random.default_rng(5)
    histories = [50 + np.cumsum(rng.normal(rng.uniform(-1, 2), 2, size=length)) for length in (3, 9, 24, 24, 61, 100)]
    together = damped_trend_forecasts(histories, horizon=8)
    for history, forecast in zip(histories, together):
        np.testing.assert_allclose(forecast, one_series_damped(history, 8), rtol=1e-9)


def test_the_damped_trend_bends_a_straight_line_and_both_methods_come_from_one_fit():
    line = 10.0 + 2.0 * np.arange(40)
    damped = damped_trend_forecasts([line], horizon=6)[0]
    assert (np.diff(damped) > 0).all() and (np.diff(damped) < 2.0).all()  # still rising, less each step
    assert line[-1] + 2.0 * DAMPED_GRID[:, 2].min() < damped[0] < line[-1] + 2.0
    both = classical_forecasts([line], horizon=6)
    np.testing.assert_allclose(both["damped_trend"][0], damped)
    np.testing.assert_allclose(both["theta"][0], theta_forecasts([line], horizon=6)[0])
