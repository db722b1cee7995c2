"""Regular grids for many series at once: array work over the whole frame instead of a pandas
group per series (which cost milliseconds a series: most of a 10,000-series run's data preparation).

`regular_frame` gives exactly what `validation.regularize` gave series by series (the loop is kept
as `regular_frame_by_series`, the fallback for frames the array path does not cover, and the
reference a test compares with); `series_slices` splits a sorted long frame into per-series ranges.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# A grid longer than this (one point per frequency step from the earliest to the latest timestamp of
# all series) is left to the series-by-series path rather than allocated.
MAX_GRID_POINTS = 20_000_000


def series_slices(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the runs of equal ids in `ids` (sorted by id)."""
    if not len(ids):
        return np.empty(0, dtype="int64"), np.empty(0, dtype="int64")
    change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(ids)]])
    return starts, ends


def run_codes(ids: pd.Series) -> np.ndarray | None:
    """Integer codes of `ids` numbering its runs of equal values (0, 0, 1, 1, 1, 2 …) when the ids are
    in ascending order with none missing, else None. For sorted ids these are the codes
    `pd.factorize(ids, sort=True)` gives, found by comparing neighbours instead of hashing every row:
    at 12 M rows the hash tables outgrew the caches, so factorizing cost more per series at 100,000
    series than at 10,000."""
    if ids.isna().any():
        return None
    if len(ids) < 2:
        return np.zeros(len(ids), dtype="int64")
    values = None
    if pd.api.types.is_string_dtype(ids.dtype):
        try:
            # Arrow-backed ids (pandas 3's text) hand over their chunks as they are: no copy of 12 M ids.
            arrow = ids.array.__arrow_array__() if isinstance(ids.array, pd.arrays.ArrowStringArray) else pa.array(ids.array)
            values = arrow if isinstance(arrow, pa.ChunkedArray) else pa.chunked_array([arrow])
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeError, OverflowError):  # object ids that are not all (encodable) text
            values = None
    if values is None:  # ids that are not text: hashing, as before
        codes, _ = pd.factorize(ids, sort=True)
        return codes if (codes[1:] >= codes[:-1]).all() else None
    previous, following = values[:-1], values[1:]
    # Arrow compares text by its UTF-8 bytes: the code point order Python's (and pandas') sort uses.
    if pc.any(pc.less(following, previous)).as_py():
        return None
    change = np.asarray(pc.not_equal(following, previous))
    return np.concatenate([[0], np.cumsum(change, dtype="int64")])


def sorted_codes(frame: pd.DataFrame) -> np.ndarray | None:
    """Integer codes of the series ids (in the ids' sorted order) when `frame` is sorted by series_id
    and ts as `sort_values(["series_id", "ts"])` sorts it, with no missing id or time; else None.
    Found on integers: no Python string per row."""
    codes = run_codes(frame["series_id"])
    times = frame["ts"].to_numpy()
    if codes is None or times.dtype.kind != "M" or np.isnat(times).any():
        return None
    if (times[1:] < times[:-1])[codes[1:] == codes[:-1]].any():
        return None
    return codes


def is_sorted(frame: pd.DataFrame) -> bool:
    """Whether `frame` is sorted by series_id and ts (see `sorted_codes`)."""
    return len(frame) < 2 or sorted_codes(frame) is not None


def duplicated_sorted(codes: np.ndarray, times: np.ndarray) -> np.ndarray:
    """`frame.duplicated(["series_id", "ts"], keep="last")` of a frame sorted by series and time
    (`codes` from `sorted_codes`): equal keys are neighbours, so a row is a duplicate when the next one has its key."""
    same = (codes[1:] == codes[:-1]) & (times[1:] == times[:-1])
    return np.append(same, False)


