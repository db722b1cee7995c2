"""The steps of one pipeline run, as plain functions that take settings and return small values.

`flows/` wraps each step in a Prefect task; the CLI and tests can call them directly too.
Heavy objects (frames, models) stay inside a step; steps hand each other ids, paths and counts.
"""

from __future__ import annotations

import json
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from forecasting.config import Settings
from forecasting.database import (
    FORECAST_BASE_COLUMNS,
    FORECAST_KEY,
    connect_checked,
    frame_to_rows,
    interval_columns,
    masked_url,
    read_observations,
    runs,
    table_columns,
    upsert,
)
from forecasting.errors import ConfigError, RunError
from forecasting.validation import PreparationReport, infer_frequency, regularize
from forecasting.windowing import SeriesArrays, to_series_arrays

Mode = Literal["auto", "retrain", "forecast"]
MODES = ("auto", "retrain", "forecast")
STAGING = "staging"


def open_engine(settings: Settings) -> Engine:
    return connect_checked(settings.database.url)


def utc_now() -> Any:
    from forecasting.registry import utc_now as now

    return now()


@dataclass
class PreparedData:
    arrays: SeriesArrays
    frequency: str
    report: PreparationReport
    series_read: int
    rows_read: int


def prepare_data(engine: Engine, settings: Settings, frequency: str | None = None) -> PreparedData:
    """Read the source table and put every series on a regular grid of the configured (or inferred) frequency."""
    with engine.connect() as connection:
        frame = read_observations(connection, settings.source)
    if frame.empty:
        raise RunError(f"source table {settings.source.table!r} holds no observations; load some with `forecasting load FILE`")
    frequency = infer_frequency(frame, frequency or settings.source.frequency)
    regular, report = regularize(frame, frequency)
    return PreparedData(
        arrays=to_series_arrays(regular, settings.source.features),
        frequency=frequency,
        report=report,
        series_read=int(frame["series_id"].nunique()),
        rows_read=len(frame),
    )


def start_run(settings: Settings, model_name: str, mode: str, flow_run_id: str | None = None) -> str:
    """Check the config against the database and record a `running` row in `runs`."""
    settings.model(model_name)
    if mode not in MODES:
        raise ConfigError(f"--mode: {mode!r} is not one of {', '.join(MODES)}")
    engine = open_engine(settings)
    check_schema(engine, settings, model_name)
    run_id = uuid.uuid4().hex
    with engine.begin() as connection:
        connection.execute(
            sa.insert(runs).values(
                run_id=run_id, model_name=model_name, flow_run_id=flow_run_id, mode=mode, status="running", started_at=utc_now()
            )
        )
    return run_id


def check_schema(engine: Engine, settings: Settings, model_name: str) -> None:
    """The job's tables exist, the source table and columns exist, interval columns exist."""
    from forecasting.database import check_source

    with engine.connect() as connection:
        forecast_columns = table_columns(connection, "forecasts")
        if forecast_columns is None or table_columns(connection, "runs") is None:
            raise ConfigError(f"database.url: {masked_url(engine)} has no forecasting schema; run `forecasting init` first")
        check_source(connection, settings.source)
    for level in settings.model(model_name).intervals:
        for column in interval_columns(level):
            if column not in forecast_columns:
                raise ConfigError(
                    f"models.{model_name}.intervals: forecasts has no column {column} for level {level}; run `forecasting init`"
                )


def decide_mode(settings: Settings, model_name: str, requested: str) -> dict[str, str]:
    """The mode to run and one sentence saying why."""
    from forecasting.registry import champion_version, read_manifest
    from forecasting.database import model_versions

    if requested != "auto":
        return {"mode": requested, "reason": f"{requested}: requested"}
    engine = open_engine(settings)
    with engine.connect() as connection:
        champion = champion_version(connection, model_name)
        if champion is None:
            return {"mode": "retrain", "reason": f"retrain: model {model_name} has no champion yet"}
        path = connection.execute(
            sa.select(model_versions.c.artifact_path).where(
                model_versions.c.model_name == model_name, model_versions.c.version == champion
            )
        ).scalar_one()
        watermark = read_manifest(Path(path)).get("data_watermark")
        source = sa.Table(settings.source.table, sa.MetaData(), autoload_with=connection)
        newer = connection.execute(
            sa.select(sa.func.count(), sa.func.count(sa.distinct(source.c[settings.source.series]))).where(
                source.c[settings.source.time] > pd.Timestamp(watermark).to_pydatetime()
            )
        ).one() if watermark else (0, 0)
    if newer[0]:
        return {
            "mode": "retrain",
            "reason": f"retrain: {newer[0]} new observations for {newer[1]} series since {watermark} (champion v{champion})",
        }
    return {"mode": "forecast", "reason": f"forecast: no observations newer than {watermark}, the champion v{champion}'s data"}


