"""The training path's windows held once: the same float32 windows, in the same order, as the per-batch
parts concatenated (what `split_windows` built before), a refit on all windows without a copy of them,
and the same trained weights as training on concatenated copies of the windows."""

import tracemalloc

import numpy as np
import pytest

from forecasting.preparation import windows as windowing
from forecasting.config.settings import ModelConfig, SourceConfig
from forecasting.preparation.windows import build_arrays
from forecasting.preparation.future_rows import split_future
from forecasting.model.network import build_model
from forecasting.preparation.scaling import WindowLevels
from forecasting.model.training import all_inputs, fit_scaler, future_width, set_determinism, split_for_training, train, training_schedule
from forecasting.model.fitting import best_epoch, fit_windows
from forecasting.model.weighting import series_weights
from forecasting.preparation.windows import SeriesArrays, WindowSplit, joined, split_windows, to_series_arrays
from tests.support.data import TINY_MODEL, promotion_frame, synthetic_frame


def concatenated_split(arrays: SeriesArrays, scaler, lookback: int, horizon: int, validation_steps: int) -> WindowSplit:
    """`split_windows` as it was: the per-batch parts in lists, concatenated at the end."""
    parts: list[list] = [[] for _ in range(10)]
    ids = list(arrays.values)
    for start in range(0, len(ids), windowing.SERIES_PER_BATCH):
        part = windowing._split_batch(arrays, ids[start : start + windowing.SERIES_PER_BATCH], scaler, lookback, horizon, validation_steps)
        if part is not None:
            for kind, value in zip(parts, part):
                kind.append(value)
    x_train, y_train, x_val, y_val, val_series, val_levels, train_series, train_end, f_train, f_val = parts
    known = bool(arrays.future_columns)
    return WindowSplit(
        np.concatenate(x_train).astype("float32"), np.concatenate(y_train).astype("float32"),
        np.concatenate(x_val).astype("float32"), np.concatenate(y_val).astype("float32"),
        np.concatenate(val_series), WindowLevels.concat(val_levels), np.concatenate(train_series), np.concatenate(train_end),
        np.concatenate(f_train).astype("float32") if known else None, np.concatenate(f_val).astype("float32") if known else None,
    )


def gappy_arrays() -> SeriesArrays:
    """Series of different lengths, one too short for any window, NaN values that drop windows."""
    frame = synthetic_frame(n_series=7, length=40, seed=3)
    frame = frame[~((frame["series_id"] == frame["series_id"].iloc[0]) & (frame.groupby("series_id").cumcount() >= 30))]
    frame = frame[~((frame["series_id"] == frame["series_id"].iloc[-1]) & (frame.groupby("series_id").cumcount() >= 10))]
    frame = frame.reset_index(drop=True)
    frame.loc[[5, 95, 200], "value"] = np.nan
    return to_series_arrays(frame, [], "MS", calendar=True)


def promo_arrays() -> SeriesArrays:
    observed, ahead = split_future(promotion_frame(n_series=6, length=40, ahead=6))
    return build_arrays(observed, ahead, SourceConfig(future_features=["promo"], frequency="MS"), "MS", True)


def assert_same_split(new: WindowSplit, old: WindowSplit) -> None:
    for name in ("x_train", "y_train", "x_val", "y_val", "f_train", "f_val", "val_series", "train_series", "train_target_end"):
        a, b = getattr(new, name), getattr(old, name)
        if b is None:
            assert a is None, name
            continue
        assert a.dtype == b.dtype and a.shape == b.shape and a.flags.c_contiguous, name
        assert a.tobytes() == b.tobytes() if a.dtype != object else (a == b).all(), name
    for name in ("loc", "scale", "log"):
        np.testing.assert_array_equal(getattr(new.val_levels, name), getattr(old.val_levels, name))


@pytest.mark.parametrize("make", [gappy_arrays, promo_arrays], ids=["nan-gaps-calendar", "future-block"])
@pytest.mark.parametrize("deseasonalize", [False, True])
def test_packed_windows_are_the_concatenated_batches_byte_for_byte(make, deseasonalize, monkeypatch):
    monkeypatch.setattr(windowing, "SERIES_PER_BATCH", 2)  # several batches, some with dropped windows
    arrays = make()
    config = ModelConfig(**{**TINY_MODEL, "deseasonalize": deseasonalize, "season": 12, "normalization": "window_log"})
    scaler = fit_scaler(arrays, config, 12)
    new = split_windows(arrays, scaler, config.lookback, config.horizon, config.horizon)
    old = concatenated_split(arrays, scaler, config.lookback, config.horizon, config.horizon)
    assert_same_split(new, old)
    every = all_inputs(new)
    expected = np.concatenate([old.x_train, old.x_val])
    got = every if old.f_train is None else every[0]
    assert got.tobytes() == expected.tobytes()
    if old.f_train is not None:
        assert every[1].tobytes() == np.concatenate([old.f_train, old.f_val]).tobytes()


