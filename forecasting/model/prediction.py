"""Forecasting the next `horizon` steps after each series' last observation, with intervals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pandas as pd

from forecasting.evaluation.metrics import score, seasonal_naive_forecast, seasonal_naive_scale
from forecasting.preparation.batch_scaling import encode_windows
from forecasting.preparation.future_inputs import encode_future, horizon_blocks, network_inputs
from forecasting.sources.tables import interval_columns
from forecasting.model.network import forecast_array
from forecasting.preparation.scaling import SeriesScaler, WindowLevels
from forecasting.preparation.short_history import CONSTANT, NETWORK, SHORT_HISTORY, pad_window, window_start
from forecasting.preparation.windows import SeriesArrays


@dataclass
class ForecastResult:
    forecasts: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)  # series id -> reason
    constant: dict[str, str] = field(default_factory=dict)  # series id -> value forecast and why
    short: dict[str, str] = field(default_factory=dict)  # series id -> its observations, forecast from a padded window


def constant_value(values: np.ndarray, lookback: int, window_scaling: bool) -> tuple[float, str] | None:
    """The value to forecast, and why, for a series the network cannot forecast sensibly: every
    observation the same (a constant series: the network would add a shape it learned elsewhere),
    or, with window scaling, an input window of zeros (no level to scale by). None otherwise."""
    target = np.asarray(values, dtype="float64")[:, 0]
    finite = target[np.isfinite(target)]
    if len(finite) and (finite == finite[0]).all():
        return float(finite[0]), "constant series"
    if window_scaling and len(target) >= lookback and (target[-lookback:] == 0).all():
        return 0.0, f"last {lookback} observations all zero"
    return None


@dataclass
class LastWindows:
    """Each series' last `lookback` rows before a cut, scaled for the network, in the arrays' order:
    the series the network forecasts (`ids`, their scaled `inputs` and `levels`), those forecast as
    a constant (`constant`: value and why), those left out (`skipped`: why), those of `ids` whose
    window was padded (`short`: how many observations they have), and the scaler that scaled them (a
    copy holding the series it had not seen, where there were any)."""

    ids: list[str]
    inputs: np.ndarray | None
    levels: WindowLevels
    scaler: SeriesScaler
    constant: dict[str, tuple[float, str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    short: dict[str, int] = field(default_factory=dict)


def last_windows(
    scaler: SeriesScaler, arrays: SeriesArrays, lookback: int, cut: int = 0, series: list[str] | None = None, pad_season: int | None = None
) -> LastWindows:
    """The one window selection and scaling of forecasts and holdout scores: for each series (of
    `series`, default all), its history is every row but the last `cut` (0: a forecast from the
    last observation; the horizon: a holdout score), its window the last `lookback` rows of that
    history. A series shorter than `lookback` is skipped, or with `pad_season` (a forecast) its window is
    padded (`short_history.pad_window`, cold start); series with gaps in the window are skipped, constant
    ones (`constant_value`) set apart, and series the scaler has not seen are scaled by their own history
    in a copy of the scaler (the scaler given is left as it is); every other window is scaled in one batch."""
    skipped: dict[str, str] = {}
    constant: dict[str, tuple[float, str]] = {}
    short: dict[str, int] = {}
    ids, windows, ticks = [], [], []
    for series_id in arrays.values if series is None else series:
        values, timestamps = arrays.values[series_id], arrays.timestamps[series_id]
        if cut:
            values, timestamps = values[:-cut], timestamps[:-cut]
        padded = pad_season is not None and 0 < len(values) < lookback
        if len(values) < lookback and not padded:
            skipped[series_id] = f"{len(values)} observations, fewer than lookback {lookback}"
            continue
        window = pad_window(values, lookback, pad_season) if padded else values[-lookback:]
        if not np.isfinite(window).all():
            skipped[series_id] = f"missing values in the last {lookback} observations"
            continue
        found = constant_value(values, lookback, scaler.target != "series")
        if found is not None:
            constant[series_id] = found
            continue
        if series_id not in scaler:
            if not any(sid not in scaler for sid in ids):
                scaler = scaler.copy()  # the first series it has not seen: the caller's scaler stays as it is
            scaler.add(series_id, values)
            if padded and scaler.mostly_seasonal():
                scaler.add_short_seasonal(series_id, values, timestamps)
        ids.append(series_id)
        windows.append(window)
        if padded:
            short[series_id] = len(values)
            start = window_start(timestamps[-1], lookback, scaler.frequency) if scaler.seasonal else timestamps[:1]
            ticks.append(scaler.ticks(start))
        else:
            ticks.append(scaler.ticks(timestamps[-lookback:])[:1])
    if not ids:
        return LastWindows([], None, WindowLevels.empty(), scaler, constant, skipped, short)
    # Every window scaled in one batch, kept as one array (not a view and a WindowLevels per series).
    inputs, _, levels = encode_windows(scaler, np.asarray(ids, dtype=object), np.stack(windows), first_ticks=np.concatenate(ticks))
    return LastWindows(ids, inputs, levels, scaler, constant, skipped, short)


def predict(
    model: keras.Model,
    scaler: SeriesScaler,
    arrays: SeriesArrays,
    lookback: int,
    horizon: int,
    frequency: str,
    interval_halfwidths: dict[int, list[float]] | None = None,
    season: int = 1,
) -> ForecastResult:
    """One forecast per series from its last `lookback` rows (`last_windows`); a series shorter than
    that from its window padded with its own rows, one `season` later (cold start, method `short_history`);
    series with gaps there are skipped, series the scaler has not seen are scaled by their own history.
    Returns a long frame: series_id, forecast_origin, target_ts, step, yhat, interval columns, method
    (`network`, `short_history` or `constant`). A padded window's intervals take the same per-step
    widths, in its own scale, as every other window's."""
    selected = last_windows(scaler, arrays, lookback, pad_season=season)
    ids, skipped, constant = selected.ids, selected.skipped, selected.constant
    future = prediction_blocks(selected.scaler, arrays, ids, horizon, frequency)
    columns = ["series_id", "forecast_origin", "target_ts", "step", "yhat"]
    for level in sorted(interval_halfwidths or {}):
        columns += list(interval_columns(level))
    columns.append("method")
    short = {sid: f"{count} observations, fewer than lookback {lookback}: padded" for sid, count in selected.short.items()}
    frames = []
    if ids:
        scaled = forecast_array(model, network_inputs(selected.inputs, future), "forecast", "series")
        frame = forecast_frame(ids, [arrays.timestamps[sid][-1] for sid in ids], scaled, selected.levels, frequency, interval_halfwidths)
        methods = np.array([SHORT_HISTORY if sid in selected.short else NETWORK for sid in ids], dtype=object)
        frame["method"] = np.repeat(methods, horizon)
        values = frame[[c for c in frame.columns if c == "yhat" or c.startswith(("yhat_lower_", "yhat_upper_"))]].to_numpy(dtype="float64")
        broken = frame.loc[~np.isfinite(values).all(axis=1), "series_id"].unique()
        for series_id in broken:  # never written: listed with the skipped series instead
            skipped[series_id] = "the network's forecast is not finite"
            short.pop(series_id, None)
        frames.append(frame[~frame["series_id"].isin(broken)] if len(broken) else frame)  # no copy of 1.8 M rows for nothing
    del selected
    if constant:
        # Scale 0 decodes every value, interval bounds included, to the constant: a zero-width interval.
        flat = WindowLevels(np.array([value for value, _ in constant.values()]), np.zeros(len(constant)), np.zeros(len(constant), dtype=bool))
        frame = forecast_frame(list(constant), [arrays.timestamps[sid][-1] for sid in constant], np.zeros((len(constant), horizon)), flat,
                               frequency, interval_halfwidths)
        frame["method"] = CONSTANT
        frames.append(frame)
    described = {sid: f"{value:g} ({why})" for sid, (value, why) in constant.items()}
    if not frames:
        return ForecastResult(pd.DataFrame(columns=columns), skipped, described, short)
    if len(frames) == 1 and list(frames[0].columns) == columns and frames[0].index.equals(pd.RangeIndex(len(frames[0]))):
        return ForecastResult(frames[0], skipped, described, short)  # what the concatenation would give, without a copy of it
    return ForecastResult(pd.concat(frames, ignore_index=True)[columns], skipped, described, short)


