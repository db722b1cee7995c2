import numpy as np
import pytest

from forecasting.evaluation.metrics import conformal_halfwidths, mae, naive_forecast, rmse, seasonal_naive_forecast, smape


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


def test_coverage_width_and_mase_against_hand_computed_values():
    from forecasting.evaluation.metrics import coverage, mase, mean_width, seasonal_naive_scale

    actual = np.array([1.0, 5.0, 10.0, 20.0])
    assert coverage(actual, np.array([0.0, 6.0, 9.0, 10.0]), np.array([2.0, 8.0, 10.0, 30.0])) == 75.0
    assert mean_width(np.array([0.0, 1.0]), np.array([2.0, 5.0])) == 3.0
    history = np.array([1.0, 2.0, 3.0, 5.0, 3.0, 6.0])  # season 2: |3-1|, |5-2|, |3-3|, |6-5| -> mean 1.5
    assert seasonal_naive_scale(history, 2) == 1.5
    assert mase(np.array([[10.0, 12.0]]), np.array([[11.0, 15.0]]), np.array([2.0])) == 1.0  # MAE 2 / 2


def test_accuracy_by_step_scores_each_step_and_all_steps():
    import pandas as pd

    from forecasting.evaluation.metrics import accuracy_by_step

    ts = pd.to_datetime(["2024-01-01", "2024-02-01"])
    forecasts = pd.DataFrame(
        {
            "series_id": ["a", "a", "b", "b"],
            "target_ts": list(ts) * 2,
            "step": [1, 2, 1, 2],
            "yhat": [110.0, 90.0, 10.0, 10.0],
            "yhat_lower_80": [100.0, 95.0, 9.0, 5.0],
            "yhat_upper_80": [120.0, 105.0, 11.0, 15.0],
        }
    )
    actuals = pd.DataFrame({"series_id": ["a", "a", "b", "b", "b"], "ts": list(ts) * 2 + [pd.Timestamp("2024-03-01")], "value": [100.0, 100.0, 10.0, 20.0, 1.0]})
    table = accuracy_by_step(forecasts, actuals, {"a": 10.0, "b": 5.0}, [80]).set_index("step")
    assert table.loc[1, "mae"] == 5.0 and table.loc[2, "mae"] == 10.0
    assert table.loc[2, "rmse"] == pytest.approx(np.sqrt((100 + 100) / 2))
    assert table.loc[1, "smape"] == pytest.approx((200 * 10 / 210 + 0) / 2)
    assert table.loc[2, "mase"] == pytest.approx((10 / 10 + 10 / 5) / 2)
    assert table.loc[1, "coverage_80"] == 100.0 and table.loc[2, "coverage_80"] == 50.0
    assert table.loc[1, "width_80"] == pytest.approx((20 / 10 + 2 / 5) / 2)
    assert table.loc[0, "mae"] == pytest.approx(7.5) and table.loc[0, "coverage_80"] == 75.0 and table.loc[0, "series"] == 2
    assert table.loc[1, "mape"] == pytest.approx((10 + 0) / 2) and table.loc[2, "mape"] == pytest.approx((10 + 50) / 2)
    assert table.loc[0, "points"] == 4 and table.loc[1, "points"] == 2


def test_mape_leaves_out_zero_actuals():
    from forecasting.evaluation.metrics import mape

    assert mape(np.array([100.0, 200.0, 0.0]), np.array([110.0, 150.0, 5.0])) == pytest.approx((10 + 25) / 2)
    assert np.isnan(mape(np.array([0.0]), np.array([1.0])))


def test_baselines_as_forecast_frames():
    import pandas as pd

    from forecasting.model.backtesting import baseline_forecasts

    frames = baseline_forecasts({"a": np.arange(1.0, 13.0)}, {"a": pd.Timestamp("2024-12-01")}, 3, 12, "MS")
    assert frames["naive"]["yhat"].tolist() == [12.0, 12.0, 12.0]
    assert frames["seasonal_naive"]["yhat"].tolist() == [1.0, 2.0, 3.0]
    assert frames["naive"]["target_ts"].tolist() == list(pd.date_range("2025-01-01", periods=3, freq="MS"))
