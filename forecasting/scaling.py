"""Per-series and per-window scaling.

Input columns other than the target (covariates) are standardised by statistics of each series'
training part. The target is scaled one of three ways (`ModelConfig.normalization`):

- `series`: standardised like the covariates (location and scale of the series' training part);
- `window`: divided by the mean absolute level of the input window, minus 1;
- `window_log`: the log of the value over that level, for windows whose values are all positive
  (others fall back to `window`, which is the same to first order near the level).

Window scaling follows Hewamalage, Bergmeir & Bandara (2021) and N-BEATS/DeepAR: the network sees
shapes relative to the recent level, so one global model serves series of any magnitude and trend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

TargetNormalization = Literal["series", "window", "window_log"]


def _safe_scale(scale: np.ndarray, loc: np.ndarray) -> np.ndarray:
    # A constant series has std 0: fall back to its level (or 1) so it maps to 0 instead of inf.
    floor = np.maximum(np.abs(loc), 1.0)
    return np.where(scale > 1e-8 * floor, scale, floor)


@dataclass
class WindowLevels:
    """How each window's target was scaled, to map forecasts back: y = exp(z) * scale where `log`,
    else z * scale + loc."""

    loc: np.ndarray
    scale: np.ndarray
    log: np.ndarray

    @classmethod
    def empty(cls) -> "WindowLevels":
        return cls(np.empty(0), np.empty(0), np.empty(0, dtype=bool))

    @classmethod
    def concat(cls, parts: list["WindowLevels"]) -> "WindowLevels":
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("loc", "scale", "log")))

    def __len__(self) -> int:
        return len(self.loc)

    def take(self, index: np.ndarray) -> "WindowLevels":
        return WindowLevels(self.loc[index], self.scale[index], self.log[index])

    def decode(self, scaled: np.ndarray) -> np.ndarray:
        """Scaled targets (windows x steps) back to original units."""
        scaled = np.asarray(scaled, dtype="float64")
        loc, scale, log = self.loc[:, None], self.scale[:, None], self.log[:, None]
        with np.errstate(over="ignore"):
            return np.where(log, np.exp(np.clip(scaled, -50, 50)) * scale, scaled * scale + loc)


@dataclass
class SeriesScaler:
    """Location and scale per series and input column (column 0 is the target), and how the target is scaled."""

    loc: dict[str, np.ndarray] = field(default_factory=dict)
    scale: dict[str, np.ndarray] = field(default_factory=dict)
    target: TargetNormalization = "series"

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

    def __contains__(self, series_id: object) -> bool:
        return series_id in self.loc

    def transform(self, series_id: str, values: np.ndarray) -> np.ndarray:
        """Standardise every column by the series' statistics (the `series` normalization)."""
        values = np.asarray(values, dtype="float64").reshape(len(values), -1)
        return (values - self.loc[series_id]) / self.scale[series_id]

    def encode(
        self, series_id: str, inputs: np.ndarray, targets: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, WindowLevels]:
        """Scale windows of one series: inputs (windows x lookback x columns) and, for training,
        targets (windows x horizon). Returns scaled inputs, scaled targets and the levels to decode with."""
        inputs = np.asarray(inputs, dtype="float64")
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
        return {
            "method": "standard",
            "target": self.target,
            "series": {key: {"loc": self.loc[key].tolist(), "scale": self.scale[key].tolist()} for key in self.loc},
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> "SeriesScaler":
        if state.get("method") != "standard":
            raise ValueError(f"unknown scaler method {state.get('method')!r}")
        scaler = cls(target=state.get("target", "series"))
        for key, stats in state["series"].items():
            scaler.loc[key] = np.asarray(stats["loc"], dtype="float64")
            scaler.scale[key] = np.asarray(stats["scale"], dtype="float64")
        return scaler
