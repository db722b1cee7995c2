"""The Theta method (Assimakopoulos & Nikolopoulos 2000, in the form of Hyndman & Billah 2003): the
classical forecast the network's is blended with (`model.blending`).

Each series is deseasonalised by classical multiplicative factors where the seasonality test passes
(`preparation.seasonality`, as the M3 and M4 benchmarks do), then forecast by simple exponential
smoothing with half the slope of its linear trend added as drift, and reseasonalised. The smoothing
weight of each series is the one of a fixed grid with the lowest in-sample one-step squared error.
All series are fitted at once, padded into one matrix, so a forecast of 100,000 series costs
seconds, not a Python loop per series.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from forecasting.preparation.seasonality import seasonal_factors_matrix

# Smoothing weights tried for every series (denser near 0, where the squared error changes fastest).
ALPHAS = np.geomspace(0.01, 1.0, 40)
# The longest history read per series: the drift is a linear trend over it, so decades of daily
# rows would only slow the fit down without changing the forecast much.
MAX_HISTORY = 1000
_CHUNK = 4096  # series per block (memory: ALPHAS x _CHUNK x the longest history, a few arrays)


def theta_forecasts(histories: Sequence[np.ndarray], horizon: int, season: int = 1, last_ticks: np.ndarray | None = None) -> np.ndarray:
    """The Theta forecast of the next `horizon` steps after each history (series x horizon).

    Each history's trailing run of finite values is read (at most `MAX_HISTORY`). `last_ticks` are
    the seasonal ticks of each history's last row (`seasonality.season_ticks`; the rows are
    consecutive steps; default: the row count); with `season` > 1, series that pass the seasonality
    test (three seasons, positive values) are deseasonalised. A history with no finite value gets
    NaN; one with fewer than three, its last value."""
    result = np.full((len(histories), horizon), np.nan)
    if last_ticks is None:
        last_ticks = np.array([len(history) - 1 for history in histories], dtype="int64")
    for first in range(0, len(histories), _CHUNK):
        block = [_trailing_run(history) for history in histories[first : first + _CHUNK]]
        result[first : first + len(block)] = _theta_block(block, horizon, season, np.asarray(last_ticks[first : first + len(block)]))
    return result


def _trailing_run(history: np.ndarray) -> np.ndarray:
    values = np.asarray(history, dtype="float64").ravel()
    finite = np.isfinite(values)
    start = 0 if finite.all() else len(values) - int(np.argmin(finite[::-1]))
    return values[max(start, len(values) - MAX_HISTORY) :]


def _theta_block(runs: list[np.ndarray], horizon: int, season: int, last_ticks: np.ndarray) -> np.ndarray:
    lengths = np.array([len(run) for run in runs])
    width = max(int(lengths.max()), 1)
    padded = np.full((len(runs), width), np.nan)  # right-aligned: every run ends in the last column
    for row, run in enumerate(runs):
        if len(run):
            padded[row, width - len(run) :] = run
    future = np.ones((len(runs), horizon))
    if season > 1:
        positions = (last_ticks[:, np.newaxis] - np.arange(width - 1, -1, -1)[np.newaxis, :]) % season
        factors = seasonal_factors_matrix(padded, positions, season)
        seasonal = np.isfinite(factors[:, 0])
        rows = np.flatnonzero(seasonal)[:, np.newaxis]
        padded[seasonal] /= factors[rows, positions[seasonal]]
        future[seasonal] = factors[rows, (last_ticks[seasonal, np.newaxis] + np.arange(1, horizon + 1)) % season]
    return _smoothed_with_drift(padded, lengths, horizon) * future


def _smoothed_with_drift(padded: np.ndarray, lengths: np.ndarray, horizon: int) -> np.ndarray:
    """Simple exponential smoothing plus half the linear trend's slope, for right-aligned runs."""
    alpha = ALPHAS[:, np.newaxis]
    level = np.full((len(ALPHAS), len(padded)), np.nan)
    squared = np.zeros_like(level)
    with np.errstate(invalid="ignore"):
        for column in range(padded.shape[1]):
            value = padded[:, column]
            started = np.isfinite(level)
            error = np.where(started, value - level, 0.0)  # runs have no gaps: started means present
            squared += error * error
            level = np.where(started, level + alpha * error, value)
    best = np.argmin(squared, axis=0)
    chosen = ALPHAS[best]
    final = level[best, np.arange(len(padded))]
    slope = _trend_slopes(padded, lengths)
    steps = np.arange(1, horizon + 1)[np.newaxis, :]
    decay = (1 - chosen) ** lengths
    drift = 0.5 * slope[:, np.newaxis] * (steps - 1 + (1 - decay[:, np.newaxis]) / chosen[:, np.newaxis])
    forecast = final[:, np.newaxis] + drift
    short = lengths < 3  # too short for a trend: the last value (NaN without one)
    forecast[short] = padded[short, -1:]
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
