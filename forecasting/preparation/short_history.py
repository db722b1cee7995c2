"""Cold start: the input window of a series shorter than the lookback (a new store, a new product).

The missing past is padded with the series' own rows, one period later each: the period is the season
where the series holds a full one (its first season repeated backwards, so weekdays stay weekdays),
else its whole length (its few rows repeated). Every column is padded the same way (features and
calendar inputs come along with the target), and the series is scaled by what it has (the scaler
fitted on its observed rows only). The network then forecasts it as any other series; its rows are
recorded with method `short_history` (docs/model.md, "New and short series").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SHORT_HISTORY = "short_history"  # the `method` of a forecast from a padded window
NETWORK = "network"  # a forecast from a full window
CONSTANT = "constant"  # a constant series forecast as its value (`prediction.constant_value`)


def pad_period(length: int, season: int) -> int:
    """The period the missing past repeats: the season where the series holds a full one, else its length."""
    return season if 1 < season <= length else length


def pad_window(values: np.ndarray, lookback: int, season: int) -> np.ndarray:
    """`values` (rows x columns, 1 <= rows < lookback) as a `lookback`-row window: each missing row the
    row `pad_period` rows later (see the module)."""
    values = np.asarray(values, dtype="float64").reshape(len(values), -1)
    length = len(values)
    period = pad_period(length, season)
    positions = np.arange(lookback) - (lookback - length)
    return values[np.where(positions >= 0, positions, positions % period)]


def window_start(last: pd.Timestamp, lookback: int, frequency: str) -> pd.DatetimeIndex:
    """The first timestamp of a `lookback`-row window ending at `last` (a padded window's season position)."""
    return pd.date_range(end=last, periods=lookback, freq=frequency)[:1]
