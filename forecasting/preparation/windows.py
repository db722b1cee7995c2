"""Long-format frames to per-series arrays, and arrays to (lookback -> horizon) windows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecasting.errors import RunError
from forecasting.preparation.batch_scaling import encode_windows
from forecasting.preparation.calendar import timestamp_features, timestamp_width
from forecasting.preparation.future_inputs import (
    attach_future,
    encode_future,
    future_columns,
    network_inputs,
    training_blocks,
)
from forecasting.preparation.grids import run_codes, series_slices, sorted_codes
from forecasting.preparation.scaling import SeriesScaler, WindowLevels
from forecasting.preparation.validation import (
    fill_gaps,
    infer_frequency,
    on_grid,
    regularize,
)


@dataclass
class SeriesArrays:
    """Regular series: for each id, its timestamps and a (rows x columns) array, column 0 the target."""

    timestamps: dict[str, pd.DatetimeIndex]
    values: dict[str, np.ndarray]
    frequency: str | None = None  # the pandas frequency of the timestamps, where known
    # Covariates known in advance (forecasting.preparation.future_inputs): the columns of `values` known ahead (none: a
    # one-input network), how many of them are future features (the rest: calendar), and per series
    # those columns for the periods after its last observation, and how a missing one is filled.
    future_columns: tuple[int, ...] = ()
    future_count: int = 0
    future: dict[str, np.ndarray] = field(default_factory=dict)
    future_timestamps: dict[str, pd.DatetimeIndex] = field(default_factory=dict)
    future_fill: str = "error"
    future_names: tuple[str, ...] = ()  # the future features' source columns
    # The columns computed from the timestamps, after the features: calendar, then holidays (`calendar.timestamp_features`).
    calendar: bool = False
    holidays: tuple[str, ...] = ()

    @property
    def ids(self) -> list[str]:
        return list(self.values)


def to_series_arrays(
    frame: pd.DataFrame, features: list[str], frequency: str | None = None, calendar: bool = False, holidays: tuple[str, ...] = ()
) -> SeriesArrays:
    """Split a long frame (series_id, ts, value, features...) sorted by series and time into arrays;
    with `calendar`, calendar inputs for `frequency` follow the feature columns, then the holiday
    inputs of `holidays`. Without a `frequency`, the one pandas infers is kept (None where it cannot tell)."""
    if (calendar or holidays) and not frequency:
        raise ValueError("calendar and holiday features need the series frequency")
    if frequency is None and len(frame):
        try:
            frequency = infer_frequency(frame)
        except RunError:
            frequency = None
    columns = ["value", *features]
    timestamps: dict[str, pd.DatetimeIndex] = {}
    values: dict[str, np.ndarray] = {}
    # One sort and one array for all series, then a slice per series: no pandas group per series.
    codes = sorted_codes(frame)  # a regular frame is sorted already: no second copy of it
    if codes is None:
        frame = frame.sort_values(["series_id", "ts"])
        codes = run_codes(frame["series_id"])
        if codes is None:  # a missing id
            codes = pd.factorize(frame["series_id"])[0]
    index = pd.DatetimeIndex(frame["ts"])
    block = frame[columns].to_numpy(dtype="float64")
    if calendar or holidays:
        block = np.hstack([block, timestamp_features(index, frequency, calendar, tuple(holidays))])
    starts, ends = series_slices(codes)  # integer codes, not one Python string per row
    ids = frame["series_id"].array.take(starts)
    for series_id, start, end in zip(ids, starts, ends):
        timestamps[str(series_id)] = index[start:end]
        values[str(series_id)] = block[start:end]
    return SeriesArrays(timestamps=timestamps, values=values, frequency=frequency, calendar=bool(calendar), holidays=tuple(holidays))


def make_windows(values: np.ndarray, lookback: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """All windows of one series: inputs (m, lookback, columns) and targets (m, horizon) from column 0.

    Window i reads rows i .. i+lookback-1 and predicts the target in rows i+lookback .. i+lookback+horizon-1.
    """
    values = np.asarray(values, dtype="float64").reshape(len(values), -1)
    count = len(values) - lookback - horizon + 1
    if count <= 0:
        return np.empty((0, lookback, values.shape[1])), np.empty((0, horizon))
    inputs = np.lib.stride_tricks.sliding_window_view(values, (lookback, values.shape[1]))[:count, 0]
    targets = np.lib.stride_tricks.sliding_window_view(values[:, 0], horizon)[lookback : lookback + count]
    return np.ascontiguousarray(inputs), np.ascontiguousarray(targets)


@dataclass
class WindowSplit:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    val_series: np.ndarray  # series id of each validation window
    val_levels: WindowLevels  # how each validation window's target was scaled (to decode forecasts)
    train_series: np.ndarray  # series id of each training window
    train_target_end: np.ndarray  # timestamp (datetime64) of the last target row of each training window
    f_train: np.ndarray | None = None  # future blocks (windows x horizon x future columns), where the network has them
    f_val: np.ndarray | None = None

    def train_inputs(self, chosen: np.ndarray | None = None) -> Any:
        """The network inputs of the training windows (`chosen` of them, when given)."""
        pick = (lambda a: a) if chosen is None else (lambda a: a[chosen])
        return network_inputs(pick(self.x_train), None if self.f_train is None else pick(self.f_train))

    def val_inputs(self) -> Any:
        """The network inputs of the validation windows."""
        return network_inputs(self.x_val, self.f_val)


def split_windows(
    arrays: SeriesArrays, scaler: SeriesScaler, lookback: int, horizon: int, validation_steps: int
) -> WindowSplit:
    """Scaled windows split in time: a window is for validation when its target reaches into the
    last `validation_steps` rows of its series, for training otherwise. Windows with NaN are dropped.

    The float32 windows go straight into one array per kind, training windows first, validation ones
    after them: `x_train` and `x_val` are views of it, so a refit on all windows (`joined`) gathers
    from it without a copy, and no list of per-batch parts is concatenated (which held them twice)."""
    ids = list(arrays.values)
    columns = next(iter(arrays.values.values())).shape[1] if arrays.values else 1
    known = len(arrays.future_columns)
    train_room, val_room = _window_counts(arrays, lookback, horizon, validation_steps)
    out = _Packed(train_room, val_room, lookback, horizon, columns, known)
    val_series, val_levels, train_series, train_end = [], [], [], []
    # Series in groups: one batch of windows per group bounds the float64 copies held at once.
    for start in range(0, len(ids), SERIES_PER_BATCH):
        part = _split_batch(arrays, ids[start : start + SERIES_PER_BATCH], scaler, lookback, horizon, validation_steps)
        if part is None:
            continue
        x_t, y_t, x_v, y_v, v_series, v_levels, t_series, t_end, f_t, f_v = part
        out.add((x_t, y_t, f_t), (x_v, y_v, f_v))
        for parts, value in zip((val_series, val_levels, train_series, train_end), (v_series, v_levels, t_series, t_end)):
            parts.append(value)
    (x_train, x_val), (y_train, y_val), *future = out.finish()
    return WindowSplit(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        val_series=np.concatenate(val_series) if val_series else np.empty(0, dtype=object),
        val_levels=WindowLevels.concat(val_levels),
        train_series=np.concatenate(train_series) if train_series else np.empty(0, dtype=object),
        train_target_end=np.concatenate(train_end) if train_end else np.empty(0, dtype="datetime64[ns]"),
        f_train=future[0][0] if known else None,
        f_val=future[0][1] if known else None,
    )


def _window_counts(arrays: SeriesArrays, lookback: int, horizon: int, validation_steps: int) -> tuple[int, int]:
    """How many training and validation windows the series have, NaN ones included (an upper bound)."""
    lengths = np.array([len(values) for values in arrays.values.values()], dtype="int64")
    windows = np.maximum(lengths - lookback - horizon + 1, 0)
    # Window i is for validation when i + lookback + horizon - 1 >= length - validation_steps.
    train = np.clip(lengths - validation_steps - lookback - horizon + 1, 0, windows)
    return int(train.sum()), int((windows - train).sum())


class _Packed:
    """Float32 windows, targets and future blocks filled batch by batch: training ones from the front
    of one array per kind, validation ones from a second region, moved up behind them at the end."""

    def __init__(self, train_room: int, val_room: int, lookback: int, horizon: int, columns: int, known: int) -> None:
        self.room, self.used = train_room, [0, 0]
        size = train_room + val_room
        shapes = [(size, lookback, columns), (size, horizon)] + ([(size, horizon, known)] if known else [])
        self.arrays = [np.empty(shape, dtype="float32") for shape in shapes]

    def add(self, train: tuple, val: tuple) -> None:
        """Append one batch's training and validation (windows, targets, future blocks)."""
        for which, parts in enumerate((train, val)):
            at = self.used[which] + (self.room if which else 0)
            for array, part in zip(self.arrays, parts):
                array[at : at + len(parts[0])] = part
            self.used[which] += len(parts[0])

    def finish(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per kind, (training, validation) views of one array holding just them, in that order."""
        train, val = self.used
        out = []
        for array in self.arrays:
            if train < self.room:  # windows with NaN were dropped: close the gap, then give the rest back
                array[train : train + val] = array[self.room : self.room + val]
            if train + val < len(array):
                array.resize((train + val, *array.shape[1:]), refcheck=False)
            out.append((array[:train], array[train:]))
        self.arrays = []
        return out


def joined(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """`np.concatenate([first, second])`, without a copy where they are the two halves of one array
    (as `split_windows` makes a split's training and validation windows)."""
    base = first.base
    if (
        base is not None and second.base is base and isinstance(base, np.ndarray) and base.flags.c_contiguous
        and first.flags.c_contiguous and second.flags.c_contiguous and first.dtype == second.dtype == base.dtype
        and len(base) == len(first) + len(second) and base.shape[1:] == first.shape[1:] == second.shape[1:]
        and first.ctypes.data == base.ctypes.data and second.ctypes.data == base.ctypes.data + first.nbytes
    ):
        return base
    return np.concatenate([first, second])


SERIES_PER_BATCH = 250  # series whose windows are scaled in one batch (its float64 work: about 40 MB)


def _split_batch(
    arrays: SeriesArrays, ids: list[str], scaler: SeriesScaler, lookback: int, horizon: int, validation_steps: int
) -> tuple | None:
    """`split_windows` for the series `ids`, their windows scaled in one batch (forecasting.preparation.batch_scaling:
    the same numbers as scaling each series' windows on its own); None when none has a window."""
    raw_inputs, raw_targets, window_series, window_ticks, window_end, window_val, window_finite = [], [], [], [], [], [], []
    raw_future, known = [], arrays.future_columns
    for series_id in ids:
        values = arrays.values[series_id]
        inputs, targets = make_windows(values, lookback, horizon)
        if not len(inputs):
            continue
        raw_inputs.append(inputs)
        raw_targets.append(targets)
        finite = np.isfinite(inputs).all(axis=(1, 2)) & np.isfinite(targets).all(axis=1)
        if known:
            raw_future.append(training_blocks(values, known, lookback, horizon))
            finite &= np.isfinite(raw_future[-1]).all(axis=(1, 2))
        window_finite.append(finite)
        window_ticks.append(scaler.ticks(arrays.timestamps[series_id])[: len(inputs)])
        window_series.append(np.full(len(inputs), series_id, dtype=object))
        target_end = np.arange(len(inputs)) + lookback + horizon - 1
        window_val.append(target_end >= len(values) - validation_steps)
        window_end.append(arrays.timestamps[series_id].values[target_end])
    if not raw_inputs:
        return None
    series = np.concatenate(window_series)
    inputs, targets, levels = encode_windows(scaler, series, np.concatenate(raw_inputs), np.concatenate(raw_targets), np.concatenate(window_ticks))
    finite = np.concatenate(window_finite) & np.isfinite(inputs).all(axis=(1, 2)) & np.isfinite(targets).all(axis=1)
    is_val = np.concatenate(window_val)
    train, val = finite & ~is_val, finite & is_val
    as32 = lambda values: values.astype("float32")  # noqa: E731 - the split holds float32 windows
    future = encode_future(scaler, series, np.concatenate(raw_future), known) if known else None
    return (
        as32(inputs[train]), as32(targets[train]), as32(inputs[val]), as32(targets[val]), series[val], levels.take(val), series[train],
        np.concatenate(window_end)[train], as32(future[train]) if known else None, as32(future[val]) if known else None,
    )


def build_arrays(
    observed: pd.DataFrame, ahead: pd.DataFrame, source: Any, frequency: str, calendar: bool = False, future: list[str] | None = None,
    holidays: tuple[str, ...] | None = None,
) -> SeriesArrays:
    """`SeriesArrays` from the observations (on the regular grid, gaps per `source.gaps`; the inputs:
    target, `source.features`, the `future` columns (default `source.future_features`), calendar,
    the holiday inputs of `holidays` (default `source.holidays`)) and the future rows `ahead` (see
    `future_rows.split_future`), which only the future features read."""
    future = list(source.future_features if future is None else future)
    holidays = tuple(getattr(source, "holidays", ()) if holidays is None else holidays)
    regular, _ = regularize(observed[["series_id", "ts", "value", *source.features, *future]], frequency)
    arrays = to_series_arrays(fill_gaps(regular, source.gaps), [*source.features, *future], frequency, calendar, holidays)
    if not future and not holidays:
        return arrays
    width = 1 + len(source.features) + len(future) + timestamp_width(frequency, calendar, holidays)
    ahead = ahead.loc[on_grid(ahead["ts"], frequency), ["series_id", "ts", *future]]
    return attach_future(arrays, ahead, future, future_columns(len(source.features), len(future), width, bool(holidays)), source.future_fill)