def regular_frame(frame: pd.DataFrame, frequency: str, fits: np.ndarray) -> tuple[pd.DataFrame, int] | None:
    """Every series of `frame` (sorted by series and time, no duplicated keys; `fits`: which rows are
    on the grid) on the regular `frequency` grid from its first to its last on-grid timestamp, missing
    points as NaN rows: (series_id, ts, value columns...) and the number of points filled. None where
    the array path does not apply (a value column that is not float, a grid too long, a timestamp the
    one grid does not hold), so the caller goes series by series. Without a missing point the frame
    shares the input's (possibly read-only) buffers: copy it before writing into it."""
    value_columns = [c for c in frame.columns if c not in ("series_id", "ts")]
    kept = frame if fits.all() else frame.loc[fits]  # no copy of a whole frame that is on the grid
    if kept.empty or any(kept[c].dtype != np.float64 for c in value_columns):
        return None
    offset = pd.tseries.frequencies.to_offset(frequency)
    times = kept["ts"].to_numpy()
    if times.dtype.kind != "M":
        return None
    unit = np.datetime_data(times.dtype)[0]
    first, last = pd.Timestamp(times.min()), pd.Timestamp(times.max())
    step = getattr(offset, "nanos", None) if isinstance(offset, pd.offsets.Tick) else None
    if step and (last - first).value // step > MAX_GRID_POINTS:
        return None
    grid = pd.date_range(first, last, freq=offset, unit=unit)
    if len(grid) > MAX_GRID_POINTS:
        return None
    positions = grid.searchsorted(times)
    if (positions >= len(grid)).any() or (grid.values[positions] != times).any():  # indexing only once every position is in range
        return None
    # Integer codes, not one Python string per row (12 M rows: most of the step's memory); equal ids
    # get equal codes, so the runs of a sorted frame are the same.
    codes = run_codes(kept["series_id"])
    if codes is None:  # not sorted by series after all: the caller goes series by series
        return None
    starts, ends = series_slices(codes)
    first_position, last_position = positions[starts], positions[ends - 1]
    lengths = last_position - first_position + 1
    if int(lengths.sum()) == len(kept):
        # No point missing: the regular frame is the frame itself (the grid's times are its times), not a second copy.
        whole = {"series_id": kept["series_id"].array, "ts": times}
        return pd.DataFrame({**whole, **{c: kept[c].to_numpy(dtype="float64") for c in value_columns}}, copy=False), 0
    out_start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    total = int(lengths.sum())
    series_of_row = np.repeat(np.arange(len(starts)), ends - starts)
    rows = out_start[series_of_row] + positions - first_position[series_of_row]
    within = np.arange(total) - np.repeat(out_start, lengths)
    result = pd.DataFrame(
        {
            "series_id": kept["series_id"].array.take(np.repeat(starts, lengths)),
            "ts": grid.values[np.repeat(first_position, lengths) + within],
        }
    )
    for column in value_columns:
        values = np.full(total, np.nan)
        values[rows] = kept[column].to_numpy()
        result[column] = values
    return result, total - len(kept)


def regular_frame_by_series(frame: pd.DataFrame, frequency: str, fits: np.ndarray) -> tuple[pd.DataFrame, int]:
    """What `regular_frame` gives, one pandas group per series (any dtypes, any grid)."""
    offset = pd.tseries.frequencies.to_offset(frequency)
    value_columns = [c for c in frame.columns if c not in ("series_id", "ts")]
    parts, filled = [], 0
    frame = frame.assign(_fits=fits)
    for series_id, group in frame.groupby("series_id", sort=True):
        on = group["_fits"].to_numpy()
        if not on.any():
            continue
        index = pd.DatetimeIndex(group["ts"])
        grid = pd.date_range(index[on][0], index[on][-1], freq=offset)
        group = group.loc[on].drop(columns="_fits").set_index("ts").reindex(grid)
        filled += int(len(grid) - on.sum())
        group["series_id"] = series_id
        parts.append(group.rename_axis("ts").reset_index())
    if not parts:
        return frame.iloc[0:0].drop(columns="_fits"), 0
    return pd.concat(parts, ignore_index=True)[["series_id", "ts", *value_columns]], filled
