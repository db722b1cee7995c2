"""Holiday inputs (`source.holidays`): computed from the timestamps alone, like the calendar, so they
are known for any period and need no plan rows.

Per configured calendar ("US", "US-CA"): for daily data (and business-daily) three 0/1 columns, a
holiday on the day, on the next day (the eve) and on the previous day (the day after); for any
other frequency one column, the number of holiday days in the period (a week's count, a month's
count; below a day: whether the day is a holiday). A period is the days its timestamp labels, as
pandas labels them: weekly and period-end timestamps (`W-SUN`, `ME`, `QE`) end their period (a
week is the seven days up to and including its timestamp), the others (`MS`, `QS`, `7D`) start it.
The dates come from the `holidays` package (its data ships with it: nothing is downloaded).
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd

from forecasting.config.holiday_codes import split_code

DAY = np.timedelta64(1, "D")


def holiday_width(frequency: str, codes: tuple[str, ...]) -> int:
    """How many holiday columns `codes` give on `frequency`."""
    return len(codes) * (3 if _daily(pd.tseries.frequencies.to_offset(frequency)) else 1)


def holiday_features(timestamps: pd.DatetimeIndex, frequency: str, codes: tuple[str, ...]) -> np.ndarray:
    """The holiday columns of `codes` at `timestamps` (rows x `holiday_width` columns, float)."""
    index = pd.DatetimeIndex(timestamps)
    if index.tz is not None:
        index = index.tz_localize(None)
    width = holiday_width(frequency, codes)
    if not len(index) or not width:
        return np.zeros((len(index), width))
    offset = pd.tseries.frequencies.to_offset(frequency)
    first, last = _periods(index, offset)
    years = (int(pd.Timestamp(first.min()).year) - 1, int(pd.Timestamp(last.max()).year) + 1)
    columns = []
    for code in codes:
        dates = holiday_dates(code, *years)
        count = lambda start, stop: (np.searchsorted(dates, stop) - np.searchsorted(dates, start)).astype("float64")  # noqa: E731 - days in [start, stop)
        if _daily(offset):
            columns += [count(first, last), count(first + DAY, last + DAY), count(first - DAY, last - DAY)]
        else:
            columns.append(count(first, last))
    return np.column_stack(columns)


@lru_cache(maxsize=64)
def holiday_dates(code: str, first_year: int, last_year: int) -> np.ndarray:
    """The sorted holiday dates (datetime64[D]) of calendar `code` from `first_year` to `last_year`."""
    import holidays  # lazy: holidays (its calendars are read only when source.holidays is set)

    country, subdivision = split_code(code)
    calendar = holidays.country_holidays(country, subdiv=subdivision, years=range(first_year, last_year + 1))
    return np.array(sorted(calendar), dtype="datetime64[D]")


def _daily(offset: pd.DateOffset) -> bool:
    return isinstance(offset, (pd.offsets.Day, pd.offsets.BusinessDay)) and offset.n == 1


def _periods(index: pd.DatetimeIndex, offset: pd.DateOffset) -> tuple[np.ndarray, np.ndarray]:
    """Each timestamp's period as days [first, last) (datetime64[D])."""
    days = index.normalize().values.astype("datetime64[D]")
    if _daily(offset) or (isinstance(offset, pd.offsets.Tick) and offset.nanos < pd.Timedelta("1D").value):
        return days, days + DAY
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)  # offsets without a vectorised path
        if isinstance(offset, pd.offsets.Week) or type(offset).__name__.endswith("End"):
            before = (index - offset).normalize().values.astype("datetime64[D]")
            return before + DAY, days + DAY
        after = (index + offset).normalize().values.astype("datetime64[D]")
    return days, after
