"""`benchmarks.m3 --subset all`: the point average over every forecast point beside the series-weighted mean."""

import pytest

from benchmarks.m3 import combined, rounded


def subset_line(name: str, smape: float, series: int, horizon: int, snaive: float | None = None) -> dict:
    line = {"dataset": f"m3-{name}", "smape": smape, "mase": smape / 10, "mape": smape * 2,
            "scored": {"model": {"series": series, "points": series * horizon}}}
    if snaive is not None:
        line.update(snaive_smape=snaive, snaive_mase=1.0, snaive_mape=snaive)
        line["scored"]["snaive"] = {"series": series, "points": series * horizon}
    return line


def test_the_point_average_weights_each_subset_by_its_forecast_points():
    # 2 series x 6 steps at sMAPE 10, 1 series x 18 steps at sMAPE 20:
    # points (12 * 10 + 18 * 20) / 30 = 16; series (2 * 10 + 1 * 20) / 3 = 13.333; subset means (10 + 20) / 2 = 15.
    lines = [subset_line("yearly", 10.0, 2, 6, snaive=30.0), subset_line("monthly", 20.0, 1, 18, snaive=60.0)]
    result = combined(lines)
    assert result["dataset"] == "m3-all" and result["subsets"] == ["yearly", "monthly"]
    assert result["series"] == 3 and result["points"] == 30
    assert result["point_average"]["smape"] == 16.0 != 15.0
    assert result["point_average"]["mase"] == 1.6 and result["point_average"]["mape"] == 32.0
    assert result["series_weighted"]["smape"] == pytest.approx(13.333)
    assert result["point_average"]["snaive_smape"] == (12 * 30 + 18 * 60) / 30 == 48.0
    assert result["series_weighted"]["snaive_smape"] == pytest.approx(40.0)


def test_a_method_missing_from_a_subset_has_no_average():
    result = combined([subset_line("yearly", 10.0, 2, 6, snaive=30.0), subset_line("monthly", 20.0, 1, 18)])
    assert set(result["point_average"]) == {"smape", "mase", "mape"} == set(result["series_weighted"])


def test_m3_published_point_average_from_the_subset_means():
    # The subset table of benchmarks/results/2026-11-26-m3-subsets.md (model sMAPE, mean of three seeds).
    table = [("yearly", 16.38, 645, 6), ("quarterly", 9.10, 756, 8), ("monthly", 13.53, 1428, 18), ("other", 4.52, 174, 8)]
    result = combined([subset_line(*row) for row in table])
    assert result["points"] == 37014 and result["series"] == 3003
    assert result["point_average"]["smape"] == 12.765  # 472,494.36 / 37,014: 12.77, as issue 24 says
    assert result["series_weighted"]["smape"] == 12.505  # 37,552.02 / 3003: README's "series-weighted 12.51"


def test_printed_metrics_are_rounded_mase_to_four_decimals():
    assert rounded({"smape": 1.23456, "naive_mase": 0.123456, "ets_mape": 9.87654, "series": 3}) == {
        "smape": 1.235, "naive_mase": 0.1235, "ets_mape": 9.877, "series": 3
    }
