"""The `forecasting.toml` configuration: database, storage and source settings, loading, environment overrides
(the models' own settings are in `forecasting.config.model_settings`)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from forecasting.config.credentials import (
    DATABASE_PASSWORD_ENV,
    DATABASE_URL_ENV,
    parse_url,
    with_password,
)
from forecasting.config.holiday_codes import HolidayCodes
from forecasting.config.model_settings import ModelConfig, StrictModel
from forecasting.config.report_settings import ReportConfig
from forecasting.errors import ConfigError
from forecasting.storage.locations import (
    REMOTE_SCHEMES,
    check_url,
    location,
    remember_options,
    secret_option_keys,
    url_problem,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_ENV = "FORECASTING_CONFIG"
STORAGE_ROOT_ENV = "FORECASTING_STORAGE_ROOT"
DEFAULT_CONFIG_FILE = "forecasting.toml"

# A model name becomes a folder and a partition value: keep it to a safe alphabet.
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# Upper bounds of the source's numbers (README, "Configuration"; the models' are in model_config).
MAX_FUTURE_PERIODS = 100_000
MAX_STALE_PERIODS = 100_000
MAX_DURATION_DAYS = 36_500  # late_arrival, max_future: 100 years, well inside pandas' timestamp range


class DatabaseConfig(StrictModel):
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
_CREDENTIALS_HINT = (
    "keep credentials out of files: the environment or the provider's usual chain "
    "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_ACCOUNT_KEY, ...)"
)


class StorageConfig(StrictModel):
    root: str = ".forecasting"
    # The Parquet forecasts dataset, when a team wants it elsewhere (its lake); None: <root>/forecasts.
    forecasts: str | None = None
    # Other fsspec filesystem options for an object store (endpoint_url, client_kwargs.region_name, ...); never credentials.
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("root", "forecasts")
    @classmethod
    def _folder_or_store(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("is empty; name a folder (relative to the config file's folder, or absolute) or an object-store URL")
        if value is not None and URL_SCHEME.match(value):
            problem = url_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("options")
    @classmethod
    def _no_credentials(cls, value: dict[str, Any]) -> dict[str, Any]:
        secrets = secret_option_keys(value)
        if secrets:
            raise ValueError(f"{', '.join(secrets)} look like credentials; {_CREDENTIALS_HINT}")
        return value

    @property
    def remote(self) -> bool:
        """Whether the root or the forecasts dataset is on an object store (more than one machine)."""
        return any(
            value and URL_SCHEME.match(value) and value.split("://", 1)[0].lower() in REMOTE_SCHEMES for value in (self.root, self.forecasts)
        )


class SourceConfig(StrictModel):
    table: str = "observations"
    series: str = "series_id"
    time: str = "ts"
    target: str = "value"
    features: list[str] = Field(default_factory=list)
    # Columns known ahead: stored as rows past a series' last observed target, with the target empty.
    future_features: list[str] = Field(default_factory=list)
    future_fill: Literal["error", "last", "zero"] = "error"  # a future value missing in the horizon
    holidays: HolidayCodes = Field(default_factory=list)  # holiday calendars ("US", "US-CA"): inputs known ahead
    frequency: str | None = None
    late_arrival: str = "0D"  # pulls re-read this far before the watermark, to pick up corrections
    gaps: Literal["leave", "interpolate", "ffill", "zero"] = "leave"  # missing grid points
    max_quarantined_fraction: float = Field(default=0.2, ge=0.0, le=1.0)  # of a series' stored + pulled rows
    on_bad_series: Literal["skip", "fail"] = "skip"  # a series over max_quarantined_fraction: set aside, or fail the run
    max_future: str = "92D"  # observed rows dated further than this after the run's time are quarantined
    # future rows more than this many periods after their series' last observation are quarantined
    max_future_periods: int = Field(default=1000, ge=1, le=MAX_FUTURE_PERIODS)
    stale_after: int = Field(default=12, ge=0, le=MAX_STALE_PERIODS)  # periods without an observation before a series is no longer forecast; 0: never
    max_series_drop: float = Field(default=0.2, ge=0.0, le=1.0)  # a pull losing more than this fraction of the series fails

    @field_validator("late_arrival", "max_future")
    @classmethod
    def _duration(cls, value: str) -> str:
        try:
            duration = pd.Timedelta(value)
            if duration < pd.Timedelta(0):
                raise ValueError
        except (ValueError, OverflowError):
            raise ValueError(f"{value!r} is not a non-negative duration (for example '0D', '45D', '6h')") from None
        if duration > pd.Timedelta(days=MAX_DURATION_DAYS):
            raise ValueError(f"{value!r} is too long: at most {MAX_DURATION_DAYS} days")
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

    @property
    def columns(self) -> list[str]:
        """The value columns read beside the target: past-only features, then future features."""
        return [*self.features, *self.future_features]

    @model_validator(mode="after")
    def _future_apart(self) -> "SourceConfig":
        both = sorted(set(self.features) & set(self.future_features))
        if both:
            raise ValueError(f"future_features: {both} are also in source.features; a column is past-only or known ahead, not both")
        keys = sorted({self.series, self.time, self.target} & set(self.future_features))
        if keys:
            raise ValueError(f"future_features: {keys} are the series, time or target column")
        return self

    @field_validator("features", "future_features")
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

        try:
            pd.tseries.frequencies.to_offset(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a pandas offset alias (for example 'MS', 'D', 'h')") from None
        return value


class Settings(StrictModel):
    database: DatabaseConfig = DatabaseConfig()
    storage: StorageConfig = StorageConfig()
    source: SourceConfig = SourceConfig()
    report: ReportConfig = ReportConfig()
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

    @model_validator(mode="after")
    def _remember_store_options(self) -> "Settings":
        for root in (self.storage.root, self.storage.forecasts):
            remember_options(root, self.storage.options)  # artifact URLs in the registry open with them
        return self

    def model(self, name: str) -> ModelConfig:
        """The config of model `name`, or a ConfigError listing the configured ones."""
        if name not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            raise ConfigError(f"models.{name}: no such model in the config (configured: {known})")
        return self.models[name]

    @property
    def storage_root(self) -> Path:
        """The storage root: a `Path` for a local folder, a `UPath` for an object store."""
        return location(self.storage.root, self.storage.options)

    @property
    def forecasts_root(self) -> Path:
        """Where the Parquet forecasts dataset lives: `storage.forecasts`, else `<root>/forecasts`."""
        if self.storage.forecasts:
            return location(self.storage.forecasts, self.storage.options)
        return self.storage_root / "forecasts"

    def locate(self, text: str) -> Path:
        """A path the job wrote (a staged file, say), as a path object on its filesystem."""
        return location(text)


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
        try:
            password = parse_url(url).password
        except ConfigError:  # an unreadable URL is reported once the environment has had its say
            password = "@" in url.split("://", 1)[1].rpartition("@")[0] and "unreadable"
        if password:
            raise ConfigError(
                f"{origin}: database.url holds a password; keep credentials out of files and set "
                f"{DATABASE_URL_ENV} or {DATABASE_PASSWORD_ENV} in the environment instead"
            )


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Relative storage paths and SQLite files in the file are relative to the file's folder."""
    storage = data.setdefault("storage", {})
    for key in ("root", "forecasts"):
        root = storage.get(key, StorageConfig().root if key == "root" else None)
        if isinstance(root, str) and root.strip() and not URL_SCHEME.match(root):
            root = os.path.expanduser(root)  # "~/x": the home folder's x, as in a shell
            storage[key] = root if Path(root).is_absolute() else str(base / root)
    report = data.get("report")
    copy = report.get("local_copy") if isinstance(report, dict) else None
    if isinstance(copy, str) and copy.strip() and not URL_SCHEME.match(copy):
        data["report"] = {**data["report"], "local_copy": str(base / os.path.expanduser(copy))}
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
            check_url(root, STORAGE_ROOT_ENV)
        else:
            root = str(Path(root).expanduser().resolve())
        data.setdefault("storage", {})["root"] = root
    url = data.setdefault("database", {}).get("url", DatabaseConfig().url)
    if isinstance(url, str):
        data["database"]["url"] = with_password(url)
    try:
        # Strict: a number written as text ("6") or a boolean is refused, not converted.
        settings = Settings.model_validate(data, strict=True)
    except ValidationError as error:
        raise ConfigError(f"{origin}: {format_validation_error(error)}") from None
    if settings.storage.remote and settings.database.url.startswith("sqlite"):
        raise ConfigError(
            f"{origin}: storage.root is an object store, which means runs on more than one machine, but the database is SQLite "
            f"(one machine's file, no shared lock): set {DATABASE_URL_ENV} to a PostgreSQL URL, or keep storage.root a local folder"
        )
    return settings


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate the config file (see `find_config_path`)."""
    config_path = find_config_path(path)
    try:
        data = tomllib.loads(config_path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{config_path}: not valid TOML: {error}") from None
    return parse_settings(data, base=config_path.parent, origin=str(config_path))
