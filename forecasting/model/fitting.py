"""Fitting a network on windows: the schedule, the seeded batches, early stopping and the epoch it kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import keras
import numpy as np

from forecasting.runtime.faults import checkpoint
from forecasting.model.defaults import likely_epochs
from forecasting.model.input_pipeline import shuffled_batches, validation_batch_size
from forecasting.model.network import member_count, member_targets
from forecasting.runtime.progress import keras_verbose
from forecasting.model.keras_progress import EpochProgress
from forecasting.runtime.phases import phase
from forecasting.model.weighting import window_weights
from forecasting.preparation.windows import WindowSplit

if TYPE_CHECKING:
    from forecasting.model.deadline import Deadline


@dataclass(frozen=True)
class Schedule:
    """How long and how `_fit` trains: epochs, batch size, early-stopping patience and start, seed."""

    epochs: int
    batch_size: int
    patience: int
    seed: int
    verbose: int = 0
    min_epochs: int = 0


def member_weights(model: keras.Model, weights: np.ndarray) -> np.ndarray:
    """Window weights shaped like the model's per-window losses: one per member for an ensemble."""
    count = member_count(model)
    return weights if count == 1 else np.repeat(weights[:, np.newaxis], count, axis=1)


def fit_windows(
    model: keras.Model,
    split: WindowSplit | None,
    x_train: np.ndarray | list[np.ndarray],
    y_train: np.ndarray,
    schedule: Schedule,
    weights: dict[str, float] | None = None,
    train_series: np.ndarray | None = None,
    deadline: "Deadline | None" = None,
) -> keras.callbacks.History:
    """Fit on the windows given; with a split, early-stop on its validation windows (best weights kept),
    without one, run all `schedule.epochs`. With `weights` (per series, see `series_weights`), each window's
    loss counts by its series' weight, `train_series` naming the series of each training window."""
    # Early stopping ends a fit with a split, likely near `likely_epochs`; without one every epoch runs.
    likely = likely_epochs(schedule.epochs, schedule.min_epochs, schedule.patience)[0] if split is not None else None
    progress = EpochProgress(likely_epochs=likely, early_stopping=split is not None)
    callbacks = [keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: checkpoint("training")), progress]
    if deadline is not None:
        callbacks.append(deadline.start())
    validation = None
    if split is not None:
        # A noisy validation loss can dip early by chance: `min_epochs` keeps that dip from ending the run.
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=schedule.patience, restore_best_weights=True, start_from_epoch=schedule.min_epochs
            )
        )
        validation = (split.val_inputs(), member_targets(model, split.y_val))
        if weights is not None:
            validation = (*validation, member_weights(model, window_weights(weights, split.val_series)))
    tensors = (x_train, member_targets(model, y_train))
    if weights is not None:
        tensors = (*tensors, member_weights(model, window_weights(weights, train_series)))
    batches = shuffled_batches(tensors, schedule.batch_size, schedule.seed)
    with phase("train epochs") as counts:
        history = model.fit(
            batches,
            validation_data=validation,
            validation_batch_size=validation_batch_size(schedule.batch_size),
            epochs=schedule.epochs,
            shuffle=False,  # the dataset shuffles itself
            callbacks=callbacks,
            verbose=keras_verbose(schedule.verbose),
        )
        counts.update(epochs=len(history.epoch), windows=len(y_train))
    return history


def best_epoch(history: keras.callbacks.History, min_epochs: int = 0) -> int:
    """The epoch (1-based) whose weights early stopping kept: the lowest validation loss from `min_epochs` on."""
    losses = np.asarray(history.history["val_loss"], dtype="float64")
    start = min(min_epochs, len(losses) - 1)
    return int(np.nanargmin(losses[start:])) + start + 1
