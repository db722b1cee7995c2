"""Training a global recurrent model across all series of a model group."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from forecasting.config import ModelConfig
from forecasting.errors import RunError
from forecasting.evaluation import conformal_halfwidths, mae, naive_forecast, seasonal_naive_forecast, smape
from forecasting.model import build_model
from forecasting.scaling import SeriesScaler
from forecasting.windowing import SeriesArrays, split_windows


def set_determinism(seed: int) -> None:
    """Fix Python, NumPy and TensorFlow seeds and ask TensorFlow for deterministic kernels."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@dataclass
class TrainResult:
    model: keras.Model
    scaler: SeriesScaler
    epochs_run: int
    best_epoch: int
    best_val_loss: float
    history: dict[str, list[float]]
    train_windows: int
    val_windows: int
    series_trained: int
    train_start: pd.Timestamp | None
    train_end: pd.Timestamp | None
    data_watermark: pd.Timestamp | None
    interval_halfwidths: dict[int, list[float]]
    metrics: dict[str, float]
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def train(arrays: SeriesArrays, config: ModelConfig, season: int = 1, verbose: int = 0) -> TrainResult:
    """Train from scratch: scale each series by its training part, fit on the earlier windows,
    early-stop on the windows whose targets reach into each series' last `horizon` rows."""
    started = time.perf_counter()
    validation_steps = config.horizon
    train_lengths = {sid: len(values) - validation_steps for sid, values in arrays.values.items()}
    scaler = SeriesScaler.fit(arrays.values, train_lengths)
    split = split_windows(arrays, scaler, config.lookback, config.horizon, validation_steps)
    needed = config.lookback + config.horizon
    if len(split.x_val) == 0:
        raise RunError(
            f"no series has the {needed} regular observations (lookback {config.lookback} + horizon "
            f"{config.horizon}) needed for a validation window; load more history or lower lookback"
        )
    if len(split.x_train) == 0:
        raise RunError(
            f"no series has more than {needed + validation_steps - 1} regular observations, so nothing is left to train "
            f"on before the validation part (the last {validation_steps} of each series)"
        )
    set_determinism(config.seed)
    model = build_model(config, n_inputs=split.x_train.shape[2])
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)
    history = model.fit(
        split.x_train,
        split.y_train,
        validation_data=(split.x_val, split.y_val),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        callbacks=[stopper],
        verbose=verbose,
    )
    losses = history.history["val_loss"]
    best_epoch = int(np.nanargmin(losses)) + 1
    predicted = model.predict(split.x_val, batch_size=4096, verbose=0)
    residuals = split.y_val - predicted
    metrics = validation_metrics(split.x_val, split.y_val, predicted, split.val_series, scaler, config.horizon, season)
    metrics["val_loss"] = float(np.nanmin(losses))
    trained_ids = [sid for sid, n in train_lengths.items() if n >= needed]
    train_index = [arrays.timestamps[sid][: train_lengths[sid]] for sid in trained_ids if train_lengths[sid] > 0]
    all_index = [index for index in arrays.timestamps.values() if len(index)]
    return TrainResult(
        model=model,
        scaler=scaler,
        epochs_run=len(losses),
        best_epoch=best_epoch,
        best_val_loss=float(np.nanmin(losses)),
        history={key: [float(v) for v in values] for key, values in history.history.items()},
        train_windows=int(len(split.x_train)),
        val_windows=int(len(split.x_val)),
        series_trained=len(trained_ids),
        train_start=min(index[0] for index in train_index) if train_index else None,
        train_end=max(index[-1] for index in train_index) if train_index else None,
        data_watermark=max(index[-1] for index in all_index) if all_index else None,
        interval_halfwidths=conformal_halfwidths(residuals, config.intervals),
        metrics=metrics,
        seconds=time.perf_counter() - started,
    )


def validation_metrics(
    inputs: np.ndarray,
    actual: np.ndarray,
    predicted: np.ndarray,
    series: np.ndarray,
    scaler: SeriesScaler,
    horizon: int,
    season: int,
) -> dict[str, float]:
    """MAE and sMAPE in original units on the validation windows, for the model and the naive baselines."""

    def original(scaled: np.ndarray) -> np.ndarray:
        return np.stack([scaler.inverse_target(sid, row) for sid, row in zip(series, scaled)])

    actual_units = original(actual)
    forecasts = {
        "model": original(predicted),
        "naive": original(naive_forecast(inputs, horizon)),
        "seasonal_naive": original(seasonal_naive_forecast(inputs, horizon, season)),
    }
    metrics: dict[str, float] = {}
    for name, values in forecasts.items():
        metrics[f"val_mae_{name}"] = mae(actual_units, values)
        metrics[f"val_smape_{name}"] = smape(actual_units, values)
    return metrics
