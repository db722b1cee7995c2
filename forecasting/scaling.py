"""Per-series scaling: each series is standardised by statistics of its own training part."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _safe_scale(scale: np.ndarray, loc: np.ndarray) -> np.ndarray:
    # A constant series has std 0: fall back to its level (or 1) so it maps to 0 instead of inf.
    floor = np.maximum(np.abs(loc), 1.0)
    return np.where(scale > 1e-8 * floor, scale, floor)


@dataclass
class SeriesScaler:
    """Location and scale per series and input column (column 0 is the target)."""

    loc: dict[str, np.ndarray] = field(default_factory=dict)
    scale: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def fit(cls, series: Mapping[str, np.ndarray], train_lengths: Mapping[str, int] | None = None) -> "SeriesScaler":
        """Fit on each series' first `train_lengths[id]` rows (all rows when not given)."""
        scaler = cls()
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
        values = np.asarray(values, dtype="float64").reshape(len(values), -1)
        return (values - self.loc[series_id]) / self.scale[series_id]

    def inverse_target(self, series_id: str, scaled: np.ndarray) -> np.ndarray:
        """Scaled target values (any shape) back to the original units."""
        return np.asarray(scaled) * self.scale[series_id][0] + self.loc[series_id][0]

    def target_scale(self, series_id: str) -> float:
        return float(self.scale[series_id][0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "standard",
            "series": {key: {"loc": self.loc[key].tolist(), "scale": self.scale[key].tolist()} for key in self.loc},
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> "SeriesScaler":
        if state.get("method") != "standard":
            raise ValueError(f"unknown scaler method {state.get('method')!r}")
        scaler = cls()
        for key, stats in state["series"].items():
            scaler.loc[key] = np.asarray(stats["loc"], dtype="float64")
            scaler.scale[key] = np.asarray(stats["scale"], dtype="float64")
        return scaler
