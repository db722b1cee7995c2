"""Forecasts far outside a series' observed range are flagged (never changed): the rule and the summary line."""

import numpy as np
import pandas as pd
import pytest

from forecasting.evaluation.sanity import FACTOR, out_of_range, range_bounds


def forecast_frame(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = [(sid, step, yhat) for sid, yhats in values.items() for step, yhat in enumerate(yhats, start=1)]
    return pd.DataFrame(rows, columns=["series_id", "step", "yhat"])


def test_bounds_are_ten_times_the_observed_range_beyond_it():
    assert FACTOR == 10
    assert range_bounds(np.array([0.0, 4.0, 10.0])) == (-100.0, 110.0)  # span 10
    assert range_bounds(np.array([20.0, np.nan, 30.0])) == (-80.0, 130.0)  # NaN left out
    assert range_bounds(np.array([5.0, 5.0])) == (-45.0, 55.0)  # flat: span |5|
    assert range_bounds(np.array([-0.2, -0.2])) == (-10.2, 9.8)  # flat and small: span 1
    assert range_bounds(np.array([0.0, 0.0])) == (-10.0, 10.0)
    assert range_bounds(np.array([np.nan])) is None


def test_inside_on_the_bound_and_just_outside():
    histories = {"a": np.array([0.0, 10.0]), "flat": np.array([5.0, 5.0, 5.0]), "zero": np.zeros(4)}
    inside = forecast_frame({"a": [110.0, -100.0, 50.0], "flat": [55.0, -45.0], "zero": [10.0, -10.0]})
    assert out_of_range(histories, inside) == {}
    outside = forecast_frame({"a": [109.0, 110.5, 200.0], "flat": [5.0, -45.5], "zero": [0.0, 10.01]})
    assert out_of_range(histories, outside) == {
        "a": "yhat 200 at step 3 (observed 0 to 10)",  # the farthest of its forecasts out
        "flat": "yhat -45.5 at step 2 (observed 5 to 5)",
        "zero": "yhat 10.01 at step 2 (observed 0 to 0)",
    }


def test_series_without_a_finite_history_and_empty_frames_are_not_flagged():
    histories = {"none": np.array([np.nan, np.nan]), "empty": np.array([]), "a": np.array([1.0, 2.0])}
    frame = forecast_frame({"none": [1e9], "empty": [1e9], "unknown": [1e9], "a": [np.nan, 1.5]})
    assert out_of_range(histories, frame) == {}
    assert out_of_range(histories, frame.iloc[:0]) == {}


def test_the_run_summary_counts_and_names_them():
    from forecasting.steps import ForecastSummary, ModeDecision, RunSummary, Writes, format_summary, summary_json

    base = dict(
        staged="s.parquet", version=1, series_read=3, rows_read=90, series_forecast=3, series_skipped=0, skipped_examples={},
        series_constant=0, constant_examples={}, series_stale=0, stale_examples={}, origins=["2024-01-01"], frequency="MS", horizon=6,
    )
    examples = {"A": "yhat 1520 at step 3 (observed 4 to 120)"}
    flagged = ForecastSummary(**base, series_out_of_range=1, out_of_range_examples=examples)
    summary = RunSummary("r1", "m", ModeDecision("forecast", "forecast"), flagged, Writes(18, 18)).as_dict()
    assert summary["series_out_of_range"] == 1 and summary["out_of_range_examples"] == examples and summary["range_factor"] == 10
    assert '"series_out_of_range": 1' in summary_json(summary)
    text = format_summary(summary)
    assert "  forecasts far out of range: 1 series forecast more than 10x their observed range beyond it" in text
    assert "    out of range A: yhat 1520 at step 3 (observed 4 to 120)" in text
    clean = RunSummary("r1", "m", ModeDecision("forecast", "forecast"), ForecastSummary(**base), Writes(18, 18)).as_dict()
    assert clean["series_out_of_range"] == 0 and "out of range" not in format_summary(clean)


@pytest.mark.parametrize("yhat, flagged", [(1e6, True), (-1e6, True), (121.0, False)])
def test_a_large_history_keeps_its_own_scale(yhat, flagged):
    histories = {"big": np.linspace(100.0, 110.0, 30)}  # range 10: bounds 0 to 210
    assert bool(out_of_range(histories, forecast_frame({"big": [yhat]}))) is flagged
