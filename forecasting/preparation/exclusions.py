"""Observations a training leaves out (`models.<name>.ignore_anomalies`): their target set to missing, so
they are handled as every missing value is (`source.gaps`: left as a gap no window spans, or filled)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def without_points(frame: pd.DataFrame, points: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The observations `frame` (series_id, ts, value, features...) with `value` set to NaN at the
    (series_id, ts) of `points` (features kept), and how many observations that changed. The frame is
    not changed in place (it may be the history store's shared copy)."""
    if frame.empty or points.empty:
        return frame, 0
    wanted = pd.MultiIndex.from_arrays(
        [points["series_id"].astype(str).to_numpy(), pd.to_datetime(points["ts"]).to_numpy(dtype="datetime64[ns]")]
    )
    keys = pd.MultiIndex.from_arrays(
        [frame["series_id"].astype(str).to_numpy(), pd.to_datetime(frame["ts"]).to_numpy(dtype="datetime64[ns]")]
    )
    chosen = keys.isin(wanted) & np.isfinite(frame["value"].to_numpy(dtype="float64"))
    if not chosen.any():
        return frame, 0
    values = frame["value"].to_numpy(dtype="float64", copy=True)
    values[chosen] = np.nan
    return frame.assign(value=values), int(chosen.sum())
