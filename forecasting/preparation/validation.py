"""Checks on observations before they are stored or used, with reasons a person can act on."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.errors import InputError, RunError
from forecasting.preparation.future_rows import FUTURE_ROW_REASON, FutureRows
from forecasting.preparation.grids import (
    duplicated_sorted,
    regular_frame,
    regular_frame_by_series,
    sorted_codes,
)
from forecasting.preparation.scaling import TOO_LARGE_REASON, representable

MAX_LISTED = 5


def infer_frequency(frame: pd.DataFrame, configured: str | None = None) -> str:
    """The configured frequency, or the most common one pandas infers across series."""
    if configured:
        return configured
    found: Counter[str] = Counter()
    for _, group in frame.groupby("series_id", sort=False):
        if len(group) >= 3:
            freq = pd.infer_freq(pd.DatetimeIndex(group["ts"]).sort_values())
            if freq:
                found[freq] += 1
        if sum(found.values()) >= 50:
            break
    if not found:
        raise RunError("cannot infer the series frequency from the data; set source.frequency (for example 'MS')")
    return found.most_common(1)[0][0]


# ISO 8601 text with a time and a UTC designator or offset (`Z`, `+01:00`, `-0500`, `+09`).
AWARE_TEXT = r"[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"


def to_utc_naive(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC, whatever form they come in (datetime64 with or without a time zone,
    datetime objects, ISO 8601 text with `Z`, an offset or none): aware ones are converted to UTC,
    naive ones are taken to be UTC. Values that cannot be read become NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        if getattr(values.dt, "tz", None) is not None:
            return values.dt.tz_convert("UTC").dt.tz_localize(None)
        return values
    if len(values) and pd.api.types.infer_dtype(values, skipna=True) == "datetime":
        parsed = pd.to_datetime(values, errors="coerce", utc=True)
    else:
        # Each distinct text is read once (a long frame repeats every period once per series).
        codes, distinct = pd.factorize(values.astype("string"))
        text = pd.Series(distinct, dtype="string")
        aware = text.str.contains(AWARE_TEXT, regex=True, na=False).to_numpy()
        if aware.any() and not aware.all():
            # pandas 2 carries one row's offset over to the naive rows after it; parse each kind apart.
            kinds = [_iso_utc(text.where(mask)) for mask in (aware, ~aware)]
            once = kinds[0].where(aware, kinds[1])
        else:
            once = _iso_utc(text)
        parsed = once.array.take(codes, allow_fill=True)
    return pd.Series(parsed, index=values.index).dt.tz_localize(None)


def _iso_utc(text: pd.Series) -> pd.Series:
    return pd.Series(pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601"), index=text.index)


def on_grid(timestamps: pd.Series, frequency: str) -> np.ndarray:
    """Which timestamps fall on the `frequency` grid (month starts at midnight for MS, midnights for D, ...)."""
    offset = pd.tseries.frequencies.to_offset(frequency)
    index = pd.DatetimeIndex(timestamps)
    if isinstance(offset, pd.offsets.Tick):
        return np.asarray(index.floor(offset) == index)
    distinct = distinct_times(index)  # few distinct timestamps even with many series: check each once
    fits = np.array([offset.is_on_offset(ts) for ts in distinct], dtype=bool)
    if not isinstance(offset, (pd.offsets.BusinessHour, pd.offsets.CustomBusinessHour)):
        # Calendar offsets (MS, W-MON, QS, ...) accept any time of day on the right date; their grid is at midnight.
        fits &= np.asarray(distinct.normalize() == distinct)
    return np.asarray(index.isin(distinct[fits]))


UNIQUE_CHUNK = 100_000  # rows at a time: pandas' unique sizes its hash table by its input (70 bytes a row)


def distinct_times(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """`index.unique().dropna()`, found a chunk of rows at a time (12 M rows would take a gigabyte at once)."""
    if len(index) <= UNIQUE_CHUNK:
        return index.unique().dropna()
    parts = [index[start : start + UNIQUE_CHUNK].unique() for start in range(0, len(index), UNIQUE_CHUNK)]
    return parts[0].append(parts[1:]).unique().dropna()


@dataclass
class Screening:
    """Rows fit for use, rows set aside with a reason, series set aside whole, and counts."""

    clean: pd.DataFrame
    quarantined: pd.DataFrame  # series_id, ts, value, reason
    duplicates: int
    skipped: dict[str, str] = field(default_factory=dict)  # series set aside whole -> why


MISSING_SERIES_REASON = "series id missing"

# The series id rule, the same on every database (README, "Data safety"): at most as many characters
# as the job's series_id columns hold (VARCHAR(200), sql/migrations), no leading or trailing
# whitespace (" P " is not silently made "P"). `load` refuses a file with such an id; a pull
# quarantines such rows (like rows without an id: they belong to no series and are never stored).
MAX_SERIES_ID_LENGTH = 200
PADDED_ID_REASON = "series id has leading or trailing whitespace"
_SHOWN_ID = 40  # characters of an overlong id a message shows


def long_id_reason(series_id: str) -> str:
    """Why an id longer than MAX_SERIES_ID_LENGTH is refused, showing its start."""
    return f"series id has {len(series_id)} characters, more than the {MAX_SERIES_ID_LENGTH} allowed ({series_id[:_SHOWN_ID] + '…'!r})"


def series_id_problem(series_id: object) -> str:
    """Why an id breaks the series id rule, or "" (a missing id is not judged here)."""
    if not isinstance(series_id, str):
        return ""
    if len(series_id) > MAX_SERIES_ID_LENGTH:
        return long_id_reason(series_id)
    if series_id != series_id.strip():
        return PADDED_ID_REASON
    return ""


def series_id_problems(series_ids: pd.Series) -> np.ndarray:
    """`series_id_problem` of each id (each distinct id judged once), as an object array."""
    codes, distinct = pd.factorize(series_ids, use_na_sentinel=True)
    reasons = np.array([series_id_problem(value) for value in distinct] + [""], dtype=object)
    return reasons[codes]


def duplicated_keys(frame: pd.DataFrame) -> np.ndarray:
    """Which rows of a pulled frame give way to another row of the same (series, ts): a row with a target
    wins over rows without one (an observation arriving as a new row beside its plan row), and among
    rows alike in that the last read wins (the source's order; SQL does not order such ties)."""
    keys = ["series_id", "ts"]
    duplicated = frame.duplicated(keys, keep="last").to_numpy()
    if not duplicated.any() or "value" not in frame.columns:
        return duplicated
    involved = np.flatnonzero(frame.duplicated(keys, keep=False).to_numpy())
    group = frame.iloc[involved][keys].assign(_has=frame["value"].iloc[involved].notna().to_numpy(), _at=involved)
    kept = group.sort_values(["_has", "_at"], kind="stable").drop_duplicates(keys, keep="last")["_at"].to_numpy()
    duplicated = duplicated.copy()  # pandas may hand out a read-only view
    duplicated[involved] = True
    duplicated[kept] = False
    return duplicated


def screen(
    frame: pd.DataFrame,
    frequency: str,
    max_fraction: float,
    stored_rows: pd.Series | None = None,
    on_bad: str = "fail",
    latest_allowed: pd.Timestamp | None = None,
    future: FutureRows | None = None,
) -> Screening:
    """Set aside rows that cannot be used (missing or non-finite values, timestamps off the grid or
    later than `latest_allowed`), keep one of duplicated (series, ts) rows (`duplicated_keys`), and judge each
    series: when more than `max_fraction` of its rows (the pulled ones plus `stored_rows`, the rows
    of its history kept from earlier pulls) are unusable, the run fails before anything is stored
    (`on_bad="fail"`) or the whole series' pulled rows are set aside and it is listed (`"skip"`).
    With `future`, a row whose target is empty after its series' last observed target is a future
    row: only its future columns must be finite (an empty target before that is still unusable), and
    instead of `latest_allowed` it must lie within `future.max_periods` periods of that observation."""
    duplicated = duplicated_keys(frame)
    frame = frame.loc[~duplicated]
    value_columns = [c for c in frame.columns if c not in ("series_id", "ts")]
    values = frame[value_columns].to_numpy(dtype="float64")
    reasons = pd.Series("", index=frame.index, dtype=object)
    bad_value = ~np.isfinite(values).all(axis=1)
    reasons[bad_value] = "value missing or not finite"
    is_future = future.mask(frame) if future is not None else np.zeros(len(frame), dtype=bool)
    if future is not None:
        future_values = frame[list(future.columns)].to_numpy(dtype="float64")
        bad_future = is_future & ~np.isfinite(future_values).all(axis=1)
        bad_value = np.where(is_future, bad_future, bad_value)
        reasons[is_future] = ""
        reasons[bad_future] = FUTURE_ROW_REASON
    off_grid = ~on_grid(frame["ts"], frequency)
    reasons[off_grid & ~bad_value] = f"timestamp not on the {frequency} grid"
    reasons[~representable(values)] = TOO_LARGE_REASON
    if latest_allowed is not None:  # observed rows only: future rows are plans, bounded per series below
        late = (frame["ts"] > latest_allowed).to_numpy() & ~is_future
        # No date in the text: the reason is part of the row's quarantine key, the same on every pull.
        reasons[late & ~bad_value & ~off_grid] = "timestamp later than the run's time plus source.max_future"
    if future is not None:
        far = is_future & future.too_far(frame, frequency)
        reasons[far & ~bad_value & ~off_grid] = (
            f"future row more than {future.max_periods} periods after its series' last observation (source.max_future_periods)"
        )
    id_reasons = series_id_problems(frame["series_id"])
    bad_id = id_reasons != ""
    reasons[bad_id] = id_reasons[bad_id]
    reasons[frame["series_id"].isna().to_numpy()] = MISSING_SERIES_REASON
    is_bad = (reasons != "").to_numpy()
    skipped: dict[str, str] = {}
    if is_bad.any():
        # Rows whose id breaks the rule belong to no series (like rows without one): judged apart.
        keyed = ~bad_id
        bad = pd.Series(is_bad[keyed], index=frame.index[keyed]).groupby(frame["series_id"].loc[keyed]).agg(["sum", "size"])
        base = bad["size"] + (stored_rows.reindex(bad.index).fillna(0) if stored_rows is not None else 0)
        fraction = (bad["sum"] / base).where(bad["sum"] > 0, 0.0)
        over = fraction[fraction > max_fraction].sort_values(ascending=False)
        if len(over):
            first_reason = {sid: reasons[(frame["series_id"] == sid).to_numpy() & is_bad].iloc[0] for sid in over.index[:MAX_LISTED]}
            if on_bad == "fail":
                listed = ", ".join(f"{sid} ({share:.0%})" for sid, share in over.head(MAX_LISTED).items())
                sid = over.index[0]
                example = frame.loc[(frame["series_id"] == sid).to_numpy() & is_bad].iloc[0]
                raise RunError(
                    f"{len(over)} series have more than {max_fraction:.0%} of their rows unusable: {listed}; "
                    f"for example {sid} at {example.ts}: {first_reason[sid]}. Nothing was stored; "
                    "fix the source, raise source.max_quarantined_fraction, or set source.on_bad_series = \"skip\""
                )
            for sid, share in over.items():
                skipped[str(sid)] = (
                    f"{int(bad.loc[sid, 'sum'])} of {int(base.loc[sid])} rows unusable ({share:.0%}, over source.max_quarantined_fraction "
                    f"{max_fraction:.0%})" + (f", e.g. {first_reason[sid]}" if sid in first_reason else "")
                )
            in_skipped = frame["series_id"].isin(over.index).to_numpy()
            reasons[in_skipped & ~is_bad] = "series set aside: too many of its rows are unusable (source.max_quarantined_fraction)"
            is_bad = is_bad | in_skipped
    quarantined = frame.loc[is_bad, ["series_id", "ts"]].assign(
        value=[json_value(v) for v in frame.loc[is_bad, value_columns].to_numpy()], reason=reasons[is_bad].to_numpy()
    )
    return Screening(
        clean=frame.loc[~is_bad], quarantined=quarantined.reset_index(drop=True), duplicates=int(duplicated.sum()), skipped=skipped
    )


def json_value(values: np.ndarray) -> str:
    return ", ".join("null" if v is None or (isinstance(v, float) and np.isnan(v)) else repr(float(v)) for v in values)


def fill_gaps(frame: pd.DataFrame, policy: str) -> pd.DataFrame:
    """Fill missing grid points of a regular frame per `policy` (leave, interpolate, ffill, zero)."""
    if policy == "leave":
        return frame
    value_columns = [c for c in frame.columns if c not in ("series_id", "ts")]
    grouped = frame.groupby("series_id", sort=False)[value_columns]
    if policy == "interpolate":
        filled = grouped.transform(lambda column: column.interpolate(limit_area="inside"))
    elif policy == "ffill":
        filled = grouped.ffill()
    elif policy == "zero":
        filled = frame[value_columns].fillna(0.0)
    else:
        raise ValueError(f"unknown gap policy {policy!r}")
    return frame.assign(**{c: filled[c] for c in value_columns})


@dataclass
class PreparationReport:
    """What `regularize` changed: counts a summary can show."""

    duplicate_rows: int = 0
    non_finite_values: int = 0
    off_frequency_rows: int = 0
    filled_gaps: int = 0
    notes: list[str] = field(default_factory=list)


def regularize(frame: pd.DataFrame, frequency: str) -> tuple[pd.DataFrame, PreparationReport]:
    """Put every series on a regular `frequency` grid from its first to last timestamp.

    Duplicated (series, ts) keep the last row; non-finite values become missing; rows off the
    grid are dropped and counted; missing grid points become NaN rows, so no window spans a gap.
    """
    report = PreparationReport()
    offset = pd.tseries.frequencies.to_offset(frequency)

    # A frame read from the history store is sorted already: its duplicates are neighbours, and it is not sorted again.
    codes = sorted_codes(frame) if len(frame) > 1 else None
    if codes is not None:
        duplicated = duplicated_sorted(codes, frame["ts"].to_numpy())
    else:
        duplicated = frame.duplicated(["series_id", "ts"], keep="last").to_numpy()
    report.duplicate_rows = int(duplicated.sum())
    # pandas copies on write: the caller's frame is never changed, so a frame without duplicates is not copied.
    frame = frame.loc[~duplicated] if report.duplicate_rows else frame
    value_columns = [c for c in frame.columns if c not in ("series_id", "ts")]
    numeric = frame[value_columns].to_numpy(dtype="float64")
    non_finite = np.isinf(numeric)
    report.non_finite_values = int(non_finite.sum())
    if report.non_finite_values:
        frame = frame.assign(**dict(zip(value_columns, np.where(non_finite, np.nan, numeric).T)))
    del numeric, non_finite, duplicated
    if codes is None:
        frame = frame.sort_values(["series_id", "ts"])
    del codes
    # The grid is the frequency's own points, never anchored on a row that is off it (03:00 on a month start).
    fits = on_grid(frame["ts"], frequency)
    report.off_frequency_rows = int((~fits).sum())
    if report.off_frequency_rows:
        report.notes.append(f"{report.off_frequency_rows} rows off the {frequency} grid were ignored")
    found = regular_frame(frame, frequency, fits)
    result, report.filled_gaps = found if found is not None else regular_frame_by_series(frame, frequency, fits)
    return result, report


def check_loaded_file(raw: pd.DataFrame, parsed: pd.DataFrame, where: str, value_columns: list[str]) -> None:
    """Reject a whole file when any row has no series id or one breaking the series id rule (too long,
    padded), an unparseable timestamp, a non-numeric or non-finite value, or repeats a (series, ts) key.
    Names the first rows."""
    problems: list[tuple[int, str]] = []
    for position in np.flatnonzero(parsed["series_id"].isna().to_numpy()):
        problems.append((position, "series id is empty"))
    for position in np.flatnonzero(series_id_problems(parsed["series_id"]) != ""):
        series_id = parsed["series_id"].iloc[position]
        if len(series_id) > MAX_SERIES_ID_LENGTH:
            problems.append((position, f"series id {series_id[:_SHOWN_ID] + '…'!r} has {len(series_id)} characters, more than the {MAX_SERIES_ID_LENGTH} allowed"))
        else:
            problems.append((position, f"series id {series_id!r} has leading or trailing whitespace"))
    for position in np.flatnonzero(parsed["ts"].isna().to_numpy()):
        problems.append((position, f"timestamp {raw.iloc[position, 1]!r} is not a valid timestamp"))
    for offset, column in enumerate(value_columns):
        values = parsed[column].to_numpy(dtype="float64")
        for position in np.flatnonzero(~np.isfinite(values)):
            original = raw.iloc[position, 2 + offset]
            problems.append((position, f"{column} {original!r} is not a finite number"))
    valid_keys = parsed.dropna(subset=["series_id", "ts"])
    duplicated = valid_keys.duplicated(["series_id", "ts"], keep=False)
    for position in valid_keys.index[duplicated.to_numpy()]:
        problems.append((int(position), "the same series and timestamp appear in more than one row"))
    if problems:
        rows = sorted({position for position, _ in problems})
        problems.sort()
        listed = "; ".join(f"row {position + 1}: {reason}" for position, reason in problems[:MAX_LISTED])
        more = f"; and {len(problems) - MAX_LISTED} more problems" if len(problems) > MAX_LISTED else ""
        raise InputError(f"{where}: {len(rows)} of {len(raw)} rows are invalid, nothing was loaded. {listed}{more}")
