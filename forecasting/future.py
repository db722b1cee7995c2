"""Covariates known in advance as network inputs: the future block (horizon x future columns) that
goes to the network beside the lookback window. Its columns are the future features and, with
calendar inputs, the calendar columns, read at the periods the forecast is for. The target never
enters it, so nothing after a forecast origin leaks into the inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forecasting.errors import InputError

MAX_LISTED_PERIODS = 5


def future_columns(n_past: int, n_future: int, n_columns: int, calendar: bool) -> tuple[int, ...]:
    """The columns of a series' value array known ahead: future features (after the target and the
    `n_past` past-only features), then the calendar columns when there are future features."""
    if not n_future:
        return ()
    first = 1 + n_past
    return tuple(range(first, first + n_future)) + (tuple(range(first + n_future, n_columns)) if calendar else ())


def attach_future(arrays: Any, rows: pd.DataFrame, names: list[str], columns: tuple[int, ...], fill: str = "error") -> Any:
    """`arrays` with their future block inputs: `columns` (see `future_columns`) and, per series, the
    rows after its last observation on the regular grid (`rows`: series_id, ts, the future `names`),
    missing periods as NaN, calendar columns computed for those periods."""
    from forecasting.windowing import calendar_features

    arrays.future_columns, arrays.future_fill, arrays.future_count = columns, fill, len(names)
    if not columns:
        return arrays
    offset = pd.tseries.frequencies.to_offset(arrays.frequency)
    grouped = {str(sid): group for sid, group in rows.groupby("series_id", sort=False)} if len(rows) else {}
    for series_id, index in arrays.timestamps.items():
        group = grouped.get(series_id)
        if group is None or not len(index):
            continue
        grid = pd.date_range(index[-1] + offset, group["ts"].max(), freq=offset)
        block = group.set_index("ts")[names].reindex(grid).to_numpy(dtype="float64")
        if len(columns) > len(names):
            block = np.hstack([block, calendar_features(grid, arrays.frequency)])
        arrays.future[series_id], arrays.future_timestamps[series_id] = block, grid
    return arrays


def build_arrays(
    observed: pd.DataFrame, ahead: pd.DataFrame, source: Any, frequency: str, calendar: bool = False, future: list[str] | None = None
) -> Any:
    """`SeriesArrays` from the observations (on the regular grid, gaps per `source.gaps`; the inputs:
    target, `source.features`, the `future` columns (default `source.future_features`), calendar)
    and the future rows `ahead` (see `future_rows.split_future`), which only the future inputs read."""
    from forecasting.validation import fill_gaps, on_grid, regularize
    from forecasting.windowing import calendar_features, to_series_arrays

    future = list(source.future_features if future is None else future)
    regular, _ = regularize(observed[["series_id", "ts", "value", *source.features, *future]], frequency)
    arrays = to_series_arrays(fill_gaps(regular, source.gaps), [*source.features, *future], frequency, calendar)
    if not future:
        return arrays
    width = 1 + len(source.features) + len(future) + (calendar_features(pd.DatetimeIndex([]), frequency).shape[1] if calendar else 0)
    ahead = ahead.loc[on_grid(ahead["ts"], frequency), ["series_id", "ts", *future]]
    return attach_future(arrays, ahead, future, future_columns(len(source.features), len(future), width, calendar), source.future_fill)


def training_blocks(values: np.ndarray, columns: tuple[int, ...], lookback: int, horizon: int) -> np.ndarray:
    """For every window of `windowing.make_windows`, the future columns at its target rows (m x horizon x columns)."""
    count = len(values) - lookback - horizon + 1
    if count <= 0:
        return np.empty((0, horizon, len(columns)))
    known = np.asarray(values, dtype="float64")[:, list(columns)]
    blocks = np.lib.stride_tricks.sliding_window_view(known, horizon, axis=0)[lookback : lookback + count]
    return np.ascontiguousarray(blocks.transpose(0, 2, 1))


def horizon_block(arrays: Any, series_id: str, horizon: int, periods: pd.DatetimeIndex) -> np.ndarray:
    """The future columns for the `horizon` periods after a series' last observation (horizon x
    columns), filled per `arrays.future_fill`, or an InputError naming the series and the periods missing."""
    block = np.full((horizon, len(arrays.future_columns)), np.nan)
    stored = arrays.future.get(series_id)
    if stored is not None:
        block[: min(horizon, len(stored))] = stored[:horizon]
    if len(arrays.future_columns) > arrays.future_count:  # calendar columns are known for any period
        from forecasting.windowing import calendar_features

        block[:, arrays.future_count :] = calendar_features(periods, arrays.frequency)
    missing = ~np.isfinite(block).all(axis=1)
    if not missing.any():
        return block
    if arrays.future_fill == "zero":
        return np.where(np.isfinite(block), block, 0.0)
    if arrays.future_fill == "last":
        last = np.asarray(arrays.values[series_id], dtype="float64")[-1:, list(arrays.future_columns)]
        filled = pd.DataFrame(np.vstack([last, block])).ffill().to_numpy()[1:]
        return np.where(np.isfinite(filled), filled, 0.0)
    listed = ", ".join(str(ts) for ts in periods[missing][:MAX_LISTED_PERIODS])
    more = f" and {int(missing.sum()) - MAX_LISTED_PERIODS} more" if missing.sum() > MAX_LISTED_PERIODS else ""
    raise InputError(
        f"series {series_id}: future feature values missing for {int(missing.sum())} of the {horizon} forecast periods "
        f"({listed}{more}); store rows with them (target empty) in the source, or set source.future_fill"
    )


def encode_future(scaler: Any, series_ids: np.ndarray, blocks: np.ndarray, columns: tuple[int, ...]) -> np.ndarray:
    """Future blocks scaled as those columns are in the lookback window (each series' location and scale)."""
    blocks = np.asarray(blocks, dtype="float64")
    if not len(blocks):
        return blocks
    distinct, inverse = np.unique(np.asarray(series_ids, dtype=object), return_inverse=True)
    inverse, picked = inverse.ravel(), list(columns)
    loc = np.stack([scaler.loc[sid][picked] for sid in distinct])[inverse]
    scale = np.stack([scaler.scale[sid][picked] for sid in distinct])[inverse]
    return (blocks - loc[:, None, :]) / scale[:, None, :]


def network_inputs(window: np.ndarray, future: np.ndarray | None) -> Any:
    """What the network is called with: the window alone, or the window and the future block."""
    return window if future is None else [np.asarray(window, dtype="float32"), np.asarray(future, dtype="float32")]
