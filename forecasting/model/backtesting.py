"""Rolling-origin backtests: train on the data up to each origin, forecast `horizon`, score against
what came after, next to the naive baselines, through the same training and prediction code as a run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forecasting.config.settings import ModelConfig
from forecasting.errors import ConfigError, RunError
from forecasting.evaluation.metrics import accuracy_by_step, naive_forecast, seasonal_naive_forecast, seasonal_naive_scale
from forecasting.model.prediction import forecast_frame
from forecasting.preparation.scaling import WindowLevels
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.preparation.windows import SeriesArrays

METHODS = ("model", "naive", "seasonal_naive")


@dataclass
class BacktestResult:
    scores: pd.DataFrame  # window (0 = all), forecast_origin, method, step (0 = all), series, mae, rmse, smape, mase, coverage_*, width_*
    origins: list[pd.Timestamp]
    train_seconds: list[float]


def rolling_origins(arrays: SeriesArrays, frequency: str, horizon: int, windows: int, step: int) -> list[pd.Timestamp]:
    """`windows` forecast origins, oldest first, `step` periods apart; the last leaves `horizon`
    periods of actuals before the latest observation of any series."""
    if windows <= 0:
        raise ConfigError(f"--windows: must be a positive number (got {windows})")
    if step <= 0:
        raise ConfigError(f"--step: must be a positive number (got {step})")
    offset = pd.tseries.frequencies.to_offset(frequency)
    latest = max(index[-1] for index in arrays.timestamps.values() if len(index))
    return [latest - ((windows - k) * step + horizon) * offset for k in range(1, windows + 1)]


def cut(arrays: SeriesArrays, origin: pd.Timestamp, horizon: int, frequency: str) -> tuple[SeriesArrays, pd.DataFrame]:
    """The data up to `origin` (for training and forecasting) and the actuals in the `horizon` periods after it.
    Values known in advance (`arrays.future_columns`) after the origin stay known, as future rows; targets do not."""
    offset = pd.tseries.frequencies.to_offset(frequency)
    end = origin + horizon * offset
    timestamps, values, actuals, future, future_timestamps = {}, {}, [], {}, {}
    columns = list(arrays.future_columns)
    for series_id, index in arrays.timestamps.items():
        known = index <= origin
        if known.sum() == 0:
            continue
        timestamps[series_id], values[series_id] = index[known], arrays.values[series_id][known]
        if columns:
            future[series_id] = np.vstack([arrays.values[series_id][~known][:, columns], arrays.future.get(series_id, np.empty((0, len(columns))))])
            future_timestamps[series_id] = index[~known].append(arrays.future_timestamps.get(series_id, pd.DatetimeIndex([])))
        later = (index > origin) & (index <= end)
        if later.any():
            actuals.append(pd.DataFrame({"series_id": series_id, "ts": index[later], "value": arrays.values[series_id][later, 0]}))
    frame = pd.concat(actuals, ignore_index=True) if actuals else pd.DataFrame(columns=["series_id", "ts", "value"])
    known_arrays = SeriesArrays(
        timestamps=timestamps, values=values, frequency=arrays.frequency, future_columns=arrays.future_columns,
        future_count=arrays.future_count, future=future, future_timestamps=future_timestamps, future_fill=arrays.future_fill,
        future_names=arrays.future_names, calendar=arrays.calendar, holidays=arrays.holidays,
    )
    return known_arrays, frame


def backtest(
    arrays: SeriesArrays, config: ModelConfig, frequency: str, windows: int, step: int | None = None, verbose: int = 0,
    season: int | None = None,
) -> BacktestResult:
    """Train and forecast at each rolling origin; scores per window and step, and over all windows.
    The baselines and MASE's scale use `season` (default: each window's forecaster's, `InputSpec.season`)."""
    step = step or config.horizon
    origins = rolling_origins(arrays, frequency, config.horizon, windows, step)
    tables, forecasts_by_method, actual_frames, seconds = [], {m: [] for m in METHODS}, [], []
    for number, origin in enumerate(origins, start=1):
        known, actuals = cut(arrays, origin, config.horizon, frequency)
        if actuals.empty:
            raise RunError(f"backtest window {number} (origin {origin:%Y-%m-%d %H:%M}): no series has observations after the origin")
        try:
            outcome = RecurrentForecaster.fit(known, config, verbose=verbose)
        except RunError as error:
            raise RunError(f"backtest window {number} (origin {origin:%Y-%m-%d %H:%M}): {error}") from None
        seconds.append(outcome.report.seconds)
        model = outcome.forecaster.predict(known)
        season_used = season or outcome.forecaster.season
        histories = {sid: values[:, 0] for sid, values in known.values.items()}
        scales = {sid: seasonal_naive_scale(history, season_used) for sid, history in histories.items()}
        origins_by_series = {sid: index[-1] for sid, index in known.timestamps.items()}
        # Baselines for the series the model forecast, from the same origins.
        forecast_ids = set(model.forecasts["series_id"])
        baselines = baseline_forecasts(
            {sid: h for sid, h in histories.items() if sid in forecast_ids}, origins_by_series, config.horizon, season_used, frequency
        )
        frames = {"model": model.forecasts, **baselines}
        for method, frame in frames.items():
            levels = config.intervals if method == "model" else []
            table = accuracy_by_step(frame, actuals, scales, levels)
            table.insert(0, "method", method)
            table.insert(0, "forecast_origin", origin)
            table.insert(0, "window", number)
            tables.append(table)
            # Each window's forecasts keep the MASE scale of their own history for the all-windows score.
            forecasts_by_method[method].append(frame.assign(mase_scale=frame["series_id"].map(scales)))
        actual_frames.append(actuals)
    # An actual is the same whichever window forecast it: one row per series and time.
    all_actuals = pd.concat(actual_frames, ignore_index=True).drop_duplicates(["series_id", "ts"])
    for method in METHODS:
        table = accuracy_by_step(pd.concat(forecasts_by_method[method], ignore_index=True), all_actuals, {}, config.intervals if method == "model" else [])
        table.insert(0, "method", method)
        table.insert(0, "forecast_origin", pd.NaT)
        table.insert(0, "window", 0)
        tables.append(table)
    return BacktestResult(pd.concat(tables, ignore_index=True), origins, seconds)