def train_step(settings: Settings, model_name: str, run_id: str, verbose: int = 0) -> dict[str, Any]:
    """Retrain from scratch on all observations, register the new version and make it champion."""
    from forecasting.evaluation import season_length
    from forecasting.registry import build_manifest, register_version
    from forecasting.training import train

    config = settings.model(model_name)
    engine = open_engine(settings)
    data = prepare_data(engine, settings)
    result = train(data.arrays, config, season=season_length(data.frequency), verbose=verbose)
    manifest = build_manifest(
        config=config,
        scaler=result.scaler,
        features=settings.source.features,
        frequency=data.frequency,
        interval_halfwidths=result.interval_halfwidths,
        metrics=result.metrics,
        data_watermark=result.data_watermark,
        train_start=result.train_start,
        train_end=result.train_end,
        training={
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "train_windows": result.train_windows,
            "val_windows": result.val_windows,
            "series_trained": result.series_trained,
            "seconds": round(result.seconds, 2),
            "history": result.history,
        },
    )
    version = register_version(engine, settings.storage_root, model_name, result.model, manifest, run_id)
    return {
        "version": version,
        "cell": config.cell,
        "layers": [layer.model_dump() for layer in config.layers],
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "train_windows": result.train_windows,
        "val_windows": result.val_windows,
        "series_trained": result.series_trained,
        "train_seconds": round(result.seconds, 1),
        "metrics": result.metrics,
    }


def forecast_step(settings: Settings, model_name: str, run_id: str) -> dict[str, Any]:
    """Forecast every series with the champion and stage the rows as a Parquet file; returns its path."""
    from forecasting.prediction import predict
    from forecasting.registry import load_version

    engine = open_engine(settings)
    loaded = load_version(engine, model_name)
    if loaded.manifest.get("features", []) != settings.source.features:
        raise RunError(
            f"source.features {settings.source.features} differ from the features champion v{loaded.version} was trained "
            f"with ({loaded.manifest.get('features', [])}); retrain the model"
        )
    data = prepare_data(engine, settings, frequency=loaded.manifest["frequency"])
    result = predict(
        loaded.model,
        loaded.scaler,
        data.arrays,
        lookback=loaded.manifest["lookback"],
        horizon=loaded.manifest["horizon"],
        frequency=data.frequency,
        interval_halfwidths={level: w for level, w in loaded.interval_halfwidths.items() if level in settings.model(model_name).intervals},
    )
    forecasts = result.forecasts
    forecasts.insert(0, "model_name", model_name)
    forecasts.insert(1, "model_version", loaded.version)
    forecasts["run_id"] = run_id
    forecasts["created_at"] = pd.Timestamp(utc_now())
    staging = Path(settings.storage_root) / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    path = staging / f"{run_id}.parquet"
    forecasts.to_parquet(path, index=False)
    return {
        "staged": str(path),
        "version": loaded.version,
        "series_read": data.series_read,
        "rows_read": data.rows_read,
        "series_forecast": int(forecasts["series_id"].nunique()) if len(forecasts) else 0,
        "series_skipped": len(result.skipped),
        "skipped_examples": dict(list(result.skipped.items())[:5]),
        "origins": sorted({str(ts.date()) for ts in forecasts["forecast_origin"]})[:5] if len(forecasts) else [],
        "frequency": data.frequency,
    }


def write_sql_step(settings: Settings, staged: str) -> int:
    """Upsert the staged forecasts into the `forecasts` table in one transaction."""
    frame = pd.read_parquet(staged)
    engine = open_engine(settings)
    with engine.begin() as connection:
        table = sa.Table("forecasts", sa.MetaData(), autoload_with=connection)
        missing = [c for c in frame.columns if c not in table.c]
        if missing:
            raise ConfigError(f"forecasts table lacks columns {missing}; run `forecasting init`")
        return upsert(connection, table, frame_to_rows(frame), key=FORECAST_KEY)


def write_parquet_step(settings: Settings, staged: str) -> int:
    """Upsert the staged forecasts into the hive-partitioned Parquet dataset."""
    from forecasting.store import write_forecasts

    return write_forecasts(settings.storage_root, pd.read_parquet(staged))


