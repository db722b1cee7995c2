"""Forecast accuracy metrics and the naive baselines every evaluation is compared with."""

from __future__ import annotations

import numpy as np
import pandas as pd


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


def mape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute percentage error: mean of 100*|y - yhat| / |y| over the actual values that are not 0."""
    actual, predicted = np.asarray(actual, dtype="float64"), np.asarray(predicted, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(actual == 0, np.nan, 100.0 * np.abs(actual - predicted) / np.abs(actual))
    return float(np.nanmean(terms)) if np.isfinite(terms).any() else float("nan")


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
    base = frequency.lstrip("0123456789")
    if base.startswith(("min", "ms", "us", "ns", "T", "L", "U", "N")):  # minutes and finer ("ms" is not "MS")
        return 1
    base = base.upper()
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


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actual values inside [lower, upper], in percent."""
    actual, lower, upper = (np.asarray(a, dtype="float64") for a in (actual, lower, upper))
    return float(np.nanmean((actual >= lower) & (actual <= upper)) * 100.0)


def mean_width(lower: np.ndarray, upper: np.ndarray) -> float:
    return float(np.nanmean(np.asarray(upper, dtype="float64") - np.asarray(lower, dtype="float64")))


def accuracy_by_step(
    forecasts: pd.DataFrame, actuals: pd.DataFrame, scales: dict[str, float], levels: list[int] | tuple[int, ...] = ()
) -> pd.DataFrame:
    """Score a long forecast frame against actuals (series_id, ts, value): one row per step and a
    last row with step 0 for all steps together; columns series, points (the forecasts scored), mae,
    rmse, smape, mase, mape (actual values of 0 left out) and, per
    interval level present, coverage_<level> (percent) and width_<level> (mean width divided by the
    series' MASE scale, so series of any size count alike). Forecasts without an actual are left out.
    A `mase_scale` column in `forecasts` overrides `scales` row by row (backtests: one scale per origin)."""
    joined = forecasts.merge(
        actuals.rename(columns={"ts": "target_ts", "value": "actual"})[["series_id", "target_ts", "actual"]],
        on=["series_id", "target_ts"],
        how="inner",
    )
    joined = joined[np.isfinite(joined["actual"].to_numpy(dtype="float64"))]
    scale = (joined["mase_scale"] if "mase_scale" in joined else joined["series_id"].map(scales)).to_numpy(dtype="float64")
    actual, predicted = joined["actual"].to_numpy(dtype="float64"), joined["yhat"].to_numpy(dtype="float64")
    error = np.abs(actual - predicted)
    denominator = np.abs(actual) + np.abs(predicted)
    with np.errstate(divide="ignore", invalid="ignore"):
        parts = {
            "abs_error": error,
            "sq_error": error**2,
            "smape_term": np.where(denominator == 0, 0.0, 200.0 * error / denominator),
            "ape_term": np.where(actual == 0, np.nan, 100.0 * error / np.abs(actual)),
            "scaled_error": np.where(scale > 0, error / scale, np.nan),
        }
        for level in levels:
            lower, upper = joined[f"yhat_lower_{level}"].to_numpy(dtype="float64"), joined[f"yhat_upper_{level}"].to_numpy(dtype="float64")
            parts[f"inside_{level}"] = ((actual >= lower) & (actual <= upper)) * 100.0
            parts[f"scaled_width_{level}"] = np.where(scale > 0, (upper - lower) / scale, np.nan)
    terms = pd.DataFrame({"series_id": joined["series_id"].to_numpy(), "step": joined["step"].to_numpy(dtype="int64"), **parts})

    def summarise(group: pd.DataFrame) -> dict[str, float]:
        row = {
            "series": float(group["series_id"].nunique()),
            "points": float(len(group)),
            "mae": float(group["abs_error"].mean()),
            "rmse": float(np.sqrt(group["sq_error"].mean())),
            "smape": float(group["smape_term"].mean()),
            "mase": float(group["scaled_error"].mean()),
            "mape": float(group["ape_term"].mean()),
        }
        for level in levels:
            row[f"coverage_{level}"] = float(group[f"inside_{level}"].mean())
            row[f"width_{level}"] = float(group[f"scaled_width_{level}"].mean())
        return row

    rows = [{"step": int(step), **summarise(group)} for step, group in terms.groupby("step", sort=True)]
    rows.append({"step": 0, **summarise(terms)})
    return pd.DataFrame(rows)