def backtest_id(model_name: str, config: ModelConfig, data_key: str, windows: int, step: int) -> str:
    """Same model config, data, windows and step: same id, so a repeated backtest replaces its rows."""
    text = json.dumps(
        {"model": model_name, "config": config.model_dump(mode="json", exclude={"schedule", "tuning", "promotion"}), "data": data_key,
         "windows": windows, "step": step},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def score_rows(scores: pd.DataFrame, levels: list[int]) -> list[dict]:
    """Rows for the `backtests` table: the metrics as columns, interval coverage and width as JSON."""
    rows = []
    for record in scores.to_dict("records"):
        intervals = {
            str(level): {"coverage": record[f"coverage_{level}"], "width": record[f"width_{level}"]}
            for level in levels
            if f"coverage_{level}" in record and not pd.isna(record[f"coverage_{level}"])
        }
        rows.append(
            {
                "window_number": int(record["window"]),
                "forecast_origin": None if pd.isna(record["forecast_origin"]) else pd.Timestamp(record["forecast_origin"]).to_pydatetime(),
                "method": record["method"],
                "step": int(record["step"]),
                "series": int(record["series"]),
                **{name: None if not np.isfinite(record[name]) else float(record[name]) for name in ("mae", "rmse", "smape", "mase")},
                "intervals": json.dumps(intervals) if intervals else None,
            }
        )
    return rows


def format_scores(scores: pd.DataFrame, levels: list[int]) -> str:
    """A table per step over all windows (model next to the baselines), then one line per window."""
    overall = scores[scores["window"] == 0]
    by_method = {method: overall[overall["method"] == method].set_index("step") for method in METHODS}
    model = by_method["model"]
    header = f"{'step':>4}  {'sMAPE':>7}  {'MASE':>6}  {'naive':>7}  {'s-naive':>7}" + "".join(f"  {'cov' + str(lv):>6}" for lv in levels)
    lines = [header]
    for step in list(model.index[model.index > 0]) + [0]:
        row = model.loc[step]
        text = (
            f"{'all' if step == 0 else step:>4}  {row['smape']:7.2f}  {row['mase']:6.3f}  "
            f"{by_method['naive'].loc[step, 'smape']:7.2f}  {by_method['seasonal_naive'].loc[step, 'smape']:7.2f}"
        )
        text += "".join(f"  {row[f'coverage_{lv}']:6.1f}" for lv in levels if f"coverage_{lv}" in row)
        lines.append(text)
    lines.append("")
    for window, group in scores[(scores["window"] > 0) & (scores["step"] == 0)].groupby("window"):
        parts = {row["method"]: row for row in group.to_dict("records")}
        origin = pd.Timestamp(parts["model"]["forecast_origin"])
        lines.append(
            f"window {window} (origin {origin:%Y-%m-%d}): sMAPE {parts['model']['smape']:.2f} (naive {parts['naive']['smape']:.2f}, "
            f"seasonal naive {parts['seasonal_naive']['smape']:.2f}), MASE {parts['model']['mase']:.3f}, {int(parts['model']['series'])} series"
        )
    return "\n".join(lines)


def baseline_forecasts(
    histories: dict[str, np.ndarray], origins: dict[str, Any], horizon: int, season: int, frequency: str
) -> dict[str, "pd.DataFrame"]:
    """Naive and seasonal-naive forecasts from each series' history, as long frames built like the model's."""
    ids = list(histories)
    windows = [np.asarray(histories[sid], dtype="float64")[np.newaxis, :, np.newaxis] for sid in ids]
    unscaled = WindowLevels(np.zeros(len(ids)), np.ones(len(ids)), np.zeros(len(ids), dtype=bool))
    makers = {"naive": lambda w: naive_forecast(w, horizon), "seasonal_naive": lambda w: seasonal_naive_forecast(w, horizon, season)}
    return {
        method: forecast_frame(
            ids, [origins[sid] for sid in ids],
            np.concatenate([make(w) for w in windows]) if ids else np.empty((0, horizon)), unscaled, frequency,
        )
        for method, make in makers.items()
    }
