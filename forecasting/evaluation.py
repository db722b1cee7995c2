"""Forecast accuracy metrics and the naive baselines every evaluation is compared with."""

from __future__ import annotations

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
