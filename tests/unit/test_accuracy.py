"""The pure live-accuracy arithmetic: scales, seasonal naive from an origin, what needs scoring, live figures."""

import numpy as np
import pandas as pd
import pytest

from forecasting.evaluation.live_accuracy import insample_scales, live_accuracy, needs_scoring, score_rows, seasonal_naive_values, summary_figures
from forecasting.evaluation.metrics import seasonal_naive_scale


def series(values, sid="a", start="2020-01-01"):
    return pd.DataFrame({"series_id": sid, "ts": pd.date_range(start, periods=len(values), freq="MS"), "value": np.asarray(values, float)})


def test_insample_scale_equals_the_evaluation_scale_up_to_the_origin_and_uses_lag_1_when_short():
    rng = np.random.default_rng(1)
    values = rng.uniform(10, 20, 40)
    history = pd.concat([series(values), series(values[:8], sid="short")])
    origins = pd.DataFrame({"series_id": ["a", "a", "short"], "forecast_origin": pd.to_datetime(["2022-06-01", "2023-04-01", "2020-08-01"])})
    scales = insample_scales(history, origins, "MS", 12)
    assert scales[0] == pytest.approx(seasonal_naive_scale(values[:30], 12))
    assert scales[1] == pytest.approx(seasonal_naive_scale(values[:40], 12))
    assert scales[2] == pytest.approx(seasonal_naive_scale(values[:8], 12)) == pytest.approx(np.mean(np.abs(np.diff(values[:8]))))


def test_seasonal_naive_repeats_the_last_full_season_and_falls_back_to_the_origin_value():
    history = series(np.arange(30.0))  # value = month index
    rows = pd.DataFrame({
        "series_id": "a", "forecast_origin": pd.Timestamp("2021-06-01"),  # index 17
        "target_ts": pd.date_range("2021-07-01", periods=14, freq="MS"), "step": range(1, 15),
    })
    naive = seasonal_naive_values(history, rows, "MS", 12)
    # Steps 1-12: a season before the target (index 18-12 = 6 ...); 13-14: two seasons before.
    assert list(naive) == [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 6, 7]
    early = rows.assign(forecast_origin=pd.Timestamp("2020-03-01"), target_ts=pd.date_range("2020-04-01", periods=14, freq="MS"))
    assert seasonal_naive_values(history, early, "MS", 12)[0] == 2.0  # no value a season back: naive
    assert list(seasonal_naive_values(history, rows, "MS", 1)) == [17.0] * 14


def test_what_needs_scoring_new_revised_rewritten_and_gone():
    history = series([1.0, 2.0, 3.0, 4.0])
    base = {"model_name": "m", "model_version": 1, "series_id": "a", "forecast_origin": pd.Timestamp("2020-01-01"), "step": 1}
    candidates = pd.DataFrame([
        {**base, "target_ts": pd.Timestamp("2020-02-01"), "yhat": 2.5, "scored_yhat": np.nan, "scored_actual": np.nan},  # new
        {**base, "target_ts": pd.Timestamp("2020-03-01"), "yhat": 2.5, "scored_yhat": 2.5, "scored_actual": 3.0},  # done
        {**base, "target_ts": pd.Timestamp("2020-04-01"), "yhat": 2.5, "scored_yhat": 2.5, "scored_actual": 9.0},  # revised
        {**base, "target_ts": pd.Timestamp("2020-03-01"), "yhat": 7.0, "scored_yhat": 2.5, "scored_actual": 3.0,
         "forecast_origin": pd.Timestamp("2019-12-01")},  # rewritten forecast
        {**base, "target_ts": pd.Timestamp("2020-05-01"), "yhat": 2.5, "scored_yhat": 2.5, "scored_actual": 5.0},  # actual gone
        {**base, "target_ts": pd.Timestamp("2020-06-01"), "yhat": 2.5, "scored_yhat": np.nan, "scored_actual": np.nan},  # pending
    ])
    todo, gone = needs_scoring(candidates, history)
    assert list(todo.target_ts.dt.month) == [2, 4, 3] and list(gone.target_ts.dt.month) == [5]


