"""Rows of covariates known in advance (`source.future_features`): rows past a series' last observed
target whose target is empty. The pull keeps them (screened on their future columns only); the
history store holds them; preparing the data splits them from the observations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FUTURE_ROW_REASON = "future row (empty target after the last observation): a future feature is missing or not finite"
DEFAULT_MAX_PERIODS = 1000  # source.max_future_periods' default


@dataclass(frozen=True)
class FutureRows:
    """What tells a future row apart: each series' last observed target time, and the future columns."""

    after: pd.Series  # series id -> timestamp of its last observed (non-empty) target
    columns: tuple[str, ...]
    max_periods: int = DEFAULT_MAX_PERIODS  # source.max_future_periods

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Which rows of `frame` are future rows: an empty target later than their series' last observed one."""
        after = self.after.astype("datetime64[us]").reindex(frame["series_id"].to_numpy()).to_numpy()
        with np.errstate(invalid="ignore"):
            later = frame["ts"].to_numpy(dtype="datetime64[us]") > after
        return frame["value"].isna().to_numpy() & later & ~np.isnat(after)

    def too_far(self, frame: pd.DataFrame, frequency: str) -> np.ndarray:
        """Which rows of `frame` lie more than `max_periods` periods of `frequency` after their series' last observation."""
        offset = pd.tseries.frequencies.to_offset(frequency)
        known = self.after.dropna().astype("datetime64[us]")
        limit = pd.Series(pd.DatetimeIndex(known.to_numpy()) + self.max_periods * offset, index=known.index).astype("datetime64[us]")
        bound = limit.reindex(frame["series_id"].to_numpy()).to_numpy()
        with np.errstate(invalid="ignore"):
            return (frame["ts"].to_numpy(dtype="datetime64[us]") > bound) & ~np.isnat(bound)


def last_observed(frame: pd.DataFrame) -> pd.Series:
    """Per series, the time of its last row with a target (series with none are left out)."""
    observed = frame.loc[frame["value"].notna().to_numpy(), ["series_id", "ts"]]
    return observed.groupby("series_id")["ts"].max().astype("datetime64[us]")


def observed_only(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a history frame that hold an observed target (future rows left out); the frame must carry `value`."""
    if "value" not in frame.columns:
        raise ValueError(f"observed_only needs the value column to tell future rows apart; the frame has {list(frame.columns)}")
    observed = frame["value"].notna().to_numpy()
    return frame if observed.all() else frame.loc[observed]  # no copy of a whole store that has no future rows


def split_future(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(observations, future rows) of a history frame: rows after each series' last target are future rows."""
    if frame.empty or frame["value"].notna().all():  # a future row has an empty target
        return frame, frame.iloc[0:0]
    is_future = future_mask(frame)
    if not is_future.any():
        return frame, frame.iloc[0:0]  # no copy of the whole store (pandas copies on write, so callers may change it)
    return frame.loc[~is_future], frame.loc[is_future]


def future_mask(frame: pd.DataFrame) -> np.ndarray:
    """`FutureRows(last_observed(frame), ()).mask(frame)` with integer codes per series instead of a
    Python string per row (12 M rows: gigabytes)."""
    codes, _ = pd.factorize(frame["series_id"])  # -1: no series id, never a future row (groupby drops it)
    times = frame["ts"].to_numpy(dtype="datetime64[us]").view("int64")
    observed = frame["value"].notna().to_numpy()
    never = np.iinfo(np.int64).min  # NaT's integer: below every time, and no row is later than a series without observations
    last = np.full(int(codes.max()) + 2, never, dtype="int64")  # the last slot: code -1's, left at `never`
    np.maximum.at(last, codes[observed & (codes >= 0)], times[observed & (codes >= 0)])
    after = last[codes]
    return ~observed & (after != never) & (times > after)


def pull_future_rows(
    columns: list[str], frame: pd.DataFrame, stored_last: pd.Series | None, max_periods: int = DEFAULT_MAX_PERIODS
) -> FutureRows | None:
    """How the pull tells future rows apart (None without future features): each series' last
    observed target in the pulled rows, or, for a series read only after its window, in the store
    (`stored_last`: the last observed target the previous pull recorded); `max_periods` bounds how far ahead."""
    if not columns:
        return None
    after = last_observed(frame)
    if stored_last is not None and len(stored_last):
        after = pd.concat([after, stored_last.dropna().astype("datetime64[us]")]).groupby(level=0).max()
    return FutureRows(after, tuple(columns), max_periods)
