"""Forecasting the next `horizon` steps after each series' last observation, with intervals."""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from forecasting.database import interval_columns
from forecasting.scaling import SeriesScaler
from forecasting.windowing import SeriesArrays


@dataclass
class ForecastResult:
    forecasts: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)  # series id -> reason


def predict(
    model: keras.Model,
    scaler: SeriesScaler,
    arrays: SeriesArrays,
    lookback: int,
    horizon: int,
    frequency: str,
    interval_halfwidths: dict[int, list[float]] | None = None,
) -> ForecastResult:
    """One forecast per series from its last `lookback` rows; series too short or with gaps there are skipped.

    Series the scaler has not seen (new since training) are scaled by their own history.
    Returns a long frame: series_id, forecast_origin, target_ts, step, yhat, interval columns.
    """
    offset = pd.tseries.frequencies.to_offset(frequency)
    skipped: dict[str, str] = {}
    ids, inputs = [], []
    for series_id, values in arrays.values.items():
        if len(values) < lookback:
            skipped[series_id] = f"{len(values)} observations, fewer than lookback {lookback}"
            continue
        window = values[-lookback:]
        if not np.isfinite(window).all():
            skipped[series_id] = f"missing values in the last {lookback} observations"
            continue
        if series_id not in scaler:
            scaler.add(series_id, values)
        ids.append(series_id)
        inputs.append(scaler.transform(series_id, window))
    columns = ["series_id", "forecast_origin", "target_ts", "step", "yhat"]
    for level in sorted(interval_halfwidths or {}):
        columns += list(interval_columns(level))
    if not ids:
        return ForecastResult(pd.DataFrame(columns=columns), skipped)
    scaled = model.predict(np.stack(inputs).astype("float32"), batch_size=4096, verbose=0)
    steps = np.arange(1, horizon + 1)
    parts = []
    for series_id, row in zip(ids, scaled):
        origin = arrays.timestamps[series_id][-1]
        part = pd.DataFrame(
            {
                "series_id": series_id,
                "forecast_origin": origin,
                "target_ts": pd.DatetimeIndex([origin + step * offset for step in steps]),
                "step": steps,
                "yhat": scaler.inverse_target(series_id, row),
            }
        )
        scale = scaler.target_scale(series_id)
        for level, widths in sorted((interval_halfwidths or {}).items()):
            lower, upper = interval_columns(level)
            half = np.asarray(widths, dtype="float64") * scale
            part[lower] = part["yhat"] - half
            part[upper] = part["yhat"] + half
        parts.append(part)
    return ForecastResult(pd.concat(parts, ignore_index=True)[columns], skipped)
