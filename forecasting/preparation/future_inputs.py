"""Covariates known in advance as network inputs: the future block (horizon x future columns) that
goes to the network beside the lookback window. Its columns are the future features and the
columns computed from the timestamps (calendar inputs, holiday inputs), read at the periods the
forecast is for. The target never
enters it, so nothing after a forecast origin leaks into the inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forecasting.errors import InputError
from forecasting.preparation.calendar import timestamp_features
from forecasting.preparation.validation import MAX_LISTED

MAX_LISTED_PERIODS = 5


def future_columns(n_past: int, n_future: int, n_columns: int, holidays: bool = False) -> tuple[int, ...]:
    """The columns of a series' value array known ahead: future features (after the target and the
    `n_past` past-only features), then the columns computed from the timestamps (calendar, holidays),
    when there are future features or holiday inputs (else none: a one-input network)."""
    if not n_future and not holidays:
        return ()
    return tuple(range(1 + n_past, n_columns))


def attach_future(arrays: Any, rows: pd.DataFrame, names: list[str], columns: tuple[int, ...], fill: str = "error") -> Any:
    """`arrays` with their future block inputs: `columns` (see `future_columns`) and, per series, the
    rows after its last observation on the regular grid (`rows`: series_id, ts, the future `names`),
    missing periods as NaN, calendar and holiday columns computed for those periods."""
    arrays.future_columns, arrays.future_fill, arrays.future_count, arrays.future_names = columns, fill, len(names), tuple(names)
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
            block = np.hstack([block, timestamp_features(grid, arrays.frequency, arrays.calendar, arrays.holidays)])
        arrays.future[series_id], arrays.future_timestamps[series_id] = block, grid
    return arrays


def training_blocks(values: np.ndarray, columns: tuple[int, ...], lookback: int, horizon: int) -> np.ndarray:
    """For every window of `windowing.make_windows`, the future columns at its target rows (m x horizon x columns)."""
    count = len(values) - lookback - horizon + 1
    if count <= 0:
        return np.empty((0, horizon, len(columns)))
    known = np.asarray(values, dtype="float64")[:, list(columns)]
    blocks = np.lib.stride_tricks.sliding_window_view(known, horizon, axis=0)[lookback : lookback + count]
    return np.ascontiguousarray(blocks.transpose(0, 2, 1))


def horizon_blocks(arrays: Any, ids: list[str], horizon: int, frequency: str) -> np.ndarray:
    """The future columns for the `horizon` periods after each series' last observation (series x
    horizon x columns), filled per `arrays.future_fill`, or an InputError naming every series whose
    future values are missing (up to MAX_LISTED) with its periods."""
    offset = pd.tseries.frequencies.to_offset(frequency)
    blocks, missing = [], {}
    for sid in ids:
        periods = pd.date_range(arrays.timestamps[sid][-1] + offset, periods=horizon, freq=offset)
        block, absent = _filled_block(arrays, sid, horizon, periods)
        if absent.any():
            missing[sid] = periods[absent]
        blocks.append(block)
    if missing:
        raise InputError(missing_plans(missing, horizon))
    return np.stack(blocks)


def missing_plans(missing: dict[str, pd.DatetimeIndex], horizon: int) -> str:
    """The error for series whose future values are missing: each series (up to MAX_LISTED) and its periods."""
    def one(series_id: str, periods: pd.DatetimeIndex) -> str:
        listed = ", ".join(str(ts) for ts in periods[:MAX_LISTED_PERIODS])
        more = f" and {len(periods) - MAX_LISTED_PERIODS} more" if len(periods) > MAX_LISTED_PERIODS else ""
        return f"series {series_id}: future feature values missing for {len(periods)} of the {horizon} forecast periods ({listed}{more})"

    named = [one(sid, periods) for sid, periods in sorted(missing.items())[:MAX_LISTED]]
    head = f"{len(missing)} series lack future feature values: " if len(missing) > 1 else ""
    tail = f"; and {len(missing) - MAX_LISTED} more series" if len(missing) > MAX_LISTED else ""
    return (
        f"{head}{'; '.join(named)}{tail}. Store rows with them (target empty) in the source (rows stored but unusable "
        "are listed with their reason in the quarantine table), or set source.future_fill"
    )


def _filled_block(arrays: Any, series_id: str, horizon: int, periods: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """A series' future block filled per `arrays.future_fill`, and which periods are missing (all
    False once filled)."""
    block = np.full((horizon, len(arrays.future_columns)), np.nan)
    stored = arrays.future.get(series_id)
    if stored is not None:
        block[: min(horizon, len(stored))] = stored[:horizon]
    if len(arrays.future_columns) > arrays.future_count:  # calendar and holiday columns are known for any period
        block[:, arrays.future_count :] = timestamp_features(periods, arrays.frequency, arrays.calendar, arrays.holidays)
    missing = ~np.isfinite(block).all(axis=1)
    if not missing.any():
        return block, missing
    if arrays.future_fill == "zero":
        return np.where(np.isfinite(block), block, 0.0), np.zeros(horizon, dtype=bool)
    if arrays.future_fill == "last":
        last = np.asarray(arrays.values[series_id], dtype="float64")[-1:, list(arrays.future_columns)]
        filled = pd.DataFrame(np.vstack([last, block])).ffill().to_numpy()[1:]
        return np.where(np.isfinite(filled), filled, 0.0), np.zeros(horizon, dtype=bool)
    return block, missing


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
