"""What a forecaster reads, resolved once: the input spec (after mlforecast's `MLForecast`, whose
fitted object owns how its inputs are built).

An `InputSpec` names the frequency, the source features, the future features, whether calendar
inputs are read, the holiday calendars, the lookback, the horizon and the season. A model not trained yet asks for one
(`requested`: the configured source columns, holiday calendars and calendar option; frequency, lookback and season
left to the data); `resolve` fixes it from the data once per fit, with the config's derived keys
(`defaults.resolve_for`); a trained `RecurrentForecaster` keeps it as `inputs`, saves it in its
manifest's entries and gets it back on load (`from_manifest`, after `artifacts.upgrade_manifest`).
`prepare` turns pulled frames into the arrays the forecaster reads: the steps never rebuild them
from its attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from forecasting.config.model_settings import ModelConfig
from forecasting.errors import RunError
from forecasting.model.defaults import effective_season, resolve_for
from forecasting.preparation.windows import SeriesArrays, build_arrays


@dataclass(frozen=True)
class InputSpec:
    """The inputs of a forecaster. `frequency`, `lookback` and `season` are None only in a spec
    requested before the data is read (the data's frequency, the derived lookback and season)."""

    frequency: str | None = None
    features: tuple[str, ...] = ()  # source columns read in the lookback window only
    future_features: tuple[str, ...] = ()  # source columns known ahead, fed for the forecast periods too
    calendar: bool = False  # calendar inputs as sine/cosine pairs
    lookback: int | None = None  # input window length (an ensemble's longest)
    horizon: int | None = None  # steps forecast after each series' last observation
    season: int | None = None  # the season length: deseasonalising, weights, seasonal naive
    holidays: tuple[str, ...] = ()  # holiday calendars ("US", "US-CA"): inputs computed from the timestamps, known ahead

    @classmethod
    def requested(cls, source: Any, config: ModelConfig | None = None) -> "InputSpec":
        """The inputs a model of `config` (None: no model; no calendar inputs) asks of the configured
        `source` before any data is read."""
        spec = cls(features=tuple(source.features), future_features=tuple(source.future_features), holidays=tuple(source.holidays))
        if config is None:
            return spec
        return cls(
            None, spec.features, spec.future_features, config.calendar, config.lookback, config.horizon, config.season, spec.holidays
        )

    @classmethod
    def of(
        cls, config: ModelConfig, frequency: str, features: tuple[str, ...] = (), future_features: tuple[str, ...] = (), holidays: tuple[str, ...] = ()
    ) -> "InputSpec":
        """The inputs of a trained `config` on `frequency`: lookback, horizon and calendar as the config
        has them, the season the config trains and scores with (`defaults.effective_season`)."""
        return cls(
            frequency, tuple(features), tuple(future_features), bool(config.calendar), config.lookback, config.horizon,
            effective_season(config, frequency), tuple(holidays),
        )

    @classmethod
    def resolve(
        cls, config: ModelConfig, arrays: SeriesArrays, features: tuple[str, ...] = (), future_features: tuple[str, ...] = ()
    ) -> tuple[ModelConfig, "InputSpec"]:
        """Once per fit: the config with every key it leaves out derived from `arrays` (see
        `defaults`), and the spec of a forecaster trained with it on them (the holiday calendars the
        arrays were built with)."""
        config = resolve_for(config, arrays)
        return config, cls.of(config, arrays.frequency or "", features, future_features, tuple(getattr(arrays, "holidays", ())))

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], config: ModelConfig) -> "InputSpec":
        """The spec of a saved forecaster (a manifest in the current layout, `artifacts.upgrade_manifest`)."""
        return cls.of(
            config, manifest["frequency"], tuple(manifest["features"]), tuple(manifest["future_features"]), tuple(manifest["holidays"])
        )

    def manifest_entries(self) -> dict[str, Any]:
        """The spec's manifest entries (with the config, which holds calendar and season, they give it back)."""
        return {
            "lookback": self.lookback,
            "horizon": self.horizon,
            "features": list(self.features),
            "future_features": list(self.future_features),
            "holidays": list(self.holidays),
            "frequency": self.frequency,
        }

    def prepare(self, observed: pd.DataFrame, ahead: pd.DataFrame, source: Any, frequency: str | None = None) -> SeriesArrays:
        """The arrays these inputs read from pulled rows: `observed` (one row per observation) on the
        regular grid of `frequency` (default: the spec's), gaps per `source.gaps`, the features,
        future features, calendar and holiday columns of the spec, and the future rows `ahead` (see
        `future_rows.split_future`), filled per `source.future_fill`."""
        missing = [name for name in (*self.features, *self.future_features) if name not in observed.columns]
        if missing:
            raise RunError(
                f"the pulled history has no column {', '.join(map(repr, missing))}, which the model reads; set it in "
                "source.features or source.future_features and run the pipeline (it pulls first), or retrain"
            )
        if list(source.features) != list(self.features):
            source = source.model_copy(update={"features": list(self.features)})
        return build_arrays(observed, ahead, source, frequency or self.frequency, self.calendar, list(self.future_features), self.holidays)
