"""Live accuracy, pure: stored forecast rows scored against the actuals that arrived since, each beside
the seasonal-naive forecast from the same origin; and the live figures the mode policy reads.

No database here (`forecasting.steps.scoring` reads and writes); every function takes and returns frames
or small frozen dataclasses, so the arithmetic is unit-tested on its own."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

KEY = ["model_name", "series_id", "forecast_origin", "target_ts"]
LEVELS = (80, 95)  # the interval levels whose inside flags forecast_errors keeps
SCORE_COLUMNS = [
    "model_name", "model_version", "series_id", "forecast_origin", "target_ts", "step", "yhat", "actual", "error",
    "abs_error", "smape_term", "scale", "scaled_error", "inside_80", "inside_95", "naive_yhat", "naive_error",
    "naive_abs_error", "naive_smape_term", "naive_scaled_error", "interval_distance",
]
ANOMALY_LEVEL = 95  # an arriving actual outside this interval of its newest forecast is an anomaly
METRIC_COLUMNS = {"smape": "smape_term", "mase": "scaled_error", "mae": "abs_error"}


def _shift(timestamps: pd.Series, periods: np.ndarray, frequency: str) -> pd.Series:
    """Each timestamp moved back by its number of periods of `frequency` (vectorised per distinct count)."""
    offset = to_offset(frequency)
    result = pd.Series(pd.NaT, index=timestamps.index, dtype="datetime64[ns]")
    for count in np.unique(periods):
        chosen = periods == count
        result[chosen] = (pd.DatetimeIndex(timestamps[chosen]) - int(count) * offset).to_numpy(dtype="datetime64[ns]")
    return result


def _lookup(history: pd.DataFrame, series: pd.Series, timestamps: pd.Series) -> np.ndarray:
    """The history's value of each (series, timestamp), NaN where there is none."""
    keys = pd.DataFrame({"series_id": series.to_numpy(), "ts": pd.to_datetime(timestamps).to_numpy(dtype="datetime64[ns]")})
    found = keys.merge(history[["series_id", "ts", "value"]], on=["series_id", "ts"], how="left")
    return found["value"].to_numpy(dtype="float64")


def _normalised(history: pd.DataFrame) -> pd.DataFrame:
    frame = history[["series_id", "ts", "value"]].copy()
    frame["series_id"] = frame["series_id"].astype(str)
    frame["ts"] = pd.to_datetime(frame["ts"]).astype("datetime64[ns]")
    return frame.drop_duplicates(["series_id", "ts"], keep="last").sort_values(["series_id", "ts"], ignore_index=True)


def insample_scales(history: pd.DataFrame, origins: pd.DataFrame, frequency: str, season: int) -> np.ndarray:
    """Each (series_id, forecast_origin)'s in-sample seasonal-naive MAE: the mean |y(t) - y(t - season)|
    over the series' observations up to the origin (lag 1 while it has no more than a season of them),
    as `evaluation.seasonal_naive_scale` computes it on a regular grid; NaN when it has no pair."""
    frame = _normalised(history)
    if frame.empty or origins.empty:
        return np.full(len(origins), np.nan)
    frame["count"] = frame.groupby("series_id").cumcount() + 1
    for name, lag in (("seasonal", max(season, 1)), ("lag1", 1)):
        before = _lookup(frame, frame["series_id"], _shift(frame["ts"], np.full(len(frame), lag), frequency))
        diff = np.abs(frame["value"].to_numpy(dtype="float64") - before)
        frame[f"{name}_sum"] = pd.Series(np.nan_to_num(diff), index=frame.index).groupby(frame["series_id"]).cumsum()
        frame[f"{name}_n"] = pd.Series(np.isfinite(diff).astype(int), index=frame.index).groupby(frame["series_id"]).cumsum()
    wanted = pd.DataFrame({
        "series_id": origins["series_id"].astype(str).to_numpy(),
        "ts": pd.to_datetime(origins["forecast_origin"]).to_numpy(dtype="datetime64[ns]"),
        "position": np.arange(len(origins)),
    }).sort_values("ts")
    # The newest observation at or before each origin (the origin itself unless it was deleted since).
    matched = pd.merge_asof(wanted, frame.sort_values("ts"), on="ts", by="series_id", direction="backward").sort_values("position")
    use_lag1 = (matched["count"] <= season).to_numpy() | (season <= 1)
    total = np.where(use_lag1, matched["lag1_sum"], matched["seasonal_sum"]).astype("float64")
    count = np.where(use_lag1, matched["lag1_n"], matched["seasonal_n"]).astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / count, np.nan)


