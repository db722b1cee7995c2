import numpy as np
import pytest

from forecasting.evaluation import conformal_halfwidths, mae, naive_forecast, rmse, seasonal_naive_forecast, smape


def test_metrics_against_hand_computed_values():
    actual, predicted = np.array([100.0, 200.0, 0.0]), np.array([110.0, 150.0, 0.0])
    assert mae(actual, predicted) == pytest.approx((10 + 50 + 0) / 3)
    assert rmse(actual, predicted) == pytest.approx(np.sqrt((100 + 2500 + 0) / 3))
    # 200*10/210 = 9.5238..., 200*50/350 = 28.5714..., 0/0 -> 0
    assert smape(actual, predicted) == pytest.approx((200 * 10 / 210 + 200 * 50 / 350 + 0) / 3)


def test_baselines():
    windows = np.arange(24.0).reshape(1, 24, 1)
    np.testing.assert_array_equal(naive_forecast(windows, 3), [[23, 23, 23]])
    np.testing.assert_array_equal(seasonal_naive_forecast(windows, 14, 12)[0], list(range(12, 24)) + [12, 13])


def test_conformal_halfwidths_per_step():
    residuals = np.column_stack([np.arange(1.0, 101.0), 2 * np.arange(1.0, 101.0)])
    widths = conformal_halfwidths(residuals, [80])
    # ceil(101 * 0.8) / 100 = 0.81 -> the 81st smallest |residual|
    assert widths[80] == [81.0, 162.0]