def prediction_blocks(scaler: SeriesScaler, arrays: SeriesArrays, ids: list[str], horizon: int, frequency: str) -> np.ndarray | None:
    """The scaled future blocks of the series `ids` for the periods after their last observation
    (None without future inputs); an InputError names the series whose future values are missing."""
    if not arrays.future_columns or not ids:
        return None
    blocks = horizon_blocks(arrays, ids, horizon, frequency)
    return encode_future(scaler, np.asarray(ids, dtype=object), blocks, arrays.future_columns)


def forecast_frame(
    ids: list[str],
    origins: list[pd.Timestamp],
    scaled: np.ndarray,
    levels: WindowLevels,
    frequency: str,
    interval_halfwidths: dict[int, list[float]] | None = None,
) -> pd.DataFrame:
    """Scaled forecasts (series x horizon) to the long forecast frame, with interval columns.

    Interval bounds are the forecast plus and minus the per-step half-width in the scaled space,
    mapped back: with log scaling they are asymmetric and never below zero."""
    offset = pd.tseries.frequencies.to_offset(frequency)
    horizon = scaled.shape[1]
    steps = np.arange(1, horizon + 1)
    origin_index = pd.DatetimeIndex(np.repeat(pd.DatetimeIndex(origins).values, horizon))
    frame = pd.DataFrame(
        {
            "series_id": np.repeat(np.asarray(ids, dtype=object), horizon),
            "forecast_origin": origin_index,
            "target_ts": target_times(pd.DatetimeIndex(origins), horizon, offset),
            "step": np.tile(steps, len(ids)),
            "yhat": levels.decode(scaled).ravel(),
        }
    )
    for level, widths in sorted((interval_halfwidths or {}).items()):
        lower, upper = interval_columns(level)
        half = np.asarray(widths, dtype="float64")[np.newaxis, :]
        frame[lower] = levels.decode(scaled - half).ravel()
        frame[upper] = levels.decode(scaled + half).ravel()
    return frame