def seasonal_naive_values(history: pd.DataFrame, rows: pd.DataFrame, frequency: str, season: int) -> np.ndarray:
    """The seasonal-naive forecast from each row's origin for its target: the value `ceil(step / season)`
    seasons before the target (the last full season repeated); the value at the origin (naive) where the
    series has none there or `season` is 1."""
    frame = _normalised(history)
    steps = rows["step"].to_numpy(dtype="int64")
    at_origin = _lookup(frame, rows["series_id"].astype(str), rows["forecast_origin"])
    if season <= 1:
        return at_origin
    seasons = np.ceil(steps / season).astype("int64") * season
    back = _lookup(frame, rows["series_id"].astype(str), _shift(pd.to_datetime(rows["target_ts"]), seasons, frequency))
    return np.where(np.isfinite(back), back, at_origin)


def _errors(actual: np.ndarray, predicted: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    error = actual - predicted
    denominator = np.abs(actual) + np.abs(predicted)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "error": error,
            "abs_error": np.abs(error),
            "smape_term": np.where(denominator == 0, 0.0, 200.0 * np.abs(error) / denominator),
            "scaled_error": np.where(scale > 0, np.abs(error) / scale, np.nan),
        }


def score_rows(forecasts: pd.DataFrame, history: pd.DataFrame, frequency: str, season: int) -> pd.DataFrame:
    """Score forecast rows (the `forecasts` columns) against the history's actuals: one row per forecast
    row with a finite actual, in `SCORE_COLUMNS`; the seasonal-naive forecast from the same origin beside it."""
    frame = _normalised(history)
    rows = forecasts.copy()
    rows["series_id"] = rows["series_id"].astype(str)
    for column in ("forecast_origin", "target_ts"):
        rows[column] = pd.to_datetime(rows[column]).astype("datetime64[ns]")
    rows["actual"] = _lookup(frame, rows["series_id"], rows["target_ts"])
    rows = rows[np.isfinite(rows["actual"].to_numpy(dtype="float64"))].reset_index(drop=True)
    if rows.empty:
        return pd.DataFrame(columns=SCORE_COLUMNS)
    actual = rows["actual"].to_numpy(dtype="float64")
    scale = insample_scales(frame, rows[["series_id", "forecast_origin"]], frequency, season)
    rows["scale"] = scale
    for name, values in _errors(actual, rows["yhat"].to_numpy(dtype="float64"), scale).items():
        rows[name] = values
    rows["naive_yhat"] = seasonal_naive_values(frame, rows, frequency, season)
    for name, values in _errors(actual, rows["naive_yhat"].to_numpy(dtype="float64"), scale).items():
        rows[f"naive_{name}"] = values
    for level in LEVELS:
        lower, upper = rows.get(f"yhat_lower_{level}"), rows.get(f"yhat_upper_{level}")
        if lower is None or upper is None:
            rows[f"inside_{level}"] = None
            continue
        lower, upper = lower.to_numpy(dtype="float64"), upper.to_numpy(dtype="float64")
        inside = (actual >= lower) & (actual <= upper)
        rows[f"inside_{level}"] = pd.array(np.where(np.isfinite(lower) & np.isfinite(upper), inside, pd.NA), dtype="boolean")
    lower, upper = rows.get(f"yhat_lower_{ANOMALY_LEVEL}"), rows.get(f"yhat_upper_{ANOMALY_LEVEL}")
    rows["interval_distance"] = (
        np.nan if lower is None or upper is None
        else interval_distance(actual, lower.to_numpy(dtype="float64"), upper.to_numpy(dtype="float64"))
    )
    return rows[SCORE_COLUMNS]


