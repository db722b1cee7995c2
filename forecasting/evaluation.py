"""Forecast accuracy metrics and the naive baselines every evaluation is compared with."""

from __future__ import annotations

from typing import Any

import numpy as np


def mae(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.nanmean(np.abs(np.asarray(actual) - np.asarray(predicted))))


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean((np.asarray(actual) - np.asarray(predicted)) ** 2)))


def smape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Symmetric MAPE as in the M3 competition: mean of 200*|y - yhat| / (|y| + |yhat|); 0/0 counts as 0."""
    actual, predicted = np.asarray(actual, dtype="float64"), np.asarray(predicted, dtype="float64")
    denominator = np.abs(actual) + np.abs(predicted)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(denominator == 0, 0.0, 200.0 * np.abs(actual - predicted) / denominator)
    return float(np.nanmean(terms))


def naive_forecast(inputs: np.ndarray, horizon: int) -> np.ndarray:
    """Repeat the last observed target value (column 0 of each window) `horizon` times."""
    return np.repeat(inputs[:, -1, 0:1], horizon, axis=1)


def seasonal_naive_forecast(inputs: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Repeat the last full season of each window's target; falls back to naive when the window is shorter."""
    if season <= 1 or inputs.shape[1] < season:
        return naive_forecast(inputs, horizon)
    last_season = inputs[:, -season:, 0]
    repeats = int(np.ceil(horizon / season))
    return np.tile(last_season, (1, repeats))[:, :horizon]


def season_length(frequency: str) -> int:
    """Typical seasonal period for a pandas frequency alias (12 for monthly, 7 for daily, ...)."""
    base = frequency.upper().lstrip("0123456789")
    for prefix, period in (("MS", 12), ("ME", 12), ("M", 12), ("QS", 4), ("QE", 4), ("Q", 4), ("W", 52), ("D", 7), ("B", 5), ("H", 24)):
        if base.startswith(prefix):
            return period
    return 1


def conformal_halfwidths(residuals: np.ndarray, levels: list[int]) -> dict[int, list[float]]:
    """Split-conformal half-widths per forecast step from held-out residuals (windows x steps)."""
    result: dict[int, list[float]] = {}
    absolute = np.abs(residuals)
    count = len(absolute)
    for level in levels:
        if count == 0:
            result[level] = [float("nan")] * residuals.shape[1]
            continue
        # The ceil((n + 1) * level)-th smallest residual gives finite-sample coverage >= level.
        rank = min(count, int(np.ceil((count + 1) * level / 100.0)))
        result[level] = np.sort(absolute, axis=0)[rank - 1].astype(float).tolist()
    return result


def mase(actual: np.ndarray, predicted: np.ndarray, insample_scale: np.ndarray) -> float:
    """Mean over series of MAE / in-sample seasonal-naive MAE (rows are series)."""
    errors = np.nanmean(np.abs(np.asarray(actual) - np.asarray(predicted)), axis=1)
    scale = np.asarray(insample_scale, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(scale > 0, errors / scale, np.nan)
    return float(np.nanmean(ratios))


def seasonal_naive_scale(history: np.ndarray, season: int) -> float:
    """In-sample MAE of the seasonal-naive forecast (naive when the history is shorter than a season)."""
    history = np.asarray(history, dtype="float64")
    lag = season if season > 1 and len(history) > season else 1
    diffs = np.abs(history[lag:] - history[:-lag])
    return float(np.nanmean(diffs)) if len(diffs) else float("nan")


def score(metric: str, actual: np.ndarray, predicted: np.ndarray, insample_scale: np.ndarray) -> float:
    if metric == "smape":
        return smape(actual, predicted)
    if metric == "mase":
        return mase(actual, predicted, insample_scale)
    if metric == "mae":
        return mae(actual, predicted)
    raise ValueError(f"unknown metric {metric!r}")


def score_holdout(
    model: Any,
    scaler: Any,
    arrays: Any,
    lookback: int,
    horizon: int,
    season: int,
    metric: str,
) -> dict[str, float]:
    """Score a model on each series' latest `horizon` observations, forecast from just before them,
    next to the seasonal-naive forecast from the same origin. Series without `lookback + horizon`
    finite observations at the end are left out (counted)."""
    ids, inputs, actual, naive, scales = [], [], [], [], []
    for series_id, values in arrays.values.items():
        if len(values) < lookback + horizon:
            continue
        window, future = values[-lookback - horizon : -horizon], values[-horizon:, 0]
        if not (np.isfinite(window).all() and np.isfinite(future).all()):
            continue
        history = values[:-horizon, 0]
        stats = scaler if series_id in scaler else None
        if stats is None:
            stats = scaler.__class__()
            stats.add(series_id, values[:-horizon])
        ids.append((series_id, stats))
        inputs.append(stats.transform(series_id, window))
        actual.append(future)
        naive.append(seasonal_naive_forecast(history[np.newaxis, :, np.newaxis], horizon, season)[0])
        scales.append(seasonal_naive_scale(history, season))
    if not ids:
        return {"score": float("nan"), "baseline": float("nan"), "series": 0}
    scaled = model.predict(np.stack(inputs).astype("float32"), batch_size=4096, verbose=0)
    predicted = np.stack([stats.inverse_target(series_id, row) for (series_id, stats), row in zip(ids, scaled)])
    actual_array, naive_array, scale_array = np.stack(actual), np.stack(naive), np.asarray(scales)
    return {
        "score": score(metric, actual_array, predicted, scale_array),
        "baseline": score(metric, actual_array, naive_array, scale_array),
        "series": len(ids),
    }