def target_times(origins: pd.DatetimeIndex, horizon: int, offset: pd.DateOffset) -> pd.DatetimeIndex:
    """`origin + step * offset` for each origin and step 1..horizon, origin by origin (rows: origins x
    steps), computed once per distinct origin (most series share a few)."""
    distinct, inverse = np.unique(origins.values, return_inverse=True)
    table = np.array(
        [[(pd.Timestamp(origin) + step * offset).to_datetime64() for step in range(1, horizon + 1)] for origin in distinct]
    ).reshape(len(distinct), horizon)
    return pd.DatetimeIndex(table[inverse.ravel()].ravel())


@dataclass
class HoldoutForecasts:
    """Each scored series' latest `horizon` observations (`actual`) forecast from just before them by
    the network (`predicted`), with the histories before them and those histories' seasonal-naive
    forecasts and MASE scales (rows: `ids`), and the network's interval bounds by level, where asked."""

    ids: list[str]
    actual: np.ndarray
    predicted: np.ndarray
    naive: np.ndarray
    scales: np.ndarray
    histories: list[np.ndarray]
    timestamps: list[pd.DatetimeIndex]
    bounds: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # level -> (lower, upper)


def holdout_forecasts(
    model: Any, scaler: SeriesScaler, arrays: SeriesArrays, lookback: int, horizon: int, season: int,
    interval_halfwidths: dict[int, list[float]] | None = None,
) -> HoldoutForecasts | None:
    """The network's forecasts of each series' latest `horizon` observations from just before them
    (`last_windows` with that cut, as `predict` forecasts), with the bounds of `interval_halfwidths`
    (as `forecast_frame` maps them back). Series without `lookback + horizon` finite observations at
    the end are left out; None when no series is left."""
    known = list(arrays.future_columns)  # the future block: those columns at the scored periods, never the target
    eligible = [
        series_id for series_id, values in arrays.values.items()
        if len(values) >= lookback + horizon and np.isfinite(values[-horizon:, 0]).all() and np.isfinite(values[-horizon:, known]).all()
    ]
    selected = last_windows(scaler, arrays, lookback, cut=horizon, series=eligible)
    scored = [series_id for series_id in eligible if series_id not in selected.skipped]
    if not scored:
        return None
    histories = [arrays.values[series_id][:-horizon, 0] for series_id in scored]
    actual = np.stack([arrays.values[series_id][-horizon:, 0] for series_id in scored])
    naive = np.stack([seasonal_naive_forecast(history[np.newaxis, :, np.newaxis], horizon, season)[0] for history in histories])
    scales = np.asarray([seasonal_naive_scale(history, season) for history in histories])
    predicted = np.empty((len(scored), horizon))
    bounds = {level: (np.empty((len(scored), horizon)), np.empty((len(scored), horizon))) for level in interval_halfwidths or {}}
    row = {series_id: position for position, series_id in enumerate(scored)}
    if selected.ids:
        blocks = None
        if known:
            ids = np.asarray(selected.ids, dtype=object)
            blocks = encode_future(selected.scaler, ids, np.stack([arrays.values[sid][-horizon:, known] for sid in selected.ids]), arrays.future_columns)
        rows = [row[sid] for sid in selected.ids]
        scaled = forecast_array(model, network_inputs(selected.inputs, blocks))
        predicted[rows] = selected.levels.decode(scaled)
        for level, (lower, upper) in bounds.items():
            half = np.asarray(interval_halfwidths[level], dtype="float64")[np.newaxis, :]
            lower[rows], upper[rows] = selected.levels.decode(scaled - half), selected.levels.decode(scaled + half)
    for series_id, (value, _) in selected.constant.items():  # forecast as `predict` does
        predicted[row[series_id]] = value
        for lower, upper in bounds.values():
            lower[row[series_id]] = upper[row[series_id]] = value
    timestamps = [arrays.timestamps[series_id][:-horizon] for series_id in scored]
    return HoldoutForecasts(scored, actual, predicted, naive, scales, histories, timestamps, bounds)


def score_holdout(holdout: HoldoutForecasts | None, metric: str) -> dict[str, float]:
    """`metric` of the holdout forecasts and of seasonal naive's from the same origin:
    {"score", "baseline", "series"} (NaN scores and 0 series without any)."""
    if holdout is None:
        return {"score": float("nan"), "baseline": float("nan"), "series": 0}
    return {
        "score": score(metric, holdout.actual, holdout.predicted, holdout.scales),
        "baseline": score(metric, holdout.actual, holdout.naive, holdout.scales),
        "series": len(holdout.ids),
    }
