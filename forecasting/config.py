"""The `forecasting.toml` configuration: pydantic models, loading, environment overrides."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forecasting.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_ENV = "FORECASTING_CONFIG"
DATABASE_URL_ENV = "FORECASTING_DATABASE_URL"
STORAGE_ROOT_ENV = "FORECASTING_STORAGE_ROOT"
DEFAULT_CONFIG_FILE = "forecasting.toml"

# A model name becomes a folder and a partition value: keep it to a safe alphabet.
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseConfig(_Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    url: str = "sqlite:///.forecasting/forecasting.db"
    # PostgreSQL schema for the job's tables and views (created by `init`); None: the connection's default.
    schema_name: str | None = Field(default=None, alias="schema")

    @field_validator("schema_name")
    @classmethod
    def _schema_identifier(cls, value: str | None) -> str | None:
        if value is not None and not IDENTIFIER_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a plain SQL identifier (letters, digits, underscore)")
        return value

    @model_validator(mode="after")
    def _schema_needs_postgresql(self) -> "DatabaseConfig":
        if self.schema_name is not None and self.url.startswith("sqlite"):
            origin = DATABASE_URL_ENV if os.environ.get(DATABASE_URL_ENV) else f"database.url; {DATABASE_URL_ENV} is not set"
            raise ValueError(
                f"schema {self.schema_name!r} is set, but SQLite has no schemas: leave database.schema unset "
                f"(the job's tables live in the SQLite file itself), or set {DATABASE_URL_ENV} to your PostgreSQL URL "
                f"(the database is SQLite from {origin})"
            )
        return self


URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_URL_ROOT_MESSAGE = "URLs (s3://, gs://, file://, ...) are not supported yet; give a local folder path"


class StorageConfig(_Strict):
    root: str = ".forecasting"

    @field_validator("root")
    @classmethod
    def _local_folder(cls, value: str) -> str:
        if URL_SCHEME.match(value):
            raise ValueError(_URL_ROOT_MESSAGE)
        return value


class SourceConfig(_Strict):
    table: str = "observations"
    series: str = "series_id"
    time: str = "ts"
    target: str = "value"
    features: list[str] = Field(default_factory=list)
    frequency: str | None = None
    late_arrival: str = "0D"  # pulls re-read this far before the watermark, to pick up corrections
    gaps: Literal["leave", "interpolate", "ffill", "zero"] = "leave"  # missing grid points
    max_quarantined_fraction: float = Field(default=0.2, ge=0.0, le=1.0)  # of a series' stored + pulled rows
    on_bad_series: Literal["skip", "fail"] = "skip"  # a series over max_quarantined_fraction: set aside, or fail the run
    max_future: str = "92D"  # rows dated further than this after the run's time are quarantined
    stale_after: int = Field(default=12, ge=0)  # periods without an observation before a series is no longer forecast; 0: never
    max_series_drop: float = Field(default=0.2, ge=0.0, le=1.0)  # a pull losing more than this fraction of the series fails

    @field_validator("late_arrival", "max_future")
    @classmethod
    def _duration(cls, value: str) -> str:
        import pandas as pd

        try:
            if pd.Timedelta(value) < pd.Timedelta(0):
                raise ValueError
        except ValueError:
            raise ValueError(f"{value!r} is not a non-negative duration (for example '0D', '45D', '6h')") from None
        return value

    @field_validator("series", "time", "target")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not IDENTIFIER_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a plain SQL identifier (letters, digits, underscore)")
        return value

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) > 2 or not all(IDENTIFIER_PATTERN.match(part) for part in parts):
            raise ValueError(
                f"{value!r} is not a plain SQL identifier (letters, digits, underscore), "
                "optionally schema-qualified (analytics.sales)"
            )
        return value

    @property
    def table_schema(self) -> str | None:
        """The schema part of a schema-qualified `table` (None: the connection's search path)."""
        return self.table.split(".")[0] if "." in self.table else None

    @property
    def table_name(self) -> str:
        """`table` without its schema."""
        return self.table.split(".")[-1]

    @field_validator("features")
    @classmethod
    def _feature_identifiers(cls, values: list[str]) -> list[str]:
        for value in values:
            if not IDENTIFIER_PATTERN.match(value):
                raise ValueError(f"{value!r} is not a plain SQL identifier (letters, digits, underscore)")
        if len(set(values)) != len(values):
            raise ValueError("feature names repeat")
        return values

    @field_validator("frequency")
    @classmethod
    def _frequency(cls, value: str | None) -> str | None:
        if value is None:
            return None
        import pandas as pd

        try:
            pd.tseries.frequencies.to_offset(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a pandas offset alias (for example 'MS', 'D', 'h')") from None
        return value


class LayerConfig(_Strict):
    units: int = Field(gt=0)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    activation: Literal["tanh", "relu", "sigmoid", "linear", "elu", "selu", "gelu"] = "tanh"


class IntRange(_Strict):
    min: int
    max: int
    step: int = 1

    @model_validator(mode="after")
    def _ordered(self) -> "IntRange":
        if self.min > self.max or self.step <= 0:
            raise ValueError("needs min <= max and step > 0")
        return self


class FloatRange(_Strict):
    min: float
    max: float
    step: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "FloatRange":
        if self.min > self.max or (self.step is not None and self.step <= 0):
            raise ValueError("needs min <= max and step > 0")
        return self


class TuningConfig(_Strict):
    tuner: Literal["hyperband", "random", "bayesian"] = "hyperband"
    layers: IntRange = IntRange(min=1, max=4)
    units: IntRange = IntRange(min=16, max=160, step=16)
    dropout: FloatRange = FloatRange(min=0.0, max=0.5, step=0.1)
    activation: list[Literal["tanh", "relu", "sigmoid"]] = ["tanh", "relu", "sigmoid"]
    learning_rate: list[float] = Field(default_factory=lambda: [1e-2, 1e-3, 1e-4], min_length=1)
    lookback: list[int] | None = None  # choices; default: the model's own lookback only
    max_trials: int = Field(default=20, gt=0)
    max_epochs: int = Field(default=20, gt=0)  # per trial; Hyperband's largest budget
    factor: int = Field(default=3, ge=2)  # Hyperband
    hyperband_iterations: int = Field(default=1, gt=0)  # Hyperband

    @field_validator("lookback")
    @classmethod
    def _positive_lookbacks(cls, values: list[int] | None) -> list[int] | None:
        if values is not None and (not values or any(v <= 0 for v in values)):
            raise ValueError("lookback choices must be a non-empty list of positive integers")
        return values


class FineTuneConfig(_Strict):
    learning_rate: float | None = Field(default=None, gt=0.0)  # default: the model's learning_rate / 10
    epochs: int = Field(default=5, gt=0)
    replay: float = Field(default=2.0, ge=0.0)  # older windows replayed per new window, so it does not forget
    patience: int = Field(default=2, ge=0)


class PromotionConfig(_Strict):
    metric: Literal["smape", "mase", "mae"] = "smape"
    margin: float = Field(default=0.0, ge=0.0, lt=1.0)  # relative improvement needed over the champion
    retrain_every_days: float | None = Field(default=7.0, gt=0.0)  # auto mode: retrain a champion this old
    drift_tolerance: float = Field(default=0.2, ge=0.0)  # auto mode: retrain when recent error grows by this fraction


class ScheduleConfig(_Strict):
    timezone: str = "UTC"
    forecast: str | None = None
    fine_tune: str | None = None
    retrain: str | None = None
    auto: str | None = None
    tune: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


class EnsembleConfig(_Strict):
    members: int = Field(default=1, gt=0)  # networks trained side by side; the forecast is their median
    lookbacks: list[int] | None = None  # each member reads the last lookbacks[i % len] steps; default: all `lookback`

    @field_validator("lookbacks")
    @classmethod
    def _positive(cls, values: list[int] | None) -> list[int] | None:
        if values is not None and (not values or any(v <= 0 for v in values)):
            raise ValueError("ensemble lookbacks must be a non-empty list of positive integers")
        return values


class ModelConfig(_Strict):
    cell: Literal["rnn", "lstm", "gru"] = "gru"
    lookback: int = Field(gt=0)
    horizon: int = Field(gt=0)
    layers: list[LayerConfig] = Field(min_length=1)
    learning_rate: float = Field(default=1e-3, gt=0.0)
    loss: Literal["mse", "mae", "huber"] = "mse"
    epochs: int = Field(default=50, gt=0)
    batch_size: int = Field(default=256, gt=0)
    patience: int = Field(default=5, ge=0)
    min_epochs: int = Field(default=0, ge=0)  # early stopping neither stops nor keeps weights before this epoch
    intervals: list[int] = Field(default_factory=lambda: [80, 95])
    seed: int = 42
    normalization: Literal["series", "window", "window_log"] = "window_log"  # how the target is scaled (scaling.py)
    refit: bool = True  # after early stopping, retrain on all windows (validation ones too) for the best epoch count
    calendar: bool = False  # add calendar inputs (month of year, day of week, hour of day as fits the frequency)
    # Divide each series' target by its multiplicative seasonal factors (classical decomposition of its
    # training part, when its autocorrelation at the seasonal lag is significant) before scaling.
    deseasonalize: bool = True
    # Each series' windows count in the loss by (its mean level / its in-sample seasonal-naive MAE) ** this:
    # 0 weighs every window alike (the loss aims at relative error, like sMAPE), 1 aims it at MASE.
    series_weighting: float = Field(default=0.0, ge=0.0, le=2.0)
    ensemble: EnsembleConfig = EnsembleConfig()
    deterministic: bool = True  # TensorFlow deterministic ops: same data + config + seed -> same weights
    jit_compile: bool = False
    training_timeout_minutes: float = Field(default=360, gt=0)  # a training task running longer fails the run
    lock_timeout_minutes: float = Field(default=360, ge=0)  # a run waits this long for another run of the model to finish
    fine_tune: FineTuneConfig = FineTuneConfig()
    promotion: PromotionConfig = PromotionConfig()
    tuning: TuningConfig | None = None
    schedule: ScheduleConfig | None = None

    @model_validator(mode="after")
    def _member_lookbacks(self) -> "ModelConfig":
        if self.min_epochs > self.epochs:
            raise ValueError(f"min_epochs {self.min_epochs} is more than epochs {self.epochs}")
        for value in self.ensemble.lookbacks or []:
            if value > self.lookback:
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


class Settings(_Strict):
    database: DatabaseConfig = DatabaseConfig()
    storage: StorageConfig = StorageConfig()
    source: SourceConfig = SourceConfig()
    models: dict[str, ModelConfig] = Field(default_factory=dict)

    @field_validator("models")
    @classmethod
    def _model_names(cls, models: dict[str, ModelConfig]) -> dict[str, ModelConfig]:
        for name in models:
            if not MODEL_NAME_PATTERN.match(name):
                raise ValueError(
                    f"model name {name!r} must start with a letter or digit and hold only letters, digits, '-' and '_'"
                )
        return models

    def model(self, name: str) -> ModelConfig:
        """The config of model `name`, or a ConfigError listing the configured ones."""
        if name not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            raise ConfigError(f"models.{name}: no such model in the config (configured: {known})")
        return self.models[name]

    @property
    def storage_root(self) -> Path:
        return Path(self.storage.root)


def _format_location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def format_validation_error(error: ValidationError) -> str:
    """One line naming each bad key and what is wrong with it."""
    parts = []
    for item in error.errors():
        where = _format_location(item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        got = item.get("input")
        if item["type"] not in ("missing", "extra_forbidden") and isinstance(got, (str, int, float)):
            message += f" (got {got!r})"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def _refuse_password_in_file(data: dict[str, Any], origin: str) -> None:
    url = (data.get("database") or {}).get("url")
    if isinstance(url, str) and "://" in url:
        import sqlalchemy as sa

        try:
            password = sa.engine.make_url(url).password
        except Exception:  # noqa: BLE001 - an unparseable URL is reported when it is used
            return
        if password:
            raise ConfigError(
                f"{origin}: database.url holds a password; keep credentials out of files and set "
                f"{DATABASE_URL_ENV} in the environment instead"
            )


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Relative storage paths and SQLite files in the file are relative to the file's folder."""
    storage = data.setdefault("storage", {})
    root = storage.get("root", StorageConfig().root)
    if isinstance(root, str) and not URL_SCHEME.match(root) and not Path(root).is_absolute():
        storage["root"] = str(base / root)
    database = data.setdefault("database", {})
    url = database.get("url", DatabaseConfig().url)
    if isinstance(url, str):
        database["url"] = resolve_sqlite_url(url, base)


def resolve_sqlite_url(url: str, base: Path) -> str:
    """Make a relative `sqlite:///path` absolute against `base`; other URLs pass unchanged."""
    prefix = "sqlite:///"
    if url.startswith(prefix):
        path = url[len(prefix) :]
        if path and path != ":memory:" and not path.startswith("/"):
            return prefix + str((base / path).resolve())
    return url


def find_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config file: `--config`, else $FORECASTING_CONFIG, else ./forecasting.toml."""
    if explicit:
        path = Path(explicit)
        source = "--config"
    elif os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
        source = CONFIG_ENV
    else:
        path = Path(DEFAULT_CONFIG_FILE)
        source = "default location"
    if not path.is_file():
        raise ConfigError(f"config file {path} ({source}) not found; pass --config PATH or set {CONFIG_ENV}")
    return path.resolve()


def parse_settings(data: dict[str, Any], base: Path | None = None, origin: str = "config") -> Settings:
    """Validate a config mapping, resolving relative paths against `base` and applying env overrides."""
    data = {key: (dict(value) if isinstance(value, dict) else value) for key, value in data.items()}
    _refuse_password_in_file(data, origin)
    if base is not None:
        _resolve_paths(data, base)
    if os.environ.get(DATABASE_URL_ENV):
        data.setdefault("database", {})["url"] = resolve_sqlite_url(os.environ[DATABASE_URL_ENV], Path.cwd())
    if os.environ.get(STORAGE_ROOT_ENV):
        root = os.environ[STORAGE_ROOT_ENV]
        if URL_SCHEME.match(root):
            raise ConfigError(f"{STORAGE_ROOT_ENV}: {_URL_ROOT_MESSAGE} (got {root!r})")
        data.setdefault("storage", {})["root"] = str(Path(root).resolve())
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{origin}: {format_validation_error(error)}") from None


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate the config file (see `find_config_path`)."""
    config_path = find_config_path(path)
    try:
        data = tomllib.loads(config_path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{config_path}: not valid TOML: {error}") from None
    return parse_settings(data, base=config_path.parent, origin=str(config_path))