def finish_run(settings: Settings, run_id: str, summary: dict[str, Any], staged: str | None = None) -> None:
    """Mark the run succeeded with its counts, and remove the staged file."""
    engine = open_engine(settings)
    with engine.begin() as connection:
        connection.execute(
            sa.update(runs)
            .where(runs.c.run_id == run_id)
            .values(
                status="completed",
                finished_at=utc_now(),
                mode=summary.get("mode"),
                reason=summary.get("reason"),
                champion_version=summary.get("champion_version"),
                produced_version=summary.get("produced_version"),
                series_read=summary.get("series_read"),
                series_forecast=summary.get("series_forecast"),
                series_skipped=summary.get("series_skipped"),
                rows_sql=summary.get("rows_sql"),
                rows_parquet=summary.get("rows_parquet"),
            )
        )
    if staged:
        Path(staged).unlink(missing_ok=True)


def fail_run(settings: Settings, run_id: str, error: BaseException) -> None:
    """Mark the run failed with the error (best effort: the database may be what failed)."""
    message = f"{type(error).__name__}: {error}"
    try:
        engine = open_engine(settings)
        with engine.begin() as connection:
            connection.execute(
                sa.update(runs)
                .where(runs.c.run_id == run_id)
                .values(status="failed", finished_at=utc_now(), error=message + "\n" + "".join(traceback.format_exception(error))[-4000:])
            )
    except Exception:  # noqa: BLE001 - recording the failure must not hide the original error
        pass


def summary_from_steps(
    settings: Settings,
    model_name: str,
    run_id: str,
    decision: dict[str, str],
    trained: dict[str, Any] | None,
    forecast: dict[str, Any],
    rows_sql: int,
    rows_parquet: int,
) -> dict[str, Any]:
    """The run's summary: what it read, trained, wrote and where."""
    from forecasting.store import forecasts_root

    return {
        "run_id": run_id,
        "model": model_name,
        "mode": decision["mode"],
        "reason": decision["reason"],
        "series_read": forecast["series_read"],
        "rows_read": forecast["rows_read"],
        "series_forecast": forecast["series_forecast"],
        "series_skipped": forecast["series_skipped"],
        "skipped_examples": forecast["skipped_examples"],
        "frequency": forecast["frequency"],
        "origins": forecast["origins"],
        "champion_version": forecast["version"],
        "produced_version": trained["version"] if trained else None,
        "training": trained,
        "rows_sql": rows_sql,
        "rows_parquet": rows_parquet,
        "database": masked_url(settings.database.url),
        "parquet": str(forecasts_root(settings.storage_root)),
        "models": str(Path(settings.storage_root) / "models" / model_name),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a few lines for a person."""
    lines = [
        f"run {summary['run_id']} of model {summary['model']}: {summary['reason']}",
        f"  series read: {summary['series_read']} ({summary['rows_read']} observations, frequency {summary['frequency']}); "
        f"forecast: {summary['series_forecast']}; skipped: {summary['series_skipped']}",
    ]
    for series_id, reason in summary.get("skipped_examples", {}).items():
        lines.append(f"    skipped {series_id}: {reason}")
    trained = summary.get("training")
    if trained:
        layers = ", ".join(
            f"{layer['units']} units" + (f" dropout {layer['dropout']}" if layer["dropout"] else "") + f" {layer['activation']}"
            for layer in trained["layers"]
        )
        metrics = trained["metrics"]
        lines.append(
            f"  model: {trained['cell'].upper()} [{layers}]; {trained['epochs_run']} epochs run, best epoch {trained['best_epoch']}, "
            f"best validation loss {trained['best_val_loss']:.4f} ({trained['train_windows']} training / {trained['val_windows']} validation windows, "
            f"{trained['train_seconds']} s)"
        )
        lines.append(
            f"  validation sMAPE: model {metrics['val_smape_model']:.2f}, naive {metrics['val_smape_naive']:.2f}, "
            f"seasonal naive {metrics['val_smape_seasonal_naive']:.2f}"
        )
        lines.append(f"  version registered: {trained['version']} (champion) in {summary['models']}/{trained['version']}")
    else:
        lines.append(f"  model: champion version {summary['champion_version']} (no training in this run)")
    lines.append(f"  rows written: {summary['rows_sql']} to table forecasts in {summary['database']}")
    lines.append(f"  rows written: {summary['rows_parquet']} to Parquet dataset {summary['parquet']}")
    if summary.get("origins"):
        lines.append(f"  forecast origins: {', '.join(summary['origins'])}")
    return "\n".join(lines)


def summary_json(summary: dict[str, Any]) -> str:
    return json.dumps(summary, default=str, sort_keys=True)
