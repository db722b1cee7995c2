"""How long a training will take, before it runs (`forecasting check`): a short calibration builds the
network the config trains, times a few batches of the real training windows and one validation pass,
and scales them to a whole training.

The estimate counts the epochs early stopping likely runs (`defaults.likely_epochs`) and, at most,
all `epochs`; with `refit`, the second network trained on all windows for the epoch kept; and the
fixed work: the windows, each network's build and first-step tracing, the report's validation pass.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from forecasting.config.model_settings import ModelConfig
from forecasting.model.defaults import likely_epochs
from forecasting.model.fitting import member_weights
from forecasting.model.input_pipeline import shuffled_batches, validation_batch_size
from forecasting.model.network import build_model, member_targets
from forecasting.model.training import TRAINING_LOCK, fit_scaler, future_width, set_determinism, split_for_training
from forecasting.model.weighting import series_weights, window_weights
from forecasting.preparation.future_inputs import network_inputs
from forecasting.preparation.windows import SeriesArrays

TRAIN_BATCHES = 12  # training batches timed (fewer when an epoch has fewer)
VALIDATION_BATCHES = 3  # validation batches timed


@dataclass(frozen=True)
class TrainingEstimate:
    """A training's time from a calibration: per batch and epoch, and the fixed work around them."""

    train_windows: int
    val_windows: int
    batch_size: int
    epochs: int
    likely_run: int  # the epochs early stopping likely runs
    likely_kept: int  # the epoch it likely keeps: the refit's epoch count
    refit: bool
    batch_seconds: float  # one training batch, once traced
    validation_seconds: float  # one epoch's validation pass
    epoch_overhead: float  # one epoch's own work besides its batches and validation
    fixed_seconds: float  # windows, network builds and their first steps, the report
    calibration_seconds: float  # what the calibration itself took
    timed_batches: int

    @property
    def batches(self) -> int:
        """Training batches an epoch."""
        return math.ceil(self.train_windows / self.batch_size)

    @property
    def refit_batches(self) -> int:
        """Batches an epoch of the refit (training and validation windows together)."""
        return math.ceil((self.train_windows + self.val_windows) / self.batch_size)

    @property
    def epoch_seconds(self) -> float:
        """One epoch: its batches, its validation pass and its own overhead."""
        return self.batches * self.batch_seconds + self.validation_seconds + self.epoch_overhead

    def seconds(self, epochs_run: int, kept: int) -> float:
        """The training's seconds when early stopping ends it after `epochs_run` epochs, keeping epoch `kept`."""
        refit = kept * (self.refit_batches * self.batch_seconds + self.epoch_overhead) if self.refit else 0.0
        return self.fixed_seconds + epochs_run * self.epoch_seconds + refit

    @property
    def likely_seconds(self) -> float:
        """Where early stopping likely ends it."""
        return self.seconds(self.likely_run, self.likely_kept)

    @property
    def ceiling_seconds(self) -> float:
        """All `epochs` (and a refit of as many)."""
        return self.seconds(self.epochs, self.epochs)


class _Clock(keras.callbacks.Callback):
    """When each epoch, its batches and its validation pass began and ended."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: dict[tuple[str, int], float] = {}
        self.epoch = 0
        self.batch_ends: list[list[float]] = []

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch
        self.batch_ends.append([])
        self.marks["epoch", epoch] = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.batch_ends[self.epoch].append(time.perf_counter())

    def on_test_begin(self, logs: Any = None) -> None:
        self.marks["test", self.epoch] = time.perf_counter()

    def on_test_end(self, logs: Any = None) -> None:
        self.marks["tested", self.epoch] = time.perf_counter()


def calibrate(arrays: SeriesArrays, config: ModelConfig, season: int = 1) -> TrainingEstimate:
    """Time the training `config` (resolved: no derived key left out) would do on `arrays`: the real
    windows and network, two epochs of a few batches (the first traces the steps, the second is timed)."""
    started = time.perf_counter()
    scaler = fit_scaler(arrays, config, season)
    split = split_for_training(arrays, scaler, config)  # a RunError when the series are too short
    weights = series_weights(arrays, config.horizon, season, config.series_weighting) if config.series_weighting else None
    batch = config.batch_size
    train_count = min(len(split.y_train), TRAIN_BATCHES * batch)
    val_count = min(len(split.y_val), VALIDATION_BATCHES * validation_batch_size(batch))
    chosen = np.sort(np.random.default_rng(config.seed).choice(len(split.y_train), train_count, replace=False))
    prepared = time.perf_counter() - started
    with TRAINING_LOCK:
        set_determinism(config.seed, config.deterministic)
        built = time.perf_counter()
        model = build_model(config, n_inputs=split.x_train.shape[2], n_future=future_width(split))
        built = time.perf_counter() - built
        tensors: tuple[Any, ...] = (split.train_inputs(chosen), member_targets(model, split.y_train[chosen]))
        validation: tuple[Any, ...] = (
            network_inputs(split.x_val[:val_count], None if split.f_val is None else split.f_val[:val_count]),
            member_targets(model, split.y_val[:val_count]),
        )
        if weights is not None:
            tensors = (*tensors, member_weights(model, window_weights(weights, split.train_series[chosen])))
            validation = (*validation, member_weights(model, window_weights(weights, split.val_series[:val_count])))
        clock = _Clock()
        fitting = time.perf_counter()
        model.fit(
            shuffled_batches(tensors, batch, config.seed), validation_data=validation, validation_batch_size=validation_batch_size(batch),
            epochs=2, shuffle=False, callbacks=[clock], verbose=0,
        )  # fmt: skip
        fitting = time.perf_counter() - fitting
    return _estimate(config, split, clock, (prepared, built, fitting), started)


def _estimate(config: ModelConfig, split: Any, clock: _Clock, times: tuple[float, float, float], started: float) -> TrainingEstimate:
    prepared, built, fitting = times
    ends = clock.batch_ends[1]
    timed = len(ends)
    train_seconds = clock.marks["test", 1] - clock.marks["epoch", 1]
    # Steady batches: from the end of the first to the end of the last (the epoch's start is overhead).
    batch_seconds = (ends[-1] - ends[0]) / (timed - 1) if timed > 1 else train_seconds
    epoch_overhead = max(train_seconds - timed * batch_seconds, 0.0)
    timed_validation = math.ceil(min(len(split.y_val), VALIDATION_BATCHES * config.batch_size) / config.batch_size)
    validation_batches = math.ceil(len(split.y_val) / config.batch_size)
    tested = clock.marks["tested", 1] - clock.marks["test", 1]
    val_seconds = tested * validation_batches / max(timed_validation, 1)
    # The first epoch's extra time is the steps' tracing; with the fit call's own set-up, once per network trained.
    first_steps = max(fitting - 2 * (train_seconds + tested), 0.0)
    networks = 2 if config.refit else 1
    run, kept = likely_epochs(config.epochs, config.min_epochs, config.patience)
    return TrainingEstimate(
        train_windows=int(len(split.y_train)), val_windows=int(len(split.y_val)), batch_size=config.batch_size, epochs=config.epochs,
        likely_run=run, likely_kept=kept, refit=config.refit, batch_seconds=batch_seconds,
        validation_seconds=val_seconds, epoch_overhead=epoch_overhead,
        fixed_seconds=prepared + networks * (built + first_steps) + val_seconds, calibration_seconds=time.perf_counter() - started,
        timed_batches=timed,
    )  # fmt: skip
