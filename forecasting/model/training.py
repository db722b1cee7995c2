"""Training a global recurrent model across all series: retrain from scratch, or fine-tune a parent."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from forecasting.config.settings import ModelConfig
from forecasting.model.deadline import Deadline
from forecasting.model.defaults import DERIVED_KEYS
from forecasting.errors import RunError
from forecasting.model.fitting import Schedule, best_epoch, fit_windows
from forecasting.runtime.memory import release_free_memory
from forecasting.model.network import build_model, compile_model
from forecasting.preparation.scaling import SeriesScaler
from forecasting.model.training_report import TrainingReport, training_report
from forecasting.model.weighting import series_weights
from forecasting.preparation.windows import SeriesArrays, WindowSplit, joined, split_windows


# TensorFlow's and Keras's random state is process-wide: two trainings in threads of one process
# would interleave their random streams. Trainings in one process take turns; run models in
# parallel in separate processes (the Dask task runner does).
TRAINING_LOCK = threading.Lock()



def set_determinism(seed: int, deterministic_ops: bool = True) -> None:
    """Fix Python, NumPy and TensorFlow seeds and (by default) ask TensorFlow for deterministic kernels.

    Op determinism is process-wide and cannot be switched off again once on.
    """
    keras.utils.set_random_seed(seed)
    if deterministic_ops:
        tf.config.experimental.enable_op_determinism()


@dataclass(frozen=True)
class Trained:
    """What `train` and `fine_tune` produce: the deployed network and scaler; the network that never
    saw any series' last `horizon` rows and its scaler (the same objects without a refit), which
    out-of-sample scores such as the promotion gate's come from; interval widths, per-series
    training ends and the report."""

    network: keras.Model
    scaler: SeriesScaler
    holdout_network: keras.Model
    holdout_scaler: SeriesScaler
    interval_halfwidths: dict[int, list[float]]
    series_train_end: dict[str, str]
    report: TrainingReport


def future_width(split: WindowSplit) -> int:
    """Columns of the split's future blocks (0: none, a one-input network)."""
    return 0 if split.f_train is None else int(split.f_train.shape[2])


def all_inputs(split: WindowSplit) -> np.ndarray | list[np.ndarray]:
    """The network inputs of every window of a split, training then validation ones (for a refit;
    `joined`: the array `split_windows` holds them in, not a copy)."""
    window = joined(split.x_train, split.x_val)
    return window if split.f_train is None else [window, joined(split.f_train, split.f_val)]


def fit_scaler(arrays: SeriesArrays, config: ModelConfig, season: int = 1) -> SeriesScaler:
    """Per-series statistics from each series' training part (all but its last `horizon` rows; all rows
    of a series too short for any window, which no training or validation reads: `scaling_length`);
    with `config.deseasonalize` and a season, seasonal factors too (for the series that pass the test)."""
    train_lengths = {sid: scaling_length(len(values), config) for sid, values in arrays.values.items()}
    scaler = SeriesScaler.fit(arrays.values, train_lengths, target=config.normalization)
    if config.deseasonalize and season > 1:
        if not arrays.frequency:
            raise ValueError("deseasonalising needs the series frequency")
        scaler.fit_seasonal(arrays.values, arrays.timestamps, train_lengths, arrays.frequency, season)
    return scaler


def scaling_length(length: int, config: ModelConfig) -> int:
    """The rows a series' statistics come from: all but the last `horizon` (the validation targets), or
    all of a new series shorter than lookback + horizon (no window reads it; its forecast is scaled by
    all it has, not by its first few days)."""
    return length if length < config.lookback + config.horizon else length - config.horizon


def split_for_training(arrays: SeriesArrays, scaler: SeriesScaler, config: ModelConfig) -> WindowSplit:
    """Scaled windows split in time (validation: targets reaching into the last `horizon` rows), or a clear error."""
    split = split_windows(arrays, scaler, config.lookback, config.horizon, config.horizon)
    release_free_memory()
    needed = config.lookback + config.horizon
    if len(split.x_val) == 0:
        raise RunError(
            f"no series has the {needed} regular observations (lookback {config.lookback} + horizon "
            f"{config.horizon}) needed for a validation window; load more history or lower lookback"
        )
    if len(split.x_train) == 0:
        raise RunError(
            f"no series has more than {needed + config.horizon - 1} regular observations, so nothing is left to train "
            f"on before the validation part (the last {config.horizon} of each series)"
        )
    return split


def _series_train_end(arrays: SeriesArrays, horizon: int) -> dict[str, str]:
    """Per series, the last timestamp of its training part (everything before its last `horizon` rows)."""
    return {
        sid: index[len(index) - horizon - 1].isoformat()
        for sid, index in arrays.timestamps.items()
        if len(index) > horizon
    }


def training_schedule(config: ModelConfig, verbose: int, epochs: int | None = None) -> Schedule:
    return Schedule(epochs or config.epochs, config.batch_size, config.patience, config.seed, verbose, config.min_epochs)


