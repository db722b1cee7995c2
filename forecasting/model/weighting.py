"""How much each series' windows count in the training loss."""

from __future__ import annotations

import numpy as np

from forecasting.evaluation.metrics import seasonal_naive_scale
from forecasting.preparation.windows import SeriesArrays


def series_weights(arrays: SeriesArrays, horizon: int, season: int, power: float) -> dict[str, float]:
    """Per series, how much its windows count in the loss: (mean |value| / in-sample seasonal-naive MAE) ** power,
    both from its training part (all but the last `horizon` rows), clipped to the 5th-95th percentile over
    series so that a flat series cannot outweigh the rest. Windows in scaled units carry errors relative
    to the series' level; this weight turns them into errors relative to the seasonal-naive scale (MASE's)."""
    ratios: dict[str, float] = {}
    for series_id, values in arrays.values.items():
        history = values[: max(len(values) - horizon, 2), 0]
        scale = seasonal_naive_scale(history, season)
        level = float(np.nanmean(np.abs(history))) if len(history) else float("nan")
        ratios[series_id] = level / scale if np.isfinite(scale) and scale > 0 and np.isfinite(level) else float("nan")
    finite = np.array([r for r in ratios.values() if np.isfinite(r) and r > 0])
    if not len(finite) or power == 0:
        return {series_id: 1.0 for series_id in ratios}
    low, high = np.percentile(finite, [5, 95])
    middle = float(np.median(finite))
    return {
        series_id: float(np.clip(ratio if np.isfinite(ratio) and ratio > 0 else middle, low, high) ** power)
        for series_id, ratio in ratios.items()
    }


def window_weights(weights: dict[str, float], window_series: np.ndarray) -> np.ndarray:
    """Each window's loss weight (its series'), scaled to mean 1 over the windows given."""
    values = np.array([weights.get(series_id, 1.0) for series_id in window_series], dtype="float32")
    return values / values.mean() if len(values) else values