def test_scored_rows_hold_errors_flags_and_the_baseline():
    history = series([10.0] * 12 + [20.0])
    rows = pd.DataFrame([{
        "model_name": "m", "model_version": 1, "series_id": "a", "forecast_origin": pd.Timestamp("2020-12-01"),
        "target_ts": pd.Timestamp("2021-01-01"), "step": 1, "yhat": 15.0, "yhat_lower_80": 14.0, "yhat_upper_80": 16.0,
        "yhat_lower_95": 5.0, "yhat_upper_95": 25.0,
    }])
    scored = score_rows(rows, history, "MS", 12).iloc[0]
    assert (scored.actual, scored.error, scored.abs_error) == (20.0, 5.0, 5.0)
    assert scored.smape_term == pytest.approx(200 * 5 / 35) and scored.naive_yhat == 10.0  # seasonal naive: 2020-01
    # A constant in-sample history has no scale: the scaled error is left out (NaN), never infinite.
    assert scored.scale == 0.0 and np.isnan(scored.scaled_error) and np.isnan(scored.naive_scaled_error)
    assert not scored.inside_80 and scored.inside_95


def test_live_accuracy_reads_the_latest_window_and_summary_figures_the_coverage():
    errors = pd.DataFrame({
        "target_ts": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-02-01", "2020-03-01"]),
        "smape_term": [100.0, 10.0, 20.0, 30.0], "naive_smape_term": [1.0, 20.0, 20.0, 20.0],
        "scaled_error": [1.0, 0.5, 0.5, 1.0], "naive_scaled_error": [1.0, 1.0, 1.0, 1.0],
        "abs_error": [1.0, 1.0, 1.0, 1.0], "naive_abs_error": [2.0, 2.0, 2.0, 2.0],
        "inside_80": [True, False, True, None], "inside_95": [True, True, True, True],
    })
    live = live_accuracy(errors, "smape", 2)
    assert (live.score, live.naive_score, live.periods, live.rows) == (20.0, 20.0, 2, 3)
    assert (live.first_target, live.last_target) == ("2020-02-01", "2020-03-01")
    assert live_accuracy(errors, "smape", 0) is None and live_accuracy(errors.iloc[:0], "mase", 3) is None
    figures = summary_figures(errors)
    assert figures["coverage_80"] == pytest.approx(200 / 3) and figures["coverage_95"] == 100.0 and figures["naive_mae"] == 2.0


def test_the_run_summary_and_the_live_artifact_name_the_figures_and_the_report():
    from forecasting.steps.scoring import live_markdown
    from forecasting.steps.summaries import accuracy_line

    live = {
        "version": 1, "periods": 2, "rows": 600, "first_target": "2026-01-01", "last_target": "2026-02-01", "smape": 12.31,
        "naive_smape": 16.69, "mase": 0.615, "naive_mase": 0.943, "mae": 10.0, "naive_mae": 14.0, "coverage_80": 71.0, "coverage_95": None,
    }
    summary = {"model": "monthly", "accuracy": {"scoring": {"scored": 300, "rescored": 0, "removed": 0, "total": 600}, "live": live, "report": "r.html"}}
    markdown = live_markdown(summary)
    assert "report `r.html`" in markdown and "| sMAPE | 12.310 | 16.690 |" in markdown and "| coverage 95% | n/a | nominal 95 |" in markdown
    line = accuracy_line(summary["accuracy"])
    assert "over 2 target periods (2026-01-01 to 2026-02-01, 600 rows): sMAPE 12.31 (seasonal naive 16.69)" in line and "95% n/a" in line
    assert live_markdown({"model": "m", "accuracy": None}) is None


def test_the_summary_says_why_there_are_no_live_figures_when_the_champion_just_changed():
    """Issue 27.8e: the second run promoted a new version; its live figures are not there yet: said, not left out."""
    from forecasting.steps.summaries import accuracy_line

    accuracy = {"scoring": {"scored": 14, "rescored": 0, "removed": 0, "total": 28}, "live": None, "report": "r.html"}
    promoted = {"champion_version": 2, "training": {"version": 2, "promoted": True}}
    line = accuracy_line(accuracy, promoted)
    assert "live accuracy of v2: none yet (it became the champion in this run" in line and line.endswith("report: r.html")
    kept = accuracy_line(accuracy, {"champion_version": 1, "training": {"version": 2, "promoted": False}})
    assert "live accuracy of v1: none yet (none of its forecasts has met its actual yet)" in kept

