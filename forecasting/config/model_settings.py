"""The configuration of one model (`[models.<name>]` in forecasting.toml): network, training, ensemble,
fine-tuning, promotion gate, tuning search space and schedules, as strict pydantic models.

Every number has a finite range (README, "Configuration"); a config file is validated strictly
(`config.parse_settings`: no "6" or true for a number), so a value that would fail a run later is
refused when the config is read. The upper bounds are far above any real use."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


# Upper bounds (README, "Configuration"): far above any real use, low enough that nothing overflows later.
MAX_PERIODS = 10_000  # horizon, season: periods of the frequency
MAX_LOOKBACK = 100_000
MAX_UNITS = 4096
MAX_LAYERS = 16
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 1_048_576
MAX_MEMBERS = 64
MAX_SEED = 2**32 - 1  # NumPy's seed range
MAX_LEARNING_RATE = 1.0
MAX_MINUTES = 43_200.0  # 30 days
MAX_DAYS = 3_660.0  # about 10 years
MAX_FACTOR = 100.0  # replay, drift_tolerance
MAX_TRIALS = 10_000


class StrictModel(BaseModel):
    """A config table that refuses unknown keys, infinities and NaN."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class LayerConfig(StrictModel):
    units: int = Field(gt=0, le=MAX_UNITS)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    activation: Literal["tanh", "relu", "sigmoid", "linear", "elu", "selu", "gelu"] = "tanh"


class IntRange(StrictModel):
    min: int
    max: int
    step: int = 1

    @model_validator(mode="after")
    def _ordered(self) -> "IntRange":
        if self.min > self.max or self.step <= 0:
            raise ValueError("needs min <= max and step > 0")
        return self


class FloatRange(StrictModel):
    min: float
    max: float
    step: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "FloatRange":
        if self.min > self.max or (self.step is not None and self.step <= 0):
            raise ValueError("needs min <= max and step > 0")
        return self


class TuningConfig(StrictModel):
    tuner: Literal["hyperband", "random", "bayesian"] = "hyperband"
    layers: IntRange = IntRange(min=1, max=4)
    units: IntRange = IntRange(min=16, max=160, step=16)
    dropout: FloatRange = FloatRange(min=0.0, max=0.5, step=0.1)
    activation: list[Literal["tanh", "relu", "sigmoid"]] = Field(default_factory=lambda: ["tanh", "relu", "sigmoid"], min_length=1)
    learning_rate: list[float] = Field(default_factory=lambda: [1e-2, 1e-3, 1e-4], min_length=1, max_length=100)
    lookback: list[int] | None = Field(default=None, max_length=100)  # choices; default: the model's own lookback only
    max_trials: int = Field(default=20, gt=0, le=MAX_TRIALS)
    max_epochs: int = Field(default=20, gt=0, le=MAX_EPOCHS)  # per trial; Hyperband's largest budget
    factor: int = Field(default=3, ge=2, le=100)  # Hyperband
    hyperband_iterations: int = Field(default=1, gt=0, le=100)  # Hyperband

    @field_validator("lookback")
    @classmethod
    def _positive_lookbacks(cls, values: list[int] | None) -> list[int] | None:
        if values is not None and (not values or any(not 0 < v <= MAX_LOOKBACK for v in values)):
            raise ValueError(f"lookback choices must be a non-empty list of integers between 1 and {MAX_LOOKBACK}")
        return values

    @field_validator("learning_rate")
    @classmethod
    def _learning_rates(cls, values: list[float]) -> list[float]:
        if any(not 0 < v <= MAX_LEARNING_RATE for v in values):
            raise ValueError(f"learning rate choices must be between 0 (exclusive) and {MAX_LEARNING_RATE:g}")
        return values

    @field_validator("layers")
    @classmethod
    def _layer_counts(cls, value: IntRange) -> IntRange:
        if value.min < 1 or value.max > MAX_LAYERS:
            raise ValueError(f"layer counts must be between 1 and {MAX_LAYERS}")
        return value

    @field_validator("units")
    @classmethod
    def _unit_counts(cls, value: IntRange) -> IntRange:
        if value.min < 1 or value.max > MAX_UNITS:
            raise ValueError(f"units must be between 1 and {MAX_UNITS}")
        return value

    @field_validator("dropout")
    @classmethod
    def _dropouts(cls, value: FloatRange) -> FloatRange:
        if value.min < 0 or value.max >= 1:
            raise ValueError("dropout must be at least 0 and less than 1")
        return value


class FineTuneConfig(StrictModel):
    learning_rate: float | None = Field(default=None, gt=0.0, le=MAX_LEARNING_RATE)  # default: the model's learning_rate / 10
    epochs: int = Field(default=5, gt=0, le=MAX_EPOCHS)
    replay: float = Field(default=2.0, ge=0.0, le=MAX_FACTOR)  # older windows replayed per new window, so it does not forget
    patience: int = Field(default=2, ge=0, le=MAX_EPOCHS)


class PromotionConfig(StrictModel):
    metric: Literal["smape", "mase", "mae"] = "smape"
    margin: float = Field(default=0.0, ge=0.0, lt=1.0)  # relative improvement needed over the champion
    retrain_every_days: float | None = Field(default=7.0, gt=0.0, le=MAX_DAYS)  # auto mode: retrain a champion this old
    drift_tolerance: float = Field(default=0.2, ge=0.0, le=MAX_FACTOR)  # auto mode: retrain when recent error grows by this fraction
    live_window: int = Field(default=3, ge=0, le=MAX_PERIODS)  # auto mode: target periods of live accuracy the drift signals read (0: off)


