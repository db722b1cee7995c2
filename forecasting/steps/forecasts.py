"""Forecasting and writes: forecast with the champion into a staged file, then upsert it into SQL and Parquet."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa

from forecasting.config.settings import Settings
from forecasting.errors import ConfigError, RunError
from forecasting.evaluation.sanity import FACTOR, out_of_range
from forecasting.publishing.forecast_dataset import write_forecasts
from forecasting.publishing.registry import load_version
from forecasting.publishing.repair import repair_parquet
from forecasting.runtime.clock import utc_now
from forecasting.runtime.faults import checkpoint
from forecasting.runtime.memory import release_memory
from forecasting.runtime.phases import phase, timed
from forecasting.sources.tables import FORECAST_KEY
from forecasting.sources.upserts import upsert_frame
from forecasting.steps.data import open_engine, prepare_data
from forecasting.storage.files import STAGING
from forecasting.storage.locations import make_dirs, read_parquet, write_parquet

EXAMPLES = 5  # series listed per kind (skipped, constant, stale, out of range) in a summary


@dataclass(frozen=True)
class ForecastSummary:
    """What `forecast_step` did: the staged file, the champion version used, what was read, forecast,
    skipped (with up to five examples each), the origins, frequency and horizon, and the series whose
    forecast goes more than `range_factor` times their observed range outside it (flagged, still
    written: `forecasting.evaluation.sanity`)."""

    staged: str
    version: int
    series_read: int
    rows_read: int
    series_forecast: int
    series_skipped: int
    skipped_examples: dict[str, str]
    series_constant: int
    constant_examples: dict[str, str]
    series_stale: int
    stale_examples: dict[str, str]
    origins: list[str]
    frequency: str
    horizon: int
    series_out_of_range: int = 0
    out_of_range_examples: dict[str, str] = field(default_factory=dict)
    range_factor: float = FACTOR
    methods: dict[str, int] = field(default_factory=dict)  # series forecast per `method` (network, short_history, constant)
    series_short_history: int = 0  # series shorter than the lookback, forecast from a padded window (cold start)
    short_history_examples: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain data."""
        return asdict(self)


@timed("forecast", data=True)
def forecast_step(settings: Settings, model_name: str, run_id: str) -> ForecastSummary:
    """Forecast every series with the champion and stage the rows as `<storage>/staging/<run_id>.parquet`."""
    engine = open_engine(settings)
    loaded = load_version(engine, model_name)
    if list(loaded.features) != settings.source.features:
        raise RunError(
            f"source.features {settings.source.features} differ from the features champion v{loaded.version} was trained "
            f"with ({list(loaded.features)}); retrain the model"
        )
    if list(loaded.future_features) != settings.source.future_features:
        raise RunError(
            f"source.future_features {settings.source.future_features} differ from those champion v{loaded.version} was trained "
            f"with ({list(loaded.future_features)}); retrain the model"
        )
    data = prepare_data(engine, settings, inputs=loaded.inputs, drop_stale=True)
    with phase("predict") as counts:
        result = loaded.predict(data.arrays, settings.model(model_name).intervals)
        counts.update(series=len(data.arrays.values), rows=len(result.forecasts))
    forecasts = result.forecasts
    # Flagged in the summary, never changed: forecasts far outside what their series has done.
    far_out = out_of_range({sid: values[:, 0] for sid, values in data.arrays.values.items()}, forecasts)
    # The arrays and the network are done with: let them go before the staged rows are built and written.
    version, horizon, read, stale, frequency = loaded.version, loaded.horizon, (data.series_read, data.rows_read), data.stale, data.frequency
    del loaded, data
    release_memory()
    forecasts.insert(0, "model_name", model_name)
    forecasts.insert(1, "model_version", version)
    forecasts["run_id"] = run_id
    forecasts["created_at"] = pd.Timestamp(utc_now())
    staging = settings.storage_root / STAGING
    make_dirs(staging)
    path = staging / f"{run_id}.parquet"
    write_parquet(forecasts, path)
    return ForecastSummary(
        staged=str(path),
        version=version,
        series_read=read[0],
        rows_read=read[1],
        series_forecast=int(forecasts["series_id"].nunique()) if len(forecasts) else 0,
        series_skipped=len(result.skipped),
        skipped_examples=dict(list(result.skipped.items())[:EXAMPLES]),
        series_constant=len(result.constant),
        constant_examples=dict(list(result.constant.items())[:EXAMPLES]),
        series_stale=len(stale),
        stale_examples=dict(list(stale.items())[:EXAMPLES]),
        origins=sorted({str(ts.date()) for ts in forecasts["forecast_origin"].unique()})[:EXAMPLES] if len(forecasts) else [],
        frequency=frequency,
        horizon=horizon,
        series_out_of_range=len(far_out),
        out_of_range_examples=dict(list(far_out.items())[:EXAMPLES]),
        methods=series_per_method(forecasts),
        series_short_history=len(result.short),
        short_history_examples=dict(list(result.short.items())[:EXAMPLES]),
    )


def series_per_method(forecasts: pd.DataFrame) -> dict[str, int]:
    """How many series each `method` forecast."""
    if not len(forecasts) or "method" not in forecasts:
        return {}
    return {str(method): int(count) for method, count in forecasts.groupby("method")["series_id"].nunique().sort_index().items()}


@timed("sql write", data=True)
def write_sql_step(settings: Settings, staged: str) -> int:
    """Upsert the staged forecasts into the `forecasts` table in one transaction; returns the rows written."""
    checkpoint("before-sql-write")
    frame = read_parquet(settings.locate(staged))
    engine = open_engine(settings)
    with engine.begin() as connection:
        table = sa.Table("forecasts", sa.MetaData(), autoload_with=connection)
        missing = [c for c in frame.columns if c not in table.c]
        if missing:
            raise ConfigError(f"forecasts table lacks columns {missing}; run `forecasting init`")
        written = upsert_frame(connection, table, frame, key=FORECAST_KEY)
    checkpoint("after-sql-write")
    return written


@timed("parquet write", data=True)
def write_parquet_step(settings: Settings, staged: str) -> int:
    """Upsert the staged forecasts into the hive-partitioned Parquet dataset; returns the rows written."""
    return write_forecasts(settings.storage_root, read_parquet(settings.locate(staged)), settings.forecasts_root)


@timed("parquet repair", data=True)
def repair_parquet_step(settings: Settings, model_name: str) -> dict[str, Any]:
    """Rebuild from SQL every Parquet partition of the model that is missing, unreadable or holds
    a different number of rows than SQL (see `forecasting.publishing.repair`); returns what was fixed."""
    report = repair_parquet(
        open_engine(settings), settings.storage_root, model_name, settings.model(model_name).intervals, settings.forecasts_root
    )
    return report.as_dict()