def train(arrays: SeriesArrays, config: ModelConfig, season: int = 1, verbose: int = 0) -> Trained:
    """Train from scratch: scale each series by its training part, fit on the earlier windows,
    early-stop on the windows whose targets reach into each series' last `horizon` rows.

    With `config.refit`, a second network (same seed) is then trained on all windows, validation
    ones included, for the number of epochs early stopping chose: the final model learns from each
    series' most recent data, while the validation scores and the interval widths stay those of
    the first network on windows it never saw. Seasonal factors are estimated again for the refit
    from all rows (series with three seasons in all, but not before their last `horizon` rows, get
    theirs then). `config` is resolved (no derived key left out: `defaults.resolve_for`)."""
    started = time.perf_counter()
    unresolved = [key for key in DERIVED_KEYS if getattr(config, key) is None]
    if unresolved:  # RecurrentForecaster.fit resolves them once (inputs.InputSpec.resolve)
        raise ValueError(f"train: the config leaves {unresolved} out; resolve it from the data first (defaults.resolve_for)")
    scaler = fit_scaler(arrays, config, season)
    split = split_for_training(arrays, scaler, config)
    weights = series_weights(arrays, config.horizon, season, config.series_weighting) if config.series_weighting else None
    final_model, final_scaler = None, scaler
    with TRAINING_LOCK:
        # The limit counts from here: waiting for another training's turn is not training time.
        deadline = Deadline(config.training_timeout_minutes).start()
        set_determinism(config.seed, config.deterministic)
        model = build_model(config, n_inputs=split.x_train.shape[2], n_future=future_width(split))
        history = fit_windows(model, split, split.train_inputs(), split.y_train, training_schedule(config, verbose), weights, split.train_series, deadline)
        release_free_memory()
        if config.refit:
            epochs = best_epoch(history, config.min_epochs)
            every, refit_windows = split, int(len(split.x_train) + len(split.x_val))
            if scaler.seasonal:
                # The report reads the split's validation windows only: its training ones go before
                # the refit's windows are built, so both are not held at once.
                split.x_train = split.y_train = split.f_train = None
                final_scaler = scaler.copy()
                final_scaler.factors = {}
                final_scaler.fit_seasonal(arrays.values, arrays.timestamps, {}, scaler.frequency, scaler.season)
                every = split_for_training(arrays, final_scaler, config)
            set_determinism(config.seed, config.deterministic)
            final_model = build_model(config, n_inputs=every.x_train.shape[2], n_future=future_width(every))
            inputs, targets = all_inputs(every), joined(every.y_train, every.y_val)
            refit_series = np.concatenate([every.train_series, every.val_series])
            if every is not split:
                # The input pipeline copies the windows into TensorFlow anyway: copy them now and let the
                # refit's own arrays go, so they are not held beside that copy while it trains.
                inputs, every = tf.nest.map_structure(tf.constant, inputs), None
            fit_windows(final_model, None, inputs, targets, training_schedule(config, verbose, epochs), weights, refit_series, deadline)
    report, halfwidths = training_report(model, split, history, arrays, config, season, None, started)
    if final_model is not None:
        refit = {"epochs": report.best_epoch, "windows": refit_windows}
        report = replace(report, details={"refit": refit})
    return Trained(
        network=final_model or model, scaler=final_scaler, holdout_network=model, holdout_scaler=scaler,
        interval_halfwidths=halfwidths, series_train_end=_series_train_end(arrays, config.horizon), report=report,
    )


def fine_tune(
    arrays: SeriesArrays,
    config: ModelConfig,
    parent: tuple[keras.Model, SeriesScaler, dict[str, str]],
    season: int = 1,
    verbose: int = 0,
) -> Trained:
    """Continue training the parent's network (`parent`: the network, to be trained in place, so pass
    a copy; its scaler, left as it is; its per-series training ends) on the windows that became
    trainable since the parent was trained, plus a seeded replay sample of older windows
    (`fine_tune.replay` per new window), with the fine-tune learning rate and epochs."""
    started = time.perf_counter()
    parent_model, parent_scaler, parent_train_end = parent
    scaler = parent_scaler.copy()
    for series_id, values in arrays.values.items():
        if series_id not in scaler:
            scaler.add(series_id, values[: max(scaling_length(len(values), config), 2)])
    split = split_for_training(arrays, scaler, config)
    cutoffs = np.array(
        [np.datetime64(pd.Timestamp(parent_train_end[sid])) if sid in parent_train_end else np.datetime64("NaT") for sid in split.train_series],
        dtype="datetime64[ns]",
    )
    is_new = np.isnat(cutoffs) | (split.train_target_end > cutoffs)
    new_index = np.flatnonzero(is_new)
    if not len(new_index):
        raise RunError("fine-tune: no window has become trainable since the parent version; nothing new to learn from")
    old_index = np.flatnonzero(~is_new)
    rng = np.random.default_rng(config.seed)
    replay_count = min(len(old_index), int(round(config.fine_tune.replay * len(new_index))))
    chosen = np.sort(np.concatenate([new_index, rng.choice(old_index, replay_count, replace=False)]))
    learning_rate = config.fine_tune.learning_rate or config.learning_rate / 10
    schedule = Schedule(config.fine_tune.epochs, config.batch_size, config.fine_tune.patience, config.seed, verbose)
    with TRAINING_LOCK:
        deadline = Deadline(config.training_timeout_minutes).start()
        set_determinism(config.seed, config.deterministic)
        compile_model(parent_model, learning_rate, config.loss, config.jit_compile)
        history = fit_windows(
            parent_model,
            split,
            split.train_inputs(chosen),
            split.y_train[chosen],
            schedule,
            weights=series_weights(arrays, config.horizon, season, config.series_weighting) if config.series_weighting else None,
            train_series=split.train_series[chosen],
            deadline=deadline,
        )
    # Early stopping kept the best of all the fine-tune's epochs (its schedule has no min_epochs).
    report, halfwidths = training_report(parent_model, split, history, arrays, config.model_copy(update={"min_epochs": 0}), season, chosen, started)
    details = {"new_windows": int(len(new_index)), "replayed_windows": int(replay_count), "learning_rate": learning_rate}
    return Trained(
        network=parent_model, scaler=scaler, holdout_network=parent_model, holdout_scaler=scaler,
        interval_halfwidths=halfwidths, series_train_end=_series_train_end(arrays, config.horizon),
        report=replace(report, details=details),
    )