class ScheduleConfig(StrictModel):
    timezone: str = "UTC"
    forecast: str | None = None
    fine_tune: str | None = None
    retrain: str | None = None
    auto: str | None = None
    tune: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (for example 'UTC', 'Europe/Berlin')") from None
        return value

    @field_validator("forecast", "fine_tune", "retrain", "auto", "tune")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a 5-field cron expression (minute hour day month weekday)")
        return value


class EnsembleConfig(StrictModel):
    members: int = Field(default=1, gt=0, le=MAX_MEMBERS)  # networks trained side by side; the forecast is their median
    # each member reads the last lookbacks[i % len] steps; default: all `lookback`
    lookbacks: list[int] | None = Field(default=None, max_length=MAX_MEMBERS)

    @field_validator("lookbacks")
    @classmethod
    def _positive(cls, values: list[int] | None) -> list[int] | None:
        if values is not None and (not values or any(not 0 < v <= MAX_LOOKBACK for v in values)):
            raise ValueError(f"ensemble lookbacks must be a non-empty list of integers between 1 and {MAX_LOOKBACK}")
        return values


class BlendConfig(StrictModel):
    theta: float = Field(default=0.0, ge=0.0, le=1.0)  # the Theta method's share
    damped_trend: float = Field(default=0.0, ge=0.0, le=1.0)  # damped-trend exponential smoothing's share

    @model_validator(mode="after")
    def _at_most_one(self) -> "BlendConfig":
        if self.theta + self.damped_trend > 1 + 1e-9:
            raise ValueError(f"blend weights theta {self.theta} + damped_trend {self.damped_trend} add up to more than 1")
        return self


class ModelConfig(StrictModel):
    # Keys left out (None) are derived from the data when training starts (forecasting/defaults.py,
    # docs/configuration.md "Derived defaults"); the trained version records the values it used.
    cell: Literal["rnn", "lstm", "gru"] = "gru"
    lookback: int | None = Field(default=None, gt=0, le=MAX_LOOKBACK)
    horizon: int = Field(gt=0, le=MAX_PERIODS)
    layers: list[LayerConfig] = Field(default_factory=lambda: [LayerConfig(units=64)], min_length=1, max_length=MAX_LAYERS)
    learning_rate: float = Field(default=3e-3, gt=0.0, le=MAX_LEARNING_RATE)
    loss: Literal["mse", "mae", "huber"] = "mae"
    epochs: int = Field(default=100, gt=0, le=MAX_EPOCHS)
    batch_size: int | None = Field(default=None, gt=0, le=MAX_BATCH_SIZE)
    patience: int = Field(default=8, ge=0, le=MAX_EPOCHS)
    min_epochs: int | None = Field(default=None, ge=0)  # early stopping neither stops nor keeps weights before this epoch
    season: int | None = Field(default=None, ge=1, le=MAX_PERIODS)  # season length for deseasonalising and seasonal naive
    intervals: list[int] = Field(default_factory=lambda: [80, 95])
    seed: int = Field(default=42, ge=0, le=MAX_SEED)
    normalization: Literal["series", "window", "window_log"] = "window_log"  # how the target is scaled (scaling.py)
    refit: bool = True  # after early stopping, retrain on all windows (validation ones too) for the best epoch count
    ignore_anomalies: bool = False  # a retrain or fine-tune leaves the actuals flagged in forecast_errors.anomaly out (as missing values)
    calendar: bool = False  # add calendar inputs (month of year, day of week, hour of day as fits the frequency)
    # Divide each series' target by its multiplicative seasonal factors (classical decomposition of its
    # training part, when its autocorrelation at the seasonal lag is significant) before scaling.
    deseasonalize: bool = True
    # Each series' windows count in the loss by (its mean level / its in-sample seasonal-naive MAE) ** this:
    # 0 weighs every window alike (the loss aims at relative error, like sMAPE), 1 aims it at MASE.
    series_weighting: float = Field(default=0.5, ge=0.0, le=2.0)
    ensemble: EnsembleConfig = EnsembleConfig()
    # Each classical method's share in the forecast, the rest the network's (model/blending.py); None:
    # chosen on each series' holdout at training (none for a model reading future features or holidays).
    blend: BlendConfig | None = None
    deterministic: bool = True  # TensorFlow deterministic ops: same data + config + seed -> same weights
    jit_compile: bool = False
    training_timeout_minutes: float = Field(default=360, gt=0, le=MAX_MINUTES)  # a training task running longer fails the run
    lock_timeout_minutes: float = Field(default=360, ge=0, le=MAX_MINUTES)  # a run waits this long for another run of the model to finish
    fine_tune: FineTuneConfig = FineTuneConfig()
    promotion: PromotionConfig = PromotionConfig()
    tuning: TuningConfig | None = None
    schedule: ScheduleConfig | None = None

    @model_validator(mode="after")
    def _member_lookbacks(self) -> "ModelConfig":
        if self.min_epochs is not None and self.min_epochs > self.epochs:
            raise ValueError(f"min_epochs {self.min_epochs} is more than epochs {self.epochs}")
        for value in self.ensemble.lookbacks or []:
            if self.lookback is not None and value > self.lookback:
                raise ValueError(f"ensemble lookback {value} is longer than the model's lookback {self.lookback}")
        return self

    def member_lookbacks(self) -> list[int]:
        """The lookback of each ensemble member."""
        choices = self.ensemble.lookbacks or [self.lookback]
        return [choices[i % len(choices)] for i in range(self.ensemble.members)]

    @field_validator("intervals")
    @classmethod
    def _levels(cls, values: list[int]) -> list[int]:
        for value in values:
            if not 0 < value < 100:
                raise ValueError(f"interval level {value} must be between 1 and 99 (percent)")
        return sorted(set(values))
