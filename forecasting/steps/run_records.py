"""Run records: the `runs` row of each pipeline, tune or backtest run, from `running` to `completed` or `failed`."""

from __future__ import annotations

import traceback
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from forecasting.config.credentials import masked_url, redact
from forecasting.config.settings import Settings
from forecasting.errors import ConfigError
from forecasting.publishing.registry import remove_unregistered_versions
from forecasting.runtime.clock import utc_now
from forecasting.sources.database import check_source, table_columns
from forecasting.sources.tables import interval_columns, runs
from forecasting.steps.data import open_engine
from forecasting.steps.mode import MODES, RECORDED_MODES
from forecasting.storage.files import STAGING, check_storage


def start_run(
    settings: Settings,
    model_name: str,
    mode: str,
    flow_run_id: str | None = None,
    deployment: str | None = None,
    trigger: str = "manual",
) -> str:
    """Check the config against the database, mark the model's runs left `running` as abandoned
    (the caller holds the model's lock), record a `running` row and return its run id."""
    settings.model(model_name)
    if mode not in RECORDED_MODES:
        raise ConfigError(f"--mode: {mode!r} is not one of {', '.join(MODES)}")
    engine = open_engine(settings)
    check_schema(engine, settings, model_name)
    check_storage(settings)  # a worker's first look at the store: unreachable is one line, before any work
    run_id = uuid.uuid4().hex
    with engine.begin() as connection:
        # The caller holds the model's lock: a run still marked running was killed without cleanup.
        connection.execute(
            sa.update(runs)
            .where(runs.c.model_name == model_name, runs.c.status == "running")
            .values(status="abandoned", error="the process ended without finishing the run (killed or crashed)")
        )
        connection.execute(
            sa.insert(runs).values(
                run_id=run_id, model_name=model_name, flow_run_id=flow_run_id, mode=mode, status="running", started_at=utc_now(),
                deployment=deployment, trigger=trigger,
            )
        )
    remove_stale_staging(settings, engine)

    remove_unregistered_versions(engine, settings.storage_root, model_name)  # a kill before registration left it
    return run_id


def record_failed_start(settings: Settings, model_name: str, mode: str, error: BaseException) -> None:
    """A `failed` runs row for a run that could not start its flow (no Prefect server, say)."""
    now = utc_now()
    with open_engine(settings).begin() as connection:
        connection.execute(
            runs.insert().values(
                run_id=uuid.uuid4().hex, model_name=model_name, mode=mode, status="failed", started_at=now, finished_at=now,
                duration_seconds=0.0, trigger="manual", error=redact(str(error), settings.database.url),
            )
        )


def remove_stale_staging(settings: Settings, engine: Engine) -> list[str]:
    """Remove staged files (forecasts `<run_id>.parquet`, pull state `<run_id>-pull-state.parquet`) of runs that
    are no longer running (a killed or failed run leaves them); returns their names."""
    staging = settings.storage_root / STAGING
    if not staging.is_dir():
        return []
    with engine.connect() as connection:
        running = set(connection.execute(sa.select(runs.c.run_id).where(runs.c.status == "running")).scalars())
    removed = []
    for path in sorted(staging.glob("*.parquet")):
        if path.stem.split("-", 1)[0] not in running:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def check_schema(engine: Engine, settings: Settings, model_name: str) -> None:
    """Raise `ConfigError` unless the job's tables, the source table and columns, and the model's interval columns exist."""
    check_tables(engine, settings, model_name, source=True)


def check_tables(engine: Engine, settings: Settings, model_name: str, source: bool = False) -> None:
    """Raise `ConfigError` unless the job's tables and the model's interval columns exist (and, with
    `source`, the source table and its configured columns)."""
    with engine.connect() as connection:
        forecast_columns = table_columns(connection, "forecasts")
        if forecast_columns is None or table_columns(connection, "runs") is None:
            raise ConfigError(f"database.url: {masked_url(engine)} has no forecasting schema; run `forecasting init` first")
        if table_columns(connection, "forecast_errors") is None:
            raise ConfigError(
                f"database.url: {masked_url(engine)} has the forecasting schema of an older version (no table forecast_errors); "
                "run `forecasting init` to migrate it"
            )
        if "row_key" not in (table_columns(connection, "quarantine") or {}):
            raise ConfigError(
                f"database.url: {masked_url(engine)} has the forecasting schema of an older version (quarantine without row_key); "
                "run `forecasting init` to migrate it"
            )
        if "method" not in forecast_columns:
            raise ConfigError(
                f"database.url: {masked_url(engine)} has the forecasting schema of an older version (forecasts without method); "
                "run `forecasting init` to migrate it"
            )
        if source:
            check_source(connection, settings.source)
    for level in settings.model(model_name).intervals:
        for column in interval_columns(level):
            if column not in forecast_columns:
                raise ConfigError(
                    f"models.{model_name}.intervals: forecasts has no column {column} for level {level}; run `forecasting init`"
                )


def finish_run(settings: Settings, run_id: str, summary: dict[str, Any], staged: str | None = None) -> None:
    """Mark the run completed with the counts of its summary (see `summaries.RunSummary.as_dict`), and remove the staged file."""
    engine = open_engine(settings)
    finished = utc_now()
    pull = summary.get("pull") or {}
    with engine.begin() as connection:
        started = connection.execute(sa.select(runs.c.started_at).where(runs.c.run_id == run_id)).scalar_one()
        connection.execute(
            sa.update(runs)
            .where(runs.c.run_id == run_id)
            .values(
                status="completed",
                finished_at=finished,
                duration_seconds=(finished - started).total_seconds(),
                mode=summary.get("mode"),
                reason=summary.get("reason"),
                champion_version=summary.get("champion_version"),
                produced_version=summary.get("produced_version"),
                series_read=summary.get("series_read"),
                series_forecast=summary.get("series_forecast"),
                series_skipped=summary.get("series_skipped"),
                rows_sql=summary.get("rows_sql"),
                rows_parquet=summary.get("rows_parquet"),
                rows_pulled=pull.get("rows_pulled"),
                new_series=pull.get("new_series"),
                revised_values=pull.get("rows_revised"),
                quarantined=pull.get("quarantined"),
            )
        )
    if staged:
        settings.locate(staged).unlink(missing_ok=True)


def fail_run(settings: Settings, run_id: str, error: BaseException) -> None:
    """Mark the run failed with the error (best effort: the database may be what failed)."""
    message = f"{type(error).__name__}: {error}"
    try:
        engine = open_engine(settings)
        finished = utc_now()
        with engine.begin() as connection:
            started = connection.execute(sa.select(runs.c.started_at).where(runs.c.run_id == run_id)).scalar_one()
            details = redact(message + "\n" + "".join(traceback.format_exception(error))[-4000:], settings.database.url)
            connection.execute(
                sa.update(runs)
                .where(runs.c.run_id == run_id)
                .values(status="failed", finished_at=finished, duration_seconds=(finished - started).total_seconds(), error=details)
            )
    except Exception:  # noqa: BLE001 - recording the failure must not hide the original error
        pass
