"""Forecasts far outside what a series has ever done, found (never changed): the run summary flags them.

The rule, per series: with `low` and `high` the smallest and largest finite value of the history the
forecast was made from and `span = high - low` (for a flat series, span 0, `max(|high|, 1)`), a
forecast (`yhat`) is out of range when it is above `high + FACTOR * span` or below
`low - FACTOR * span`, FACTOR = 10. Values exactly on a bound are inside.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FACTOR = 10.0


def range_bounds(history: np.ndarray, factor: float = FACTOR) -> tuple[float, float] | None:
    """The (lower, upper) bounds a forecast of a series with this history stays within; None without a finite value."""
    values = np.asarray(history, dtype="float64")
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    lower, upper = _bounds(np.array([values.min()]), np.array([values.max()]), factor)
    return float(lower[0]), float(upper[0])


def _bounds(low: np.ndarray, high: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    span = np.where(high > low, high - low, np.maximum(np.abs(high), 1.0))
    return low - factor * span, high + factor * span


def out_of_range(histories: dict[str, np.ndarray], forecasts: pd.DataFrame, factor: float = FACTOR) -> dict[str, str]:
    """The series whose `yhat` leaves its bounds (`range_bounds`), in the order of `forecasts`, each
    with its forecast farthest out, e.g. `yhat 1520 at step 3 (observed 4 to 120)`. Series without
    a finite history here are left out."""
    ids = [sid for sid, history in histories.items() if len(history)]
    if forecasts.empty or not ids:
        return {}
    # One pass over all histories at once (a loop per series costs seconds at 100,000 series).
    values = np.concatenate([np.asarray(histories[sid], dtype="float64") for sid in ids])
    values[~np.isfinite(values)] = np.nan
    starts = np.cumsum([0] + [len(histories[sid]) for sid in ids[:-1]])
    low, high = np.fmin.reduceat(values, starts), np.fmax.reduceat(values, starts)  # NaN only where a series has no finite value
    lower, upper = _bounds(low, high, factor)
    position = pd.Series(np.arange(len(ids)), index=ids)
    rows = forecasts["series_id"].map(position).to_numpy(dtype="float64")
    known = np.isfinite(rows)
    index = np.where(known, rows, 0).astype("int64")
    yhat = forecasts["yhat"].to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        beyond = np.where(known, np.maximum(lower[index] - yhat, yhat - upper[index]), np.nan)  # > 0: outside
        outside = beyond > 0
    if not outside.any():
        return {}
    flagged = pd.DataFrame({"series_id": forecasts["series_id"].to_numpy()[outside], "step": forecasts["step"].to_numpy()[outside],
                            "yhat": yhat[outside], "beyond": beyond[outside], "row": index[outside]})
    worst = flagged.loc[flagged.groupby("series_id", sort=False)["beyond"].idxmax()]
    return {
        str(row.series_id): f"yhat {row.yhat:.6g} at step {row.step} (observed {low[row.row]:.6g} to {high[row.row]:.6g})"
        for row in worst.itertuples(index=False)
    }
