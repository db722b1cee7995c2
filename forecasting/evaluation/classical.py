"""Classical forecasts fitted to each series alone, the forecast the network's is blended with
(`model.blending`): the Theta method (Assimakopoulos & Nikolopoulos 2000, in the form of Hyndman &
Billah 2003), and damped-trend exponential smoothing (Gardner & McKenzie 1985).

Each series is deseasonalised by classical multiplicative factors where the seasonality test passes
(`preparation.seasonality`, as the M3 and M4 benchmarks do), forecast, and reseasonalised. Theta is
simple exponential smoothing with half the slope of the linear trend added as drift; the damped
trend smooths a level and a trend whose effect fades by a factor per step. Each series' smoothing
parameters are those of a fixed grid with the lowest in-sample one-step squared error. All series
are fitted at once, padded into one matrix, so 100,000 series cost seconds, not a Python loop each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from forecasting.preparation.seasonality import seasonal_factors_matrix

# Theta's smoothing weights (denser near 0, where the squared error changes fastest).
ALPHAS = np.geomspace(0.01, 1.0, 40)
# The damped trend's (level weight, trend weight, damping) grid; the trend weight is a share of the level's.
# 54 points: on the M3 subsets' validation windows they forecast as well as a grid of 160, at a third of the cost.
DAMPED_GRID = np.array(
    [(alpha, alpha * share, phi) for alpha in (0.05, 0.1, 0.2, 0.4, 0.7, 1.0) for share in (0.01, 0.1, 0.3) for phi in (0.8, 0.9, 0.98)]
)
# The longest history read per series: the trend is fitted over it, so decades of daily rows would
# only slow the fit down without changing the forecast much.
MAX_HISTORY = 1000
_CHUNK = 4096  # series per block (memory: the grid x _CHUNK x a few arrays)

Method = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def theta_forecasts(histories: Sequence[np.ndarray], horizon: int, season: int = 1, last_ticks: np.ndarray | None = None) -> np.ndarray:
    """The Theta method's forecasts (series x horizon); see `classical_forecasts`."""
    return classical_forecasts(histories, horizon, season, last_ticks, ("theta",))["theta"]


def damped_trend_forecasts(histories: Sequence[np.ndarray], horizon: int, season: int = 1, last_ticks: np.ndarray | None = None) -> np.ndarray:
    """Damped-trend exponential smoothing's forecasts (series x horizon); see `classical_forecasts`."""
    return classical_forecasts(histories, horizon, season, last_ticks, ("damped_trend",))["damped_trend"]


def classical_forecasts(
    histories: Sequence[np.ndarray], horizon: int, season: int = 1, last_ticks: np.ndarray | None = None, methods: Sequence[str] = ("theta", "damped_trend")
) -> dict[str, np.ndarray]:
    """Each method's forecast of the next `horizon` steps after each history (series x horizon), by name.

    Each history's trailing run of finite values is read (at most `MAX_HISTORY`). `last_ticks` are
    the seasonal ticks of each history's last row (`seasonality.season_ticks`; the rows are
    consecutive steps; default: the row count); with `season` > 1, series that pass the seasonality
    test (three seasons, positive values) are deseasonalised, once for every method. A history with
    no finite value gets NaN; one with fewer than three, its last value."""
    chosen = {name: METHODS[name] for name in methods}
    result = {name: np.full((len(histories), horizon), np.nan) for name in chosen}
    if last_ticks is None:
        last_ticks = np.array([len(history) - 1 for history in histories], dtype="int64")
    for first in range(0, len(histories), _CHUNK):
        runs = [_trailing_run(history) for history in histories[first : first + _CHUNK]]
        block = _block(runs, horizon, season, np.asarray(last_ticks[first : first + len(runs)]), chosen)
        for name, values in block.items():
            result[name][first : first + len(runs)] = values
    return result


def _trailing_run(history: np.ndarray) -> np.ndarray:
    values = np.asarray(history, dtype="float64").ravel()
    finite = np.isfinite(values)
    start = 0 if finite.all() else len(values) - int(np.argmin(finite[::-1]))
    return values[max(start, len(values) - MAX_HISTORY) :]


def _block(runs: list[np.ndarray], horizon: int, season: int, last_ticks: np.ndarray, methods: dict[str, Method]) -> dict[str, np.ndarray]:
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
    short = lengths < 3  # too short for a trend: the last value (NaN without one)
    result = {}
    for name, method in methods.items():
        forecast = method(padded, lengths, horizon)
        forecast[short] = padded[short, -1:]
        result[name] = forecast * future
    return result


def _theta(padded: np.ndarray, lengths: np.ndarray, horizon: int) -> np.ndarray:
    """Simple exponential smoothing plus half the linear trend's slope, for right-aligned runs."""
    alpha = ALPHAS[:, np.newaxis]
    level = np.full((len(ALPHAS), len(padded)), np.nan)
    squared = np.zeros_like(level)
    with np.errstate(invalid="ignore", over="ignore"):  # a series of huge values: its squared error is inf, never chosen
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
    return final[:, np.newaxis] + drift


def _damped(padded: np.ndarray, lengths: np.ndarray, horizon: int) -> np.ndarray:
    """Damped-trend exponential smoothing for right-aligned runs: level from the first value, trend
    from the first difference, then one-step errors update both."""
    alpha, beta, phi = (DAMPED_GRID[:, column : column + 1] for column in range(3))
    shape = (len(DAMPED_GRID), len(padded))
    level, trend, squared = np.full(shape, np.nan), np.zeros(shape), np.zeros(shape)
    width = padded.shape[1]
    position = np.arange(width)[np.newaxis, :] - (width - lengths)[:, np.newaxis]  # index within each run
    with np.errstate(invalid="ignore", over="ignore"):  # a series of huge values: its squared error is inf, never chosen
        for column in range(width):
            value, index = padded[:, column], position[:, column]
            first, second, later = index == 0, index == 1, index >= 2
            expected = level + phi * trend
            error = np.where(later, value - expected, 0.0)
            squared += error * error
            trend = np.where(second, value - level, np.where(later, phi * trend + beta * error, trend))
            level = np.where(first | second, value, np.where(later, expected + alpha * error, level))
    best = np.argmin(squared, axis=0)
    rows = np.arange(len(padded))
    damping = DAMPED_GRID[best, 2][:, np.newaxis]
    reach = np.cumsum(damping ** np.arange(1, horizon + 1)[np.newaxis, :], axis=1)
    return level[best, rows][:, np.newaxis] + reach * trend[best, rows][:, np.newaxis]


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


METHODS: dict[str, Method] = {"theta": _theta, "damped_trend": _damped}
