"""The array path of `validation.regularize` (forecasting.preparation.grids) gives exactly what the
series-by-series path gives, on messy frames of several frequencies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.preparation import grids, validation
from forecasting.preparation.validation import on_grid, regularize
from forecasting.preparation.windows import to_series_arrays


def messy_frame(frequency: str, seed: int = 1, series: int = 40, length: int = 30) -> pd.DataFrame:
    """Series with gaps, rows off the grid, a series wholly off it, inf and NaN values, duplicated keys, shuffled."""
    rng = np.random.default_rng(seed)
    offset = pd.tseries.frequencies.to_offset(frequency)
    rows = []
    for i in range(series):
        grid = pd.date_range(pd.Timestamp("2020-01-01") + int(rng.integers(0, 10)) * offset, periods=length, freq=frequency)
        stamps = list(grid[rng.random(length) > 0.15])
        if i % 7 == 0:
            stamps.append(grid[3] + pd.Timedelta("3h"))
        if i % 11 == 0:
            stamps = [stamp + pd.Timedelta("1min") for stamp in stamps]
        values = rng.normal(100, 10, len(stamps))
        if i % 5 == 0:
            values[0] = np.inf
        if i % 6 == 0:
            values[1] = np.nan
        rows += [(f"s{i:03d}" if i % 3 else f"a{i}", stamp, value, value * 2) for stamp, value in zip(stamps, values)]
    frame = pd.DataFrame(rows, columns=["series_id", "ts", "value", "feature"])
    frame = pd.concat([frame, frame.iloc[:5].assign(value=1.0)])
    return frame.sample(frac=1, random_state=seed).reset_index(drop=True)


@pytest.mark.parametrize("frequency", ["MS", "ME", "QS", "W-MON", "D", "B", "h", "15min"])
def test_array_path_matches_series_by_series(frequency: str, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = messy_frame(frequency)
    results = []
    array_path = grids.regular_frame
    monkeypatch.setattr(validation, "regular_frame", lambda *args: results.append(array_path(*args)) or results[-1])
    regular, report = regularize(frame, frequency)
    assert len(results) == 1 and results[0] is not None  # the array path gave this result

    monkeypatch.setattr(validation, "regular_frame", lambda *args: None)  # the series-by-series path
    expected, expected_report = regularize(frame, frequency)

    pd.testing.assert_frame_equal(regular, expected)
    assert vars(report) == vars(expected_report)
    assert report.filled_gaps > 0 and report.off_frequency_rows > 0 and report.duplicate_rows >= 5


def test_series_arrays_are_each_series_rows_in_time_order() -> None:
    regular, _ = regularize(messy_frame("MS"), "MS")
    arrays = to_series_arrays(regular.sample(frac=1, random_state=2), ["feature"], "MS", calendar=True)
    assert list(arrays.values) == sorted(regular["series_id"].unique())
    for series_id, values in arrays.values.items():
        rows = regular[regular["series_id"] == series_id].sort_values("ts")
        pd.testing.assert_index_equal(arrays.timestamps[series_id], pd.DatetimeIndex(rows["ts"], name="ts"))
        np.testing.assert_array_equal(values[:, :2], rows[["value", "feature"]].to_numpy())
        assert values.shape[1] == 4  # month of year as a sine/cosine pair


def test_grid_too_long_goes_series_by_series(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grids, "MAX_GRID_POINTS", 10)
    frame = messy_frame("D")
    ordered = frame.drop_duplicates(["series_id", "ts"], keep="last").sort_values(["series_id", "ts"])
    assert grids.regular_frame(ordered, "D", on_grid(ordered["ts"], "D")) is None
    regular, _ = regularize(frame, "D")
    assert len(regular) and regular["series_id"].nunique() == 36


def test_series_ids_keep_their_type(monkeypatch: pytest.MonkeyPatch) -> None:
    stamps = pd.to_datetime(["2020-01-01", "2020-03-01", "2020-02-01", "2020-01-01", "2020-04-01"])
    for ids in ([3, 3, 3, 1, 1], ["b", "b", "b", "a", "a"]):
        frame = pd.DataFrame({"series_id": ids, "ts": stamps, "value": [1.0, 2, 3, 4, 5]})
        regular, _ = regularize(frame, "MS")
        monkeypatch.setattr(validation, "regular_frame", lambda *args: None)
        expected, _ = regularize(frame, "MS")
        monkeypatch.undo()
        pd.testing.assert_frame_equal(regular, expected)
        assert len(regular) == 7


def test_run_codes_are_factorize_codes_of_sorted_ids_and_none_for_unsorted_or_missing() -> None:
    import pyarrow as pa

    from forecasting.preparation.grids import run_codes

    rng = np.random.default_rng(0)
    names = ["a", "b", "B", "ä", "a1", "10", "9", "z"]
    for trial in range(200):
        ids = rng.choice(names, size=int(rng.integers(0, 30)))
        ids = np.sort(ids) if trial % 2 else ids
        for series in (pd.Series(ids, dtype=str), pd.Series(ids, dtype=object)):
            codes = run_codes(series)
            in_order = series.sort_values(kind="stable").index.equals(series.index)
            assert (codes is not None) == in_order, list(series)
            if codes is not None:
                np.testing.assert_array_equal(codes, pd.factorize(series, sort=True)[0])
    assert run_codes(pd.Series(["a", None, "b"], dtype=str)) is None
    chunked = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([["a", "a"], ["a", "b"]])))
    np.testing.assert_array_equal(run_codes(chunked), [0, 0, 0, 1])