def test_a_refit_reads_all_windows_from_the_split_without_a_copy():
    arrays = gappy_arrays()
    config = ModelConfig(**TINY_MODEL)
    split = split_windows(arrays, fit_scaler(arrays, config), config.lookback, config.horizon, config.horizon)
    every = joined(split.x_train, split.x_val)
    assert np.shares_memory(every, split.x_train) and np.shares_memory(every, split.x_val)
    assert np.shares_memory(joined(split.y_train, split.y_val), split.y_val)
    apart = [np.ones((2, 3)), np.zeros((1, 3))]
    np.testing.assert_array_equal(joined(*apart), np.concatenate(apart))


def test_split_windows_holds_its_windows_once_not_twice(monkeypatch):
    monkeypatch.setattr(windowing, "SERIES_PER_BATCH", 5)  # the float64 batch work small beside the windows
    frame = synthetic_frame(n_series=400, length=120, seed=1)
    arrays = to_series_arrays(frame, [], "MS")
    config = ModelConfig(**{**TINY_MODEL, "lookback": 24, "horizon": 18})
    scaler = fit_scaler(arrays, config)
    tracemalloc.start()
    try:
        split = split_windows(arrays, scaler, 24, 18, 18)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    windows = sum(getattr(split, name).nbytes for name in ("x_train", "y_train", "x_val", "y_val"))
    # Above what the split keeps: before, the per-batch parts and their concatenation were held
    # together (a whole second copy of the windows); now one batch's work at a time.
    assert peak - kept < 0.5 * windows


def plain_arrays() -> SeriesArrays:
    return to_series_arrays(synthetic_frame(n_series=6, length=48, seed=2), [], "MS")


@pytest.mark.slow
@pytest.mark.parametrize("make", [plain_arrays, promo_arrays], ids=["one-input", "future-block"])
def test_training_gives_the_weights_of_training_on_concatenated_window_copies(make):
    arrays = make()
    config = ModelConfig(
        **{**TINY_MODEL, "epochs": 2, "min_epochs": 0, "deseasonalize": True, "season": 12, "series_weighting": 0.5,
           "ensemble": {"members": 2}, "refit": True}
    )
    trained = train(arrays, config, season=12)
    # The steps of `train` as they were, each on its own concatenated copies of the windows.
    scaler = fit_scaler(arrays, config, 12)
    split = concatenated_split(arrays, scaler, config.lookback, config.horizon, config.horizon)
    weights = series_weights(arrays, config.horizon, 12, config.series_weighting)
    set_determinism(config.seed, config.deterministic)
    model = build_model(config, n_inputs=split.x_train.shape[2], n_future=future_width(split))
    history = fit_windows(model, split, split.train_inputs(), split.y_train.copy(), training_schedule(config, 0), weights, split.train_series)
    final_scaler = scaler.copy()
    final_scaler.factors = {}
    final_scaler.fit_seasonal(arrays.values, arrays.timestamps, {}, scaler.frequency, scaler.season)
    every = concatenated_split(arrays, final_scaler, config.lookback, config.horizon, config.horizon)
    set_determinism(config.seed, config.deterministic)
    final = build_model(config, n_inputs=every.x_train.shape[2], n_future=future_width(every))
    windows = np.concatenate([every.x_train, every.x_val])
    inputs = windows if every.f_train is None else [windows, np.concatenate([every.f_train, every.f_val])]
    fit_windows(
        final, None, inputs, np.concatenate([every.y_train, every.y_val]),
        training_schedule(config, 0, best_epoch(history, config.min_epochs)), weights, np.concatenate([every.train_series, every.val_series]),
    )
    for got, expected in zip(trained.holdout_network.get_weights(), model.get_weights()):
        assert got.tobytes() == expected.tobytes()
    for got, expected in zip(trained.network.get_weights(), final.get_weights()):
        assert got.tobytes() == expected.tobytes()
    assert trained.report.details["refit"]["windows"] == len(split.x_train) + len(split.x_val)
    assert split_for_training(arrays, scaler, config).x_train.tobytes() == split.x_train.tobytes()
