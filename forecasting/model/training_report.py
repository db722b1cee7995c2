"""What a training reports: epochs, windows, validation scores against the naive baselines, timings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pandas as pd

from forecasting.config.settings import ModelConfig
from forecasting.evaluation.metrics import conformal_halfwidths, mae, naive_forecast, seasonal_naive_forecast, smape
from forecasting.model.fitting import best_epoch
from forecasting.model.network import forecast_array
from forecasting.preparation.windows import SeriesArrays, WindowSplit


@dataclass(frozen=True)
class TrainingReport:
    """What one training did: epochs, windows, validation scores and timings (the manifest's
    `training` and `metrics` entries come from it)."""

    epochs_run: int
    best_epoch: int
    best_val_loss: float
    history: dict[str, list[float]]
    train_windows: int
    val_windows: int
    series_trained: int
    seconds: float
    metrics: dict[str, float]
    train_start: pd.Timestamp | None
    train_end: pd.Timestamp | None
    data_watermark: pd.Timestamp | None
    details: dict[str, Any] = field(default_factory=dict)  # refit, fine-tune and holdout-network facts

    def training_entry(self) -> dict[str, Any]:
        """The manifest's `training` entry."""
        return {
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "train_windows": self.train_windows,
            "val_windows": self.val_windows,
            "series_trained": self.series_trained,
            "seconds": round(self.seconds, 2),
            "history": self.history,
            **self.details,
        }


def training_report(
    model: keras.Model,
    split: WindowSplit,
    history: keras.callbacks.History,
    arrays: SeriesArrays,
    config: ModelConfig,
    season: int,
    chosen: np.ndarray | None,
    started: float,
) -> tuple[TrainingReport, dict[int, list[float]]]:
    """The report of a fit on the training windows `chosen` (None: all), and the interval widths
    from the network's residuals on the validation windows."""
    train_series = split.train_series if chosen is None else split.train_series[chosen]
    train_target_end = split.train_target_end if chosen is None else split.train_target_end[chosen]
    losses = history.history["val_loss"]
    predicted = forecast_array(model, split.val_inputs())
    metrics = validation_metrics(split, predicted, config.lookback, config.horizon, season)
    kept = best_epoch(history, config.min_epochs)
    metrics["val_loss"] = float(losses[kept - 1])
    starts = [arrays.timestamps[sid][0] for sid in set(train_series)]
    all_index = [index for index in arrays.timestamps.values() if len(index)]
    report = TrainingReport(
        epochs_run=len(losses),
        best_epoch=kept,
        best_val_loss=float(losses[kept - 1]),
        history={key: [float(v) for v in values] for key, values in history.history.items()},
        train_windows=int(len(train_series)),
        val_windows=int(len(split.x_val)),
        series_trained=len(set(train_series)),
        train_start=min(starts) if starts else None,
        train_end=pd.Timestamp(train_target_end.max()) if len(train_target_end) else None,
        data_watermark=max(index[-1] for index in all_index) if all_index else None,
        metrics=metrics,
        seconds=time.perf_counter() - started,
    )
    return report, conformal_halfwidths(split.y_val - predicted, config.intervals)


def validation_metrics(split: WindowSplit, predicted: np.ndarray, lookback: int, horizon: int, season: int) -> dict[str, float]:
    """MAE and sMAPE in original units on the validation windows, for the model and the naive baselines."""
    levels = split.val_levels
    actual = levels.decode(split.y_val)
    # The baselines read the raw input window: decode its target column like a forecast of `lookback` steps.
    history = levels.decode(split.x_val[:, :, 0], shift=-lookback)[:, :, np.newaxis]
    forecasts = {
        "model": levels.decode(predicted),
        "naive": naive_forecast(history, horizon),
        "seasonal_naive": seasonal_naive_forecast(history, horizon, season),
    }
    metrics: dict[str, float] = {}
    for name, values in forecasts.items():
        metrics[f"val_mae_{name}"] = mae(actual, values)
        metrics[f"val_smape_{name}"] = smape(actual, values)
    return metrics