def interval_distance(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """How far each actual lies outside its interval, in half-widths of the interval: 0 inside it (bounds
    included), (actual - upper) / half-width above it, (lower - actual) / half-width below it; NaN where
    the interval is missing or has no width (a constant series' zero-width band)."""
    half = (upper - lower) / 2.0
    outside = np.maximum(actual - upper, lower - actual)
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.where(outside <= 0, 0.0, np.where(half > 0, outside / half, np.nan))
    return np.where(np.isfinite(lower) & np.isfinite(upper), distance, np.nan)


def needs_scoring(candidates: pd.DataFrame, history: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split forecast rows joined to their stored scores (`scored_yhat`, `scored_actual`, NaN when not
    scored) into (rows to score: an actual arrived and was not scored, or was revised, or the forecast was
    rewritten since; scored rows whose actual is no longer in the history, to remove)."""
    frame = _normalised(history)
    rows = candidates.copy()
    rows["series_id"] = rows["series_id"].astype(str)
    for column in ("forecast_origin", "target_ts"):
        rows[column] = pd.to_datetime(rows[column]).astype("datetime64[ns]")
    actual = _lookup(frame, rows["series_id"], rows["target_ts"])
    scored_actual = rows["scored_actual"].to_numpy(dtype="float64")
    scored_yhat = rows["scored_yhat"].to_numpy(dtype="float64")
    arrived = np.isfinite(actual)
    changed = ~np.isfinite(scored_actual) | (scored_actual != actual) | (scored_yhat != rows["yhat"].to_numpy(dtype="float64"))
    gone = ~arrived & np.isfinite(scored_actual)
    return rows[arrived & changed].drop(columns=["scored_yhat", "scored_actual"]).reset_index(drop=True), rows.loc[gone, KEY].reset_index(drop=True)


@dataclass(frozen=True)
class LiveAccuracy:
    """A model version's live error over its latest target periods, in one metric, beside seasonal
    naive's on the same rows: what the mode policy's drift signals read."""

    metric: str
    score: float
    naive_score: float
    periods: int  # target periods in the window (at most promotion.live_window)
    rows: int
    first_target: str
    last_target: str

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain data."""
        return asdict(self)


def live_accuracy(errors: pd.DataFrame, metric: str, window: int) -> LiveAccuracy | None:
    """The live figure of `metric` (`smape`, `mase` or `mae`: the mean smape_term, scaled_error or
    abs_error) over the rows (forecast_errors columns) whose target is among the latest `window` target
    periods, next to seasonal naive's on the same rows; None without such rows or with `window` 0."""
    if window <= 0 or errors.empty:
        return None
    column = METRIC_COLUMNS[metric]
    targets = np.sort(pd.to_datetime(errors["target_ts"]).unique())[-window:]
    rows = errors[pd.to_datetime(errors["target_ts"]).isin(targets)]
    values, naive = rows[column].to_numpy(dtype="float64"), rows[f"naive_{column}"].to_numpy(dtype="float64")
    both = np.isfinite(values) & np.isfinite(naive)
    if not both.any():
        return None
    return LiveAccuracy(
        metric=metric,
        score=float(values[both].mean()),
        naive_score=float(naive[both].mean()),
        periods=len(targets),
        rows=int(both.sum()),
        first_target=period_label(targets[0]),
        last_target=period_label(targets[-1]),
    )


def period_label(value: Any) -> str:
    """A target period as text: the date alone at midnight, else date and time."""
    stamp = pd.Timestamp(value)
    return str(stamp.date()) if stamp == stamp.normalize() else str(stamp)


def is_finite(value: float | None) -> bool:
    """Whether a score is a finite number."""
    return value is not None and math.isfinite(value)


def summary_figures(rows: pd.DataFrame) -> dict[str, float | None]:
    """Mean sMAPE, MASE and MAE of forecast_errors rows, seasonal naive's beside them, and the 80/95
    coverage in percent (None where no row has that interval)."""
    figures: dict[str, float | None] = {}
    for name, column in METRIC_COLUMNS.items():
        figures[name] = float(np.nanmean(rows[column].to_numpy(dtype="float64")))
        figures[f"naive_{name}"] = float(np.nanmean(rows[f"naive_{column}"].to_numpy(dtype="float64")))
    for level in LEVELS:
        flags = pd.to_numeric(rows[f"inside_{level}"], errors="coerce").dropna()
        figures[f"coverage_{level}"] = float(flags.mean() * 100.0) if len(flags) else None
    return figures
