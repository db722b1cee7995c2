"""Per-series and per-window scaling.

Input columns other than the target (covariates) are standardised by statistics of each series'
training part. The target is scaled one of three ways (`ModelConfig.normalization`):

- `series`: standardised like the covariates (location and scale of the series' training part);
- `window`: divided by the mean absolute level of the input window, minus 1;
- `window_log`: the log of the value over that level, for windows whose values are all positive
  (others fall back to `window`, which is the same to first order near the level).

Window scaling follows Hewamalage, Bergmeir & Bandara (2021) and N-BEATS/DeepAR: the network sees
shapes relative to the recent level, so one global model serves series of any magnitude and trend.

With seasonal factors (`fit_seasonal`, `ModelConfig.deseasonalize`), the target is first divided
by its series' multiplicative factor at each step's position in the season (seasonality.py), and
forecasts are multiplied back when decoded: the network learns level and trend, not the season.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from forecasting.preparation.seasonality import season_ticks, seasonal_factors, short_factors

TargetNormalization = Literal["series", "window", "window_log"]

# The largest |value| the job uses. Means and sums of up to 10^8 such values stay below float32's
# largest number (3.4e38, the network's inputs), their squares (standard deviations) within float64's
# (1.8e308); a value near the float64 limit would overflow the scaling to inf and the forecasts to garbage.
MAX_ABS_VALUE = 1e30
TOO_LARGE_REASON = f"|value| above {MAX_ABS_VALUE:g}, beyond what the scaling can represent"


def representable(values: np.ndarray) -> np.ndarray:
    """Per row of `values` (rows x columns), whether every finite value is within +-MAX_ABS_VALUE."""
    values = np.asarray(values, dtype="float64")
    with np.errstate(invalid="ignore"):
        return ~(np.isfinite(values) & (np.abs(values) > MAX_ABS_VALUE)).any(axis=1)


def _safe_scale(scale: np.ndarray, loc: np.ndarray) -> np.ndarray:
    # A constant series has std 0: fall back to its level (or 1) so it maps to 0 instead of inf.
    floor = np.maximum(np.abs(loc), 1.0)
    return np.where(scale > 1e-8 * floor, scale, floor)


@dataclass
class WindowLevels:
    """How each window's target was scaled, to map forecasts back: y = exp(z) * scale where `log`,
    else z * scale + loc; then, with seasonal `factors` (windows x season), times the factor at each
    step's position, counted from `first_tick` (the position tick of each window's first target step)."""

    loc: np.ndarray
    scale: np.ndarray
    log: np.ndarray
    factors: np.ndarray | None = None
    first_tick: np.ndarray | None = None

    @classmethod
    def empty(cls) -> "WindowLevels":
        return cls(np.empty(0), np.empty(0), np.empty(0, dtype=bool))

    @classmethod
    def concat(cls, parts: list["WindowLevels"]) -> "WindowLevels":
        if not parts:
            return cls.empty()
        levels = cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("loc", "scale", "log")))
        seasons = {p.factors.shape[1] for p in parts if p.factors is not None}
        if seasons:
            # Windows scaled without factors (a series new since training) decode with factors 1.
            (season,) = seasons
            levels.factors = np.concatenate([p.factors if p.factors is not None else np.ones((len(p), season)) for p in parts])
            levels.first_tick = np.concatenate(
                [p.first_tick if p.first_tick is not None else np.zeros(len(p), dtype="int64") for p in parts]
            )
        return levels

    def __len__(self) -> int:
        return len(self.loc)

    def take(self, index: np.ndarray) -> "WindowLevels":
        if self.factors is None:
            return WindowLevels(self.loc[index], self.scale[index], self.log[index])
        return WindowLevels(self.loc[index], self.scale[index], self.log[index], self.factors[index], self.first_tick[index])

    def decode(self, scaled: np.ndarray, shift: int = 0) -> np.ndarray:
        """Scaled targets (windows x steps) back to original units; `shift` moves the first step's
        season position (-lookback decodes a window's inputs)."""
        scaled = np.asarray(scaled, dtype="float64")
        loc, scale, log = self.loc[:, None], self.scale[:, None], self.log[:, None]
        with np.errstate(over="ignore"):
            values = np.where(log, np.exp(np.clip(scaled, -50, 50)) * scale, scaled * scale + loc)
        if self.factors is None:
            return values
        positions = (self.first_tick[:, None] + shift + np.arange(scaled.shape[1])) % self.factors.shape[1]
        return values * np.take_along_axis(self.factors, positions, axis=1)


@dataclass
class SeriesScaler:
    """Location and scale per series and input column (column 0 is the target), and how the target is scaled."""

    loc: dict[str, np.ndarray] = field(default_factory=dict)
    scale: dict[str, np.ndarray] = field(default_factory=dict)
    target: TargetNormalization = "series"
    # Seasonal factors per series (only those that passed the seasonality test), the season length
    # and the frequency that turns timestamps into season positions; season 1 means none.
    factors: dict[str, np.ndarray] = field(default_factory=dict)
    season: int = 1
    frequency: str | None = None

    @classmethod
    def fit(
        cls,
        series: Mapping[str, np.ndarray],
        train_lengths: Mapping[str, int] | None = None,
        target: TargetNormalization = "series",
    ) -> "SeriesScaler":
        """Fit on each series' first `train_lengths[id]` rows (all rows when not given)."""
        scaler = cls(target=target)
        for series_id, values in series.items():
            length = train_lengths.get(series_id, len(values)) if train_lengths else len(values)
            scaler.add(series_id, values[: max(length, 1)] if length >= 2 else values)
        return scaler

    def add(self, series_id: str, values: np.ndarray) -> None:
        """Fit statistics for one series from `values` (rows x columns), ignoring NaN."""
        values = np.asarray(values, dtype="float64").reshape(len(values), -1)
        with np.errstate(all="ignore"):
            loc = np.nan_to_num(np.nanmean(values, axis=0), nan=0.0) if len(values) else np.zeros(values.shape[1])
            scale = np.nan_to_num(np.nanstd(values, axis=0), nan=0.0) if len(values) else np.zeros(values.shape[1])
        self.loc[series_id] = loc
        self.scale[series_id] = _safe_scale(scale, loc)

    def fit_seasonal(
        self, series: Mapping[str, np.ndarray], timestamps: Mapping[str, pd.DatetimeIndex], train_lengths: Mapping[str, int], frequency: str, season: int
    ) -> None:
        """Seasonal factors of each series' target from its first `train_lengths[id]` rows; series that
        fail the seasonality test (or are not positive) get none and are left as they are. Where most
        series long enough for the test pass it, the new ones too short for it get `short_factors`."""
        self.season, self.frequency = season, frequency
        tested, short = 0, []
        for series_id, values in series.items():
            length = train_lengths.get(series_id, len(values))
            if length < 3 * season:
                short.append(series_id)
                continue
            tested += 1
            ticks = season_ticks(timestamps[series_id][:length], frequency)
            found = seasonal_factors(np.asarray(values)[:length, 0], ticks, season)
            if found is not None:
                self.factors[series_id] = found
        if tested and len(self.factors) >= tested / 2:
            for series_id in short:
                self.add_short_seasonal(series_id, series[series_id][: train_lengths.get(series_id, len(series[series_id]))], timestamps[series_id])

    def add_short_seasonal(self, series_id: str, values: np.ndarray, timestamps: pd.DatetimeIndex) -> None:
        """`seasonality.short_factors` for a new series (its first `len(values)` rows), where they can be estimated."""
        if self.seasonal:
            found = short_factors(np.asarray(values)[:, 0], season_ticks(timestamps[: len(values)], self.frequency), self.season)
            if found is not None:
                self.factors[series_id] = found

    def mostly_seasonal(self) -> bool:
        """Whether at least half the series it holds have seasonal factors (new series then get theirs: `add_short_seasonal`)."""
        return self.seasonal and len(self.factors) >= len(self.loc) / 2

    @property
    def seasonal(self) -> bool:
        return self.season > 1 and self.frequency is not None

    def ticks(self, timestamps: pd.DatetimeIndex) -> np.ndarray:
        """Season position ticks of `timestamps` (zeros without seasonal factors)."""
        if not self.seasonal:
            return np.zeros(len(timestamps), dtype="int64")
        return season_ticks(timestamps, self.frequency)

    def copy(self) -> "SeriesScaler":
        return SeriesScaler(dict(self.loc), dict(self.scale), self.target, dict(self.factors), self.season, self.frequency)

    def __contains__(self, series_id: object) -> bool:
        return series_id in self.loc

    def transform(self, series_id: str, values: np.ndarray) -> np.ndarray:
        """Standardise every column by the series' statistics (the `series` normalization)."""
        values = np.asarray(values, dtype="float64").reshape(len(values), -1)
        return (values - self.loc[series_id]) / self.scale[series_id]

    def encode(
        self, series_id: str, inputs: np.ndarray, targets: np.ndarray | None = None, first_ticks: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, WindowLevels]:
        """Scale windows of one series: inputs (windows x lookback x columns) and, for training,
        targets (windows x horizon). With seasonal factors, `first_ticks` (see `ticks`) gives the
        position tick of each window's first input row. Returns scaled inputs, scaled targets and
        the levels to decode with."""
        inputs = np.asarray(inputs, dtype="float64")
        if self.seasonal:
            if first_ticks is None:
                raise ValueError("a scaler with seasonal factors needs each window's first tick")
            inputs, targets, levels = self._deseasonalize(series_id, inputs, targets, np.asarray(first_ticks, dtype="int64"))
            x, y, scaled = self._encode_level(series_id, inputs, targets)
            scaled.factors, scaled.first_tick = levels
            return x, y, scaled
        return self._encode_level(series_id, inputs, targets)

    def _deseasonalize(
        self, series_id: str, inputs: np.ndarray, targets: np.ndarray | None, first_ticks: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None, tuple[np.ndarray, np.ndarray]]:
        factors = self.factors.get(series_id, np.ones(self.season))
        lookback = inputs.shape[1]
        inputs = inputs.copy()
        inputs[:, :, 0] /= factors[(first_ticks[:, None] + np.arange(lookback)) % self.season]
        if targets is not None:
            targets = np.asarray(targets, dtype="float64")
            targets = targets / factors[(first_ticks[:, None] + lookback + np.arange(targets.shape[1])) % self.season]
        return inputs, targets, (np.tile(factors, (len(inputs), 1)), first_ticks + lookback)

    def _encode_level(
        self, series_id: str, inputs: np.ndarray, targets: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None, WindowLevels]:
        count = len(inputs)
        x = (inputs - self.loc[series_id]) / self.scale[series_id]
        y = None
        if self.target == "series":
            loc = np.full(count, self.loc[series_id][0])
            scale = np.full(count, self.scale[series_id][0])
            log = np.zeros(count, dtype=bool)
            if targets is not None:
                y = (np.asarray(targets, dtype="float64") - loc[:, None]) / scale[:, None]
            return x, y, WindowLevels(loc, scale, log)
        raw = inputs[:, :, 0]
        with np.errstate(invalid="ignore"):
            level = np.nanmean(np.abs(raw), axis=1)
        level = np.where(np.isfinite(level) & (level > 0), level, 1.0)
        positive = (raw > 0).all(axis=1)
        if targets is not None:
            positive &= (np.asarray(targets) > 0).all(axis=1)
        log = positive if self.target == "window_log" else np.zeros(count, dtype=bool)
        ratio = raw / level[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            x[:, :, 0] = np.where(log[:, None], np.log(ratio), ratio - 1.0)
            if targets is not None:
                target_ratio = np.asarray(targets, dtype="float64") / level[:, None]
                y = np.where(log[:, None], np.log(target_ratio), target_ratio - 1.0)
        return x, y, WindowLevels(np.where(log, 0.0, level), level, log)

    def to_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "method": "standard",
            "target": self.target,
            "series": {key: {"loc": self.loc[key].tolist(), "scale": self.scale[key].tolist()} for key in self.loc},
        }
        if self.seasonal:
            state["seasonal"] = {
                "season": self.season,
                "frequency": self.frequency,
                "factors": {key: values.tolist() for key, values in self.factors.items()},
            }
        return state

    def header(self) -> dict[str, Any]:
        """The state shared by all series (what `to_dict` holds besides the per-series values)."""
        state: dict[str, Any] = {"method": "standard", "target": self.target}
        if self.seasonal:
            state["seasonal"] = {"season": self.season, "frequency": self.frequency}
        return state

    def series_columns(self) -> dict[str, list[Any]]:
        """Per-series state as columns: series_id, loc and scale (one value per input column) and
        seasonal factors (None for series without them); `from_columns` reverses it exactly."""
        ids = list(self.loc)
        return {
            "series_id": ids,
            "loc": [self.loc[key].tolist() for key in ids],
            "scale": [self.scale[key].tolist() for key in ids],
            "factors": [self.factors[key].tolist() if key in self.factors else None for key in ids],
        }

    @classmethod
    def from_columns(cls, header: Mapping[str, Any], columns: Mapping[str, list[Any]]) -> "SeriesScaler":
        """A scaler from `header()` and `series_columns()` (as read back from a file)."""
        state = dict(header)
        state["series"] = {key: {"loc": loc, "scale": scale} for key, loc, scale in zip(columns["series_id"], columns["loc"], columns["scale"])}
        if "seasonal" in header:
            state["seasonal"] = {
                **header["seasonal"],
                "factors": {key: values for key, values in zip(columns["series_id"], columns["factors"]) if values is not None},
            }
        return cls.from_dict(state)

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> "SeriesScaler":
        if state.get("method") != "standard":
            raise ValueError(f"unknown scaler method {state.get('method')!r}")
        scaler = cls(target=state.get("target", "series"))
        for key, stats in state["series"].items():
            scaler.loc[key] = np.asarray(stats["loc"], dtype="float64")
            scaler.scale[key] = np.asarray(stats["scale"], dtype="float64")
        seasonal = state.get("seasonal")  # absent in artifacts saved before deseasonalisation existed
        if seasonal:
            scaler.season, scaler.frequency = int(seasonal["season"]), seasonal["frequency"]
            scaler.factors = {key: np.asarray(values, dtype="float64") for key, values in seasonal["factors"].items()}
        return scaler
