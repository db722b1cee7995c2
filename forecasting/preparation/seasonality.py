"""Classical multiplicative seasonal factors per series, as the Theta method and the M4 benchmarks
deseasonalise: a seasonality test on the autocorrelation at the seasonal lag, then a centred
moving average of one season, the ratio of each value to it, and the mean ratio at each position
of the season, normalised to mean 1.

Positions come from timestamps (`season_ticks`), not from row numbers, so a factor stays tied to
its month (or weekday, or hour) whatever the first row of the history read in a later run is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# The 90% one-sided limit used by the Theta method's seasonality test (Assimakopoulos & Nikolopoulos
# 2000; the M4 competition's benchmarks).
_TEST_QUANTILE = 1.645


def season_ticks(timestamps: pd.DatetimeIndex, frequency: str) -> np.ndarray:
    """Each timestamp as a count of `frequency` steps since 1970: consecutive rows differ by one, and
    `ticks % season` is the position in the season (the same month of year gives the same position)."""
    base = pd.tseries.frequencies.to_offset(frequency)
    index = pd.DatetimeIndex(timestamps)
    # NumPy's calendar units count months, years and days since 1970 directly (pandas' field
    # accessors cost milliseconds per call, which added up to most of a forecast of 10,000 series).
    values = index.values
    if isinstance(base, (pd.offsets.MonthBegin, pd.offsets.MonthEnd)):
        steps = values.astype("datetime64[M]").astype("int64")
    elif isinstance(base, (pd.offsets.QuarterBegin, pd.offsets.QuarterEnd)):
        steps = values.astype("datetime64[M]").astype("int64") // 3
    elif isinstance(base, (pd.offsets.YearBegin, pd.offsets.YearEnd)):
        steps = values.astype("datetime64[Y]").astype("int64")
    elif isinstance(base, pd.offsets.Week):
        steps = (values.astype("datetime64[D]").astype("int64") - 4) // 7  # day 4 is Monday 1970-01-05
    elif isinstance(base, pd.offsets.Day):
        steps = values.astype("datetime64[D]").astype("int64") // base.n
    elif isinstance(base, pd.offsets.BusinessDay):
        steps = np.busday_count(np.datetime64("1970-01-01"), index.values.astype("datetime64[D]"))
    elif isinstance(base, pd.offsets.Tick):
        steps = (index.as_unit("ns").asi8 - pd.Timestamp("1970-01-01").value) // pd.Timedelta(base).value
    else:
        raise ValueError(f"no seasonal positions for frequency {frequency!r}")
    return np.asarray(steps, dtype="int64")


def _autocorrelation(values: np.ndarray, lag: int) -> float:
    centred = values - values.mean()
    denominator = float(centred @ centred)
    return float(centred[:-lag] @ centred[lag:]) / denominator if denominator > 0 else 0.0


def is_seasonal(values: np.ndarray, season: int) -> bool:
    """Whether the autocorrelation at lag `season` is significant (90%, Bartlett's variance), on at
    least three seasons of data."""
    values = np.asarray(values, dtype="float64")
    if season < 2 or len(values) < 3 * season or not np.isfinite(values).all():
        return False
    correlations = np.array([_autocorrelation(values, lag) for lag in range(1, season + 1)])
    limit = _TEST_QUANTILE * np.sqrt((1 + 2 * np.sum(correlations[:-1] ** 2)) / len(values))
    return bool(abs(correlations[-1]) > limit)


def seasonal_factors(values: np.ndarray, ticks: np.ndarray, season: int) -> np.ndarray | None:
    """Multiplicative factors by position (`ticks % season`), mean 1, from consecutive rows; None
    when the series is not seasonal, not positive, or too short to tell."""
    values = np.asarray(values, dtype="float64")
    if not (np.isfinite(values).all() and (values > 0).all()) or not is_seasonal(values, season):
        return None
    # Centred moving average over one season (2 x season for an even season).
    weights = np.ones(season + 1 - season % 2)
    if season % 2 == 0:
        weights[0] = weights[-1] = 0.5
    trend = np.convolve(values, weights / season, mode="valid")
    offset = (len(weights) - 1) // 2
    ratios = values[offset : offset + len(trend)] / trend
    positions = np.asarray(ticks[offset : offset + len(trend)]) % season
    factors = np.array([ratios[positions == p].mean() if (positions == p).any() else 1.0 for p in range(season)])
    return factors / factors.mean()


def seasonal_factors_matrix(padded: np.ndarray, positions: np.ndarray, season: int) -> np.ndarray:
    """`seasonal_factors` for many series at once (the same test and factors; a test checks they
    agree): `padded` holds one series per row, right-aligned, NaN before its first value;
    `positions` the seasonal position of every cell (`ticks % season`). Returns the factors by
    position (rows x season), NaN rows for the series that are not seasonal, not positive, or
    too short to tell."""
    rows, width = padded.shape
    result = np.full((rows, season), np.nan)
    present = np.isfinite(padded)
    lengths = present.sum(axis=1)
    candidate = (lengths >= 3 * season) & np.where(present, padded > 0, True).all(axis=1)
    if season < 2 or width < 3 * season or not candidate.any():
        return result
    values, present, positions = padded[candidate], present[candidate], positions[candidate]
    lengths = lengths[candidate]
    # The seasonality test: autocorrelations at lags 1..season (padding counts as zero), Bartlett's limit.
    mean = np.where(present, values, 0.0).sum(axis=1) / lengths
    centred = np.where(present, values - mean[:, np.newaxis], 0.0)
    denominator = (centred * centred).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlations = np.stack([(centred[:, :-lag] * centred[:, lag:]).sum(axis=1) for lag in range(1, season + 1)], axis=1)
        correlations = np.where(denominator[:, np.newaxis] > 0, correlations / denominator[:, np.newaxis], 0.0)
    limit = _TEST_QUANTILE * np.sqrt((1 + 2 * np.sum(correlations[:, :-1] ** 2, axis=1)) / lengths)
    seasonal = np.abs(correlations[:, -1]) > limit
    # Centred moving average over one season (2 x season for an even season): NaN where it reaches the padding.
    weights = np.ones(season + 1 - season % 2)
    if season % 2 == 0:
        weights[0] = weights[-1] = 0.5
    span = width - len(weights) + 1
    trend = sum(weight / season * values[:, shift : shift + span] for shift, weight in enumerate(weights))
    offset = (len(weights) - 1) // 2
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = values[:, offset : offset + span] / trend
    cells = np.isfinite(ratios)
    slots = (np.arange(len(values))[:, np.newaxis] * season + positions[:, offset : offset + span] % season)[cells]
    sums = np.bincount(slots, weights=ratios[cells], minlength=len(values) * season).reshape(-1, season)
    counts = np.bincount(slots, minlength=len(values) * season).reshape(-1, season)
    factors = np.where(counts > 0, sums / np.maximum(counts, 1), 1.0)
    factors = factors / factors.mean(axis=1, keepdims=True)
    found = np.full((len(values), season), np.nan)
    found[seasonal] = factors[seasonal]
    result[candidate] = found
    return result


def short_factors(values: np.ndarray, ticks: np.ndarray, season: int) -> np.ndarray | None:
    """Factors for a new series too short for the test (two full seasons, fewer than three): each value
    over the mean of its last whole seasons, averaged by position, mean 1. None otherwise, or when not
    positive. Given only where most series of the data set are seasonal (`SeriesScaler.fit_seasonal`):
    a new store then keeps its own weekly shape instead of being read as flat."""
    values = np.asarray(values, dtype="float64")
    whole = len(values) // season
    if season < 2 or whole < 2 or len(values) >= 3 * season:
        return None
    recent, positions = values[-whole * season :], np.asarray(ticks)[-whole * season :] % season
    if not (np.isfinite(recent).all() and (recent > 0).all()):
        return None
    ratios = recent / recent.mean()
    factors = np.array([ratios[positions == p].mean() for p in range(season)])
    return factors / factors.mean()
