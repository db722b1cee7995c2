"""Preparing the history store for a forecast without copies of the whole store (issue 15: 100,000
series under 2 GB): the same arrays and the same forecasts as the row-by-row, sort-everything path."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.preparation import grids, validation
from forecasting.config.settings import SourceConfig
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.preparation.windows import build_arrays
from forecasting.preparation.future_rows import FutureRows, future_mask, last_observed, observed_only, split_future
from forecasting.preparation.validation import regularize
from forecasting.preparation.windows import to_series_arrays
from tests.support.data import promotion_frame, synthetic_frame

COMMITTED_V2 = Path(__file__).parents[1] / "data" / "artifact-v2"


def store_frame(n_series: int = 12, length: int = 48) -> pd.DataFrame:
    """What the history store reads: sorted by series and time, `ts` in microseconds, with a gap, a
    duplicated key and a value that is not finite in a few series."""
    frame = synthetic_frame(n_series=n_series, length=length)
    frame = frame.drop(index=[5, 6, 3 * length + 20])  # gaps
    frame.loc[2 * length + 10, "value"] = np.inf
    frame = pd.concat([frame, frame.iloc[[40]].assign(value=1.0)])  # a duplicated key: the last row wins
    frame = frame.sort_values(["series_id", "ts"], kind="stable").reset_index(drop=True)
    return frame.assign(ts=frame["ts"].astype("datetime64[us]"), series_id=frame["series_id"].astype("str"))


def unsorted(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows out of order (series last to first), a duplicated key's rows still in their order (the last one wins)."""
    return frame.sort_values("series_id", ascending=False, kind="stable").reset_index(drop=True)


def reference_arrays(frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch):
    """The arrays of the slow path: rows out of order, future rows told apart through `FutureRows.mask`, series by series."""
    shuffled = unsorted(frame)
    is_future = FutureRows(last_observed(shuffled), ()).mask(shuffled)
    with monkeypatch.context() as patched:
        patched.setattr(validation, "regular_frame", lambda *args: None)
        return build_arrays(shuffled.loc[~is_future], shuffled.loc[is_future], SourceConfig(frequency="MS"), "MS")


@pytest.mark.parametrize("gaps", [True, False])
def test_forecasts_from_a_sorted_store_equal_the_reference_path_exactly(gaps: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = store_frame() if gaps else synthetic_frame(n_series=12).assign(series_id=lambda f: f["series_id"].astype("str"))
    forecaster = RecurrentForecaster.load(COMMITTED_V2)
    arrays = build_arrays(*split_future(frame), SourceConfig(frequency="MS"), "MS")
    expected = reference_arrays(frame, monkeypatch)
    assert list(arrays.values) == list(expected.values)
    for series_id, values in expected.values.items():
        np.testing.assert_array_equal(arrays.values[series_id], values)
        pd.testing.assert_index_equal(arrays.timestamps[series_id], expected.timestamps[series_id], exact=False)
    pd.testing.assert_frame_equal(forecaster.predict(arrays).forecasts, forecaster.predict(expected).forecasts, check_exact=True)


def test_future_mask_is_the_row_by_row_mask() -> None:
    frame = promotion_frame(n_series=5, length=30, ahead=4)
    frame.loc[frame["series_id"] == "P03", "value"] = np.nan  # a series with no observation: no future rows
    frame.loc[7, "value"] = np.nan  # an empty target before the last observation: not a future row
    frame = pd.concat([frame, pd.DataFrame({"series_id": [None], "ts": [pd.Timestamp("2031-01-01")], "value": [np.nan]})], ignore_index=True)
    frame = frame.sample(frac=1, random_state=1).reset_index(drop=True)
    expected = FutureRows(last_observed(frame), ()).mask(frame)
    assert expected.sum() == 4 * 4
    np.testing.assert_array_equal(future_mask(frame), expected)


def test_a_store_without_future_rows_is_not_copied() -> None:
    frame = store_frame()
    observed, ahead = split_future(frame)
    assert observed is frame and ahead.empty
    assert observed_only(frame) is frame


def test_sorted_and_shuffled_frames_regularise_alike() -> None:
    frame = store_frame()
    assert grids.is_sorted(frame) and not grids.is_sorted(frame.iloc[::-1])
    np.testing.assert_array_equal(
        grids.duplicated_sorted(grids.sorted_codes(frame), frame["ts"].to_numpy()), frame.duplicated(["series_id", "ts"], keep="last").to_numpy()
    )
    regular, report = regularize(frame, "MS")
    assert not grids.is_sorted(unsorted(frame))
    expected, expected_report = regularize(unsorted(frame), "MS")
    pd.testing.assert_frame_equal(regular, expected)
    assert vars(report) == vars(expected_report) and report.duplicate_rows == 1 and report.filled_gaps == 3


def test_preparing_a_sorted_store_makes_no_copy_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The traced peak of splitting, regularising and cutting a sorted, gap-free store into arrays, in
    bytes a row: 133 before (a Python string per row to tell future rows apart, a hash table as long as
    the store for its distinct times, a sort, a dedup copy, a grid frame), now under 60."""
    from forecasting.preparation import validation

    monkeypatch.setattr(validation, "UNIQUE_CHUNK", 10_000)  # as a chunk is to 12 M rows
    series, length = 2000, 60
    frame = synthetic_frame(n_series=series, length=length)
    frame = frame.assign(ts=frame["ts"].astype("datetime64[us]"), series_id=frame["series_id"].astype("str")).sort_values(["series_id", "ts"])
    tracemalloc.start()
    try:
        observed, ahead = split_future(frame)
        to_series_arrays(regularize(observed, "MS")[0], [], "MS")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak / (series * length) < 60, f"{peak / (series * length):.1f} bytes a row"


def test_a_shared_read_of_the_kept_store_is_read_only_views_of_it(tmp_path: Path) -> None:
    """The data preparation reads the store kept in memory without copying its 12 M timestamps and
    values (100,000 series); a write into such a frame raises instead of changing the kept store."""
    from forecasting.history import store as history
    from forecasting.history import cache as history_cache

    history_cache.forget()
    root = history.history_root(tmp_path, "observations")
    history.merge(root, synthetic_frame(n_series=5, length=30))
    shared, again, copied = history.read(root, shared=True), history.read(root, shared=True), history.read(root)
    pd.testing.assert_frame_equal(shared, copied)
    assert np.shares_memory(shared["ts"].to_numpy(), again["ts"].to_numpy())
    assert np.shares_memory(shared["value"].to_numpy(), again["value"].to_numpy())
    assert not np.shares_memory(copied["value"].to_numpy(), shared["value"].to_numpy())
    with pytest.raises(ValueError, match="read-only"):
        shared.loc[0, "value"] = -1.0
    assert history.read(root)["value"].iloc[0] == copied["value"].iloc[0]
    arrays = build_arrays(*split_future(shared), SourceConfig(frequency="MS"), "MS")
    first = arrays.timestamps[arrays.ids[0]]
    assert np.shares_memory(first.values, shared["ts"].to_numpy())  # the arrays' timestamps are views of the store
    history_cache.forget()
