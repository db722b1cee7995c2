"""Calendar inputs: the position of each timestamp in the cycles its frequency has, as sine/cosine
pairs; and all the inputs computed from the timestamps alone (calendar, then holidays)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.preparation.holiday_inputs import holiday_features, holiday_width


def timestamp_features(timestamps: pd.DatetimeIndex, frequency: str, calendar: bool, holidays: tuple[str, ...] = ()) -> np.ndarray:
    """The inputs computed from `timestamps` alone (rows x columns): the calendar columns with
    `calendar`, then the holiday columns of `holidays` (`holiday_inputs`)."""
    parts = [calendar_features(timestamps, frequency)] if calendar else []
    if holidays:
        parts.append(holiday_features(timestamps, frequency, tuple(holidays)))
    return np.hstack(parts) if parts else np.zeros((len(timestamps), 0))


def timestamp_width(frequency: str, calendar: bool, holidays: tuple[str, ...] = ()) -> int:
    """How many columns `timestamp_features` gives."""
    return (calendar_features(pd.DatetimeIndex([]), frequency).shape[1] if calendar else 0) + holiday_width(frequency, tuple(holidays))


def calendar_features(timestamps: pd.DatetimeIndex, frequency: str) -> np.ndarray:
    """Calendar inputs as fits the frequency, each cycle as a sine/cosine pair (rows x columns):
    month of year for monthly and coarser data (quarter of year for quarterly), week of year for
    weekly, day of week and month of year for daily, hour of day and day of week below a day.
    They are known for any timestamp, so they carry no information about future values."""
    base = pd.tseries.frequencies.to_offset(frequency)
    index = pd.DatetimeIndex(timestamps)
    if isinstance(base, pd.offsets.Tick) and base.nanos < pd.Timedelta("1D").value:
        cycles = [(index.hour + index.minute / 60.0, 24.0), (index.dayofweek, 7.0)]
    elif isinstance(base, (pd.offsets.Day, pd.offsets.BusinessDay)):
        cycles = [(index.dayofweek, 7.0), (index.month - 1, 12.0)]
    elif isinstance(base, pd.offsets.Week):
        cycles = [(index.isocalendar().week.to_numpy(dtype="float64") - 1, 52.0)]
    elif isinstance(base, (pd.offsets.QuarterBegin, pd.offsets.QuarterEnd)):
        cycles = [(index.quarter - 1, 4.0)]
    else:
        cycles = [(index.month - 1, 12.0)]
    columns = []
    for position, period in cycles:
        angle = 2 * np.pi * np.asarray(position, dtype="float64") / period
        columns += [np.sin(angle), np.cos(angle)]
    return np.column_stack(columns)
