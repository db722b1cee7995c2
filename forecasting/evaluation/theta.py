"""The Theta method (Assimakopoulos & Nikolopoulos 2000, in the form of Hyndman & Billah 2003): the
classical forecast the network's is blended with (`model.blending`).

Each series is deseasonalised by classical multiplicative factors where the seasonality test passes
(`preparation.seasonality`, as the M3 and M4 benchmarks do), then forecast by simple exponential
smoothing with half the slope of its linear trend added as drift, and reseasonalised. The smoothing
weight of each series is the one of a fixed grid with the lowest in-sample one-step squared error,
found for all series at once (the series are padded into one matrix), so a forecast of 100,000
series costs seconds, not a Python loop per series.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from forecasting.preparation.seasonality import seasonal_factors

# Smoothing weights tried for every series (denser near 0, where the squared error changes fastest).
ALPHAS = np.geomspace(0.01, 1.0, 40)
# The longest history read per series: the drift is a linear trend over it, so decades of daily
# rows would only slow the fit down without changing the forecast much.
MAX_HISTORY = 1000
_CHUNK = 4096  # series per block of the smoothing grid (memory: ALPHAS x _CHUNK x a few arrays)


def theta_forecasts(
    histories: Sequence[np.ndarray], horizon: int, season: int = 1, ticks: Sequence[np.ndarray] | None = None
) -> np.ndarray:
    """The Theta forecast of the next `horizon` steps after each history (series x horizon).

    Each history's trailing run of finite values is read (at most `MAX_HISTORY`). `ticks` are the
    histories' seasonal positions (`seasonality.season_ticks`; default: row numbers); with `season`
    > 1, series that pass the seasonality test (three seasons, positive values) are deseasonalised.
    A history with no finite value gets NaN; one with fewer than three, its last value."""
    result = np.full((len(histories), horizon), np.nan)
    if not len(histories):
        return result
    runs, future_factors = [], np.ones((len(histories), horizon))
    for row, history in enumerate(histories):
        values = np.asarray(history, dtype="float64").ravel()
        finite = np.isfinite(values)
        start = len(values) - int(np.argmin(finite[::-1])) if not finite.all() else 0
        start = max(start, len(values) - MAX_HISTORY)
        run = values[start:]
        if season > 1 and len(run) >= 3 * season:
            positions = np.asarray(ticks[row])[start:] if ticks is not None else np.arange(start, len(values))
            factors = seasonal_factors(run, positions, season)
            if factors is not None:
                run = run / factors[positions % season]
                future_factors[row] = factors[(positions[-1] + np.arange(1, horizon + 1)) % season]
        runs.append(run)
    for first in range(0, len(runs), _CHUNK):
        block = runs[first : first + _CHUNK]
        result[first : first + len(block)] = _deseasonalised_theta(block, horizon)
    return result * future_factors


def _deseasonalised_theta(runs: list[np.ndarray], horizon: int) -> np.ndarray:
    """Simple exponential smoothing plus half the linear trend's slope, for finite runs of any length."""
    lengths = np.array([len(run) for run in runs])
    width = max(int(lengths.max()), 1)
    padded = np.full((len(runs), width), np.nan)  # right-aligned: every run ends in the last column
    for row, run in enumerate(runs):
        if len(run):
            padded[row, width - len(run):] = run
    alpha = ALPHAS[:, np.newaxis]
    level = np.full((len(ALPHAS), len(runs)), np.nan)
    squared = np.zeros_like(level)
    with np.errstate(invalid="ignore"):
        for column in range(width):
            value = padded[:, column]
            present = np.isfinite(value)
            started = np.isfinite(level)
            error = np.where(started & present, value - level, 0.0)
            squared += error * error
            level = np.where(started, level + alpha * error, np.where(present, value, level))
    best = np.argmin(squared, axis=0)
    chosen = ALPHAS[best]
    final = level[best, np.arange(len(runs))]
    slope = _trend_slopes(padded, lengths)
    steps = np.arange(1, horizon + 1)[np.newaxis, :]
    decay = (1 - chosen) ** lengths
    drift = 0.5 * slope[:, np.newaxis] * (steps - 1 + (1 - decay[:, np.newaxis]) / chosen[:, np.newaxis])
    forecast = final[:, np.newaxis] + drift
    short = lengths < 3  # too short for a trend: the last value
    if short.any():
        last = np.array([run[-1] if len(run) else np.nan for run in runs])
        forecast[short] = last[short, np.newaxis]
    return forecast


def _trend_slopes(padded: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The least-squares slope per row of a right-aligned padded matrix (0 below two values)."""
    time = np.arange(padded.shape[1], dtype="float64")[np.newaxis, :]
    present = np.isfinite(padded)
    count = np.maximum(present.sum(axis=1), 1)
    values = np.where(present, padded, 0.0)
    mean_time = np.where(present, time, 0.0).sum(axis=1) / count
    mean_value = values.sum(axis=1) / count
    centred_time = np.where(present, time - mean_time[:, np.newaxis], 0.0)
    spread = (centred_time * centred_time).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (centred_time * (values - mean_value[:, np.newaxis])).sum(axis=1) / spread
    return np.where((lengths >= 2) & (spread > 0), slope, 0.0)
