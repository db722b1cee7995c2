"""The steps of one pipeline run, as plain functions that take settings and return small values.

`flows/` wraps each step in a Prefect task; the CLI and tests can call them directly too.
Heavy objects (frames, models) stay inside a step; steps hand each other ids, paths and counts.
"""

from __future__ import annotations

import json
import os
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from forecasting.config import ModelConfig, Settings, SourceConfig, TuningConfig
from forecasting.database import (
    FORECAST_KEY,
    create_db_engine,
    interval_columns,
    masked_url,
    redact,
    ingestion_state,
    quarantine,
    read_observations,
    runs,
    table_columns,
    upsert_frame,
)
from forecasting.errors import ConfigError, RunError
from forecasting.faults import checkpoint
from forecasting.registry import utc_now
from forecasting.validation import fill_gaps, infer_frequency, regularize, screen
from forecasting.windowing import SeriesArrays, to_series_arrays

Mode = Literal["auto", "retrain", "fine-tune", "forecast"]
MODES = ("auto", "retrain", "fine-tune", "forecast")
STAGING = "staging"


def open_engine(settings: Settings) -> Engine:
    """An engine for the configured database. Connection failures surface as SQLAlchemy errors,
    which the flow's database tasks retry; the CLI checks reachability up front (`connect_checked`)."""
    return create_db_engine(settings.database.url)


@dataclass
class PreparedData:
    arrays: SeriesArrays
    frequency: str
    series_read: int
    rows_read: int


def prepare_data(engine: Engine, settings: Settings, frequency: str | None = None, calendar: bool = False) -> PreparedData:
    """The pulled observations (the local history store), each series on a regular grid of the
    configured, recorded or inferred frequency, gaps handled per `source.gaps`."""
    from forecasting import history

    frame = history.read(history.history_root(settings.storage_root, settings.source.table))
    if frame.empty:
        raise RunError(
            f"no observations have been pulled from {settings.source.table!r} yet; load some with `forecasting load FILE` "
            "and run the pipeline (it pulls first)"
        )
    frequency = infer_frequency(frame, frequency or settings.source.frequency or _recorded_frequency(engine, settings))
    regular, _ = regularize(frame, frequency)
    regular = fill_gaps(regular, settings.source.gaps)
    return PreparedData(
        arrays=to_series_arrays(regular, settings.source.features, frequency, calendar),
        frequency=frequency,
        series_read=int(frame["series_id"].nunique()),
        rows_read=len(frame),
    )


def _recorded_frequency(engine: Engine, settings: Settings) -> str | None:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(ingestion_state.c.frequency).where(ingestion_state.c.source == settings.source.table)
        ).scalar()


def source_lock(settings: Settings, engine: Engine) -> Any:
    """Pulls into one source's history store take turns (models sharing a source may run at once)."""
    from forecasting.locking import model_lock

    return model_lock(engine, settings.storage_root, f"source.{settings.source.table}", timeout=3600)


def pull_step(settings: Settings, run_id: str, full_refresh: bool = False) -> dict[str, Any]:
    """Read the source rows newer than the stored watermark (minus `source.late_arrival`), screen
    them (unusable rows go to `quarantine` with a reason) and merge them into the history store.
    The watermark itself moves only in `commit_pull`, once the run's outputs are committed."""
    from forecasting import history

    source = settings.source
    engine = open_engine(settings)
    root = history.history_root(settings.storage_root, source.table)
    with source_lock(settings, engine):
        with engine.connect() as connection:
            columns = {name: str(kind) for name, kind in (table_columns(connection, source.table) or {}).items()}
            state = connection.execute(sa.select(ingestion_state).where(ingestion_state.c.source == source.table)).mappings().first()
        check_source_columns(source, columns, json.loads(state["columns"]) if state and state["columns"] else None)
        refresh = full_refresh or state is None or state["watermark"] is None or not history.exists(root)
        since = None if refresh else pd.Timestamp(state["watermark"]) - pd.Timedelta(source.late_arrival)
        with engine.connect() as connection:
            frame = read_observations(connection, source, since=since.to_pydatetime() if since is not None else None)
        frequency = source.frequency or (state["frequency"] if state else None)
        if frequency is None:
            frequency = infer_frequency(frame) if len(frame) else None
        screening = screen(frame, frequency, source.max_quarantined_fraction) if frequency and len(frame) else None
        clean = screening.clean if screening else frame
        if screening is not None and len(screening.quarantined):
            now = utc_now()
            rows = [
                {"run_id": run_id, "source": source.table, "series_id": row.series_id, "ts": row.ts.to_pydatetime(),
                 "value": row.value, "reason": row.reason, "created_at": now}
                for row in screening.quarantined.itertuples()
            ]
            with engine.begin() as connection:
                connection.execute(sa.insert(quarantine), rows)
        if refresh:
            history.clear(root)
        stats = history.merge(root, clean)
    previous = pd.Timestamp(state["watermark"]) if state and state["watermark"] is not None and not refresh else None
    latest = clean["ts"].max() if len(clean) else None
    watermark = max(t for t in (previous, latest) if t is not None) if (previous is not None or latest is not None) else None
    return {
        "full_refresh": bool(refresh),
        "since": str(since) if since is not None else None,
        "rows_pulled": len(frame),
        "rows_new": stats.rows_new,
        "rows_revised": stats.rows_revised,
        "new_series": stats.new_series,
        "quarantined": int(len(screening.quarantined)) if screening else 0,
        "duplicates": screening.duplicates if screening else 0,
        "watermark": watermark.isoformat() if watermark is not None else None,
        "frequency": frequency,
        "columns": columns,
    }


def commit_pull(settings: Settings, run_id: str, pulled: dict[str, Any]) -> None:
    """Advance the source's watermark to what the run pulled (called after its outputs are committed)."""
    engine = open_engine(settings)
    values = {
        "watermark": pd.Timestamp(pulled["watermark"]).to_pydatetime() if pulled["watermark"] else None,
        "frequency": pulled["frequency"],
        "columns": json.dumps(pulled["columns"], sort_keys=True),
        "updated_at": utc_now(),
        "run_id": run_id,
    }
    with engine.begin() as connection:
        updated = connection.execute(
            sa.update(ingestion_state).where(ingestion_state.c.source == settings.source.table).values(**values)
        )
        if updated.rowcount == 0:
            connection.execute(sa.insert(ingestion_state).values(source=settings.source.table, **values))


def check_source_columns(source: SourceConfig, columns: dict[str, str], recorded: dict[str, str] | None) -> None:
    """Fail clearly when a column the job reads disappeared or changed type since the last pull."""
    if recorded is None:
        return
    for name in [source.series, source.time, source.target, *source.features]:
        if name in recorded and name in columns and columns[name] != recorded[name]:
            raise ConfigError(
                f"source.table: column {name!r} of {source.table!r} changed type from {recorded[name]} to {columns[name]} "
                "since the last pull; check the data, then run with --full-refresh"
            )


def start_run(
    settings: Settings,
    model_name: str,
    mode: str,
    flow_run_id: str | None = None,
    deployment: str | None = None,
    trigger: str = "manual",
) -> str:
    """Check the config against the database and record a `running` row in `runs`."""
    settings.model(model_name)
    if mode not in (*MODES, "tune", "backtest"):
        raise ConfigError(f"--mode: {mode!r} is not one of {', '.join(MODES)}")
    engine = open_engine(settings)
    check_schema(engine, settings, model_name)
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
    return run_id


def remove_stale_staging(settings: Settings, engine: Engine) -> list[str]:
    """Remove staged forecast files of runs that are no longer running (a killed run leaves its file)."""
    staging = Path(settings.storage_root) / STAGING
    if not staging.is_dir():
        return []
    with engine.connect() as connection:
        running = set(connection.execute(sa.select(runs.c.run_id).where(runs.c.status == "running")).scalars())
    removed = []
    for path in sorted(staging.glob("*.parquet")):
        if path.stem not in running:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


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


def uses_calendar(manifest: dict[str, Any]) -> bool:
    """Whether a version was trained with calendar inputs (versions from before the option: no)."""
    return bool(manifest.get("config", {}).get("calendar", False))


def _holdout(loaded_model: Any, scaler: Any, arrays: SeriesArrays, lookback: int, horizon: int, frequency: str, metric: str) -> dict[str, float]:
    from forecasting.evaluation import score_holdout, season_length

    return score_holdout(loaded_model, scaler, arrays, lookback, horizon, season_length(frequency), metric)


def _format_watermark(value: str | None) -> str:
    return str(pd.Timestamp(value).date()) if value and pd.Timestamp(value) == pd.Timestamp(value).normalize() else str(value)


def _newer_observations(engine: Engine, settings: Settings, watermark: Any) -> tuple[int, int]:
    """(observations, series) in the history store newer than `watermark`."""
    from forecasting import history

    newer = history.read(history.history_root(settings.storage_root, settings.source.table), newer_than=watermark)
    return int(len(newer)), int(newer["series_id"].nunique()) if len(newer) else 0


def decide_mode(settings: Settings, model_name: str, requested: str) -> dict[str, str]:
    """The mode to run and one sentence saying why.

    `fine-tune` falls back to retrain without a champion and to forecast without new observations.
    `auto`: no champion -> retrain; champion older than `promotion.retrain_every_days` -> retrain;
    new observations since the champion's data watermark -> fine-tune, unless the champion's error
    on the latest holdout grew more than `promotion.drift_tolerance` over its score at promotion
    (then retrain); no new observations -> forecast only.
    """
    from forecasting.registry import champion_version, load_version, version_row

    if requested in ("retrain", "forecast"):
        return {"mode": requested, "reason": f"{requested}: requested"}
    config = settings.model(model_name)
    engine = open_engine(settings)
    with engine.connect() as connection:
        champion = champion_version(connection, model_name)
    if champion is None:
        if requested == "fine-tune":
            return {"mode": "retrain", "reason": f"retrain: fine-tune requested, but model {model_name} has no champion to continue from yet"}
        return {"mode": "retrain", "reason": f"retrain: model {model_name} has no champion yet"}
    row = version_row(engine, model_name, champion)
    if requested == "fine-tune":
        count, series = _newer_observations(engine, settings, row["data_watermark"])
        since = _format_watermark(str(row["data_watermark"]))
        if not count:
            return {"mode": "forecast", "reason": f"forecast: fine-tune requested, but nothing is newer than {since}, the data of champion v{champion}"}
        return {"mode": "fine-tune", "reason": f"fine-tune: requested; {count} new observation{'s' if count != 1 else ''} for {series} series since {since} (champion v{champion})"}
    age_days = (utc_now() - row["created_at"]).total_seconds() / 86400
    if config.promotion.retrain_every_days is not None and age_days > config.promotion.retrain_every_days:
        return {
            "mode": "retrain",
            "reason": f"retrain: champion v{champion} is {age_days:.1f} days old (retrain_every_days {config.promotion.retrain_every_days:g})",
        }
    watermark = row["data_watermark"]
    newer = _newer_observations(engine, settings, watermark)
    since = _format_watermark(str(watermark))
    if not newer[0]:
        return {"mode": "forecast", "reason": f"forecast: no observations newer than {since}, the data of champion v{champion}"}
    new_data = f"{newer[0]} new observation{'s' if newer[0] != 1 else ''} for {newer[1]} series since {since}"
    if row["holdout_score"] is not None and row["holdout_metric"] == config.promotion.metric:
        loaded = load_version(engine, model_name, champion)
        data = prepare_data(engine, settings, frequency=loaded.manifest["frequency"], calendar=uses_calendar(loaded.manifest))
        recent = _holdout(
            loaded.model, loaded.scaler, data.arrays, loaded.manifest["lookback"], loaded.manifest["horizon"], data.frequency, row["holdout_metric"]
        )["score"]
        limit = row["holdout_score"] * (1 + config.promotion.drift_tolerance)
        if recent > limit:
            growth = recent / row["holdout_score"] - 1 if row["holdout_score"] else float("inf")
            return {
                "mode": "retrain",
                "reason": f"retrain: champion v{champion}'s recent {row['holdout_metric']} {recent:.3f} is {growth:.0%} worse than "
                f"{row['holdout_score']:.3f} at promotion (tolerance {config.promotion.drift_tolerance:.0%}); {new_data}",
            }
    return {"mode": "fine-tune", "reason": f"fine-tune: {new_data} (champion v{champion})"}


def train_step(settings: Settings, model_name: str, run_id: str, mode: str = "retrain", verbose: int = 0) -> dict[str, Any]:
    """Retrain from scratch (with the newest tuning record, if any) or fine-tune the champion; score
    the new version, the champion and seasonal naive on the latest holdout; register the version and
    promote it only if it beats the champion by the configured margin."""
    from forecasting.evaluation import season_length
    from forecasting.registry import (
        build_manifest,
        champion_version,
        latest_tuning_record,
        load_version,
        register_version,
    )
    from forecasting.training import fine_tune, train
    from forecasting.tuning import apply_hyperparameters

    if mode not in ("retrain", "fine-tune"):
        raise ConfigError(f"--mode: {mode!r} does not train; use retrain or fine-tune")
    config = settings.model(model_name)
    engine = open_engine(settings)
    with engine.connect() as connection:
        champion_number = champion_version(connection, model_name)
        record = latest_tuning_record(connection, model_name)
    champion = load_version(engine, model_name, champion_number) if champion_number is not None else None
    tuning_record = None
    if mode == "fine-tune":
        if champion is None:
            raise RunError(f"fine-tune: model {model_name!r} has no champion to continue from; run with --mode retrain first")
        effective = ModelConfig.model_validate(
            {**champion.manifest["config"], "fine_tune": config.fine_tune.model_dump(), "promotion": config.promotion.model_dump(),
             "intervals": config.intervals, "seed": config.seed}
        )
        tuning_record = champion.manifest.get("tuning_record")
        data = prepare_data(engine, settings, frequency=champion.manifest["frequency"], calendar=uses_calendar(champion.manifest))
        # Load a second copy: the champion's own copy stays untouched for scoring below.
        parent = load_version(engine, model_name, champion_number)
        result = fine_tune(
            data.arrays, effective, parent.model, parent.scaler, champion.manifest.get("series_train_end", {}),
            season=season_length(data.frequency), verbose=verbose,
        )
    else:
        effective = config
        if record is not None:
            tuning_record, hyperparameters = record
            effective = apply_hyperparameters(config, hyperparameters)
        data = prepare_data(engine, settings, calendar=effective.calendar)
        result = train(data.arrays, effective, season=season_length(data.frequency), verbose=verbose)

    metric = config.promotion.metric
    # Scored by the network that has not seen the holdout (a refit model has): a fair comparison.
    new_scores = _holdout(result.holdout_model or result.model, result.holdout_scaler or result.scaler, data.arrays, effective.lookback, effective.horizon, data.frequency, metric)
    gate: dict[str, Any] = {"holdout_metric": metric, "holdout_score": new_scores["score"], "baseline_score": new_scores["baseline"]}
    if champion is None:
        promote, decision = True, f"promoted: first version ({metric} {new_scores['score']:.3f}, seasonal naive {new_scores['baseline']:.3f})"
    elif champion.manifest["horizon"] != effective.horizon:
        promote, decision = True, f"promoted: champion v{champion.version} forecasts a different horizon ({champion.manifest['horizon']})"
    else:
        champion_arrays = data.arrays
        if uses_calendar(champion.manifest) != effective.calendar:  # the champion reads other input columns
            champion_arrays = prepare_data(engine, settings, frequency=data.frequency, calendar=uses_calendar(champion.manifest)).arrays
        old = _holdout(champion.model, champion.scaler, champion_arrays, champion.manifest["lookback"], champion.manifest["horizon"], data.frequency, metric)
        gate["champion_score"] = old["score"]
        needed = old["score"] * (1 - config.promotion.margin)
        promote = bool(new_scores["score"] < needed)
        verdict = "promoted" if promote else "kept as candidate"
        relation = "beats" if promote else "does not beat"
        decision = (
            f"{verdict}: {metric} {new_scores['score']:.3f} {relation} champion v{champion.version}'s {old['score']:.3f}"
            f" (margin {config.promotion.margin:.0%}; seasonal naive {new_scores['baseline']:.3f})"
        )
    gate["decision"] = decision
    manifest = build_manifest(
        config=effective,
        scaler=result.scaler,
        features=settings.source.features,
        frequency=data.frequency,
        interval_halfwidths=result.interval_halfwidths,
        metrics={**result.metrics, f"holdout_{metric}": new_scores["score"], f"holdout_{metric}_seasonal_naive": new_scores["baseline"]},
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
            **result.extra,
        },
        parent_version=champion.version if mode == "fine-tune" else None,
        mode=mode,
        tuning_record=tuning_record,
        series_train_end=result.series_train_end,
    )
    version = register_version(engine, settings.storage_root, model_name, result.model, manifest, run_id, promote=promote, gate=gate)
    return {
        "version": version,
        "mode": mode,
        "promoted": promote,
        "decision": decision,
        "parent_version": manifest["parent_version"],
        "tuning_record": tuning_record,
        "cell": effective.cell,
        "layers": [layer.model_dump() for layer in effective.layers],
        "lookback": effective.lookback,
        "members": effective.ensemble.members,
        "member_lookbacks": sorted(set(effective.member_lookbacks())),
        "normalization": effective.normalization,
        "seasonal_series": len(result.scaler.factors) if result.scaler.seasonal else None,
        "refit": result.extra.get("refit"),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "train_windows": result.train_windows,
        "val_windows": result.val_windows,
        "series_trained": result.series_trained,
        "train_seconds": round(result.seconds, 1),
        "metrics": result.metrics,
        "holdout": gate,
        "process": os.getpid(),
    }


def tune_step(settings: Settings, model_name: str, run_id: str, tuner: str | None = None, max_trials: int | None = None, verbose: int = 0) -> dict[str, Any]:
    """Run or resume the keras-tuner search and store its winner as a new tuning record."""
    from forecasting.registry import save_tuning_record
    from forecasting.tuning import search, search_directory

    config = settings.model(model_name)
    tuning = config.tuning or TuningConfig()
    tuner = tuner or tuning.tuner
    engine = open_engine(settings)
    data = prepare_data(engine, settings)
    data_key = f"{data.rows_read}:{max(index[-1] for index in data.arrays.timestamps.values())}"
    directory = search_directory(settings.storage_root, model_name, tuner, config, tuning, data_key)
    result = search(data.arrays, config, directory, tuner, max_trials, verbose=verbose)
    record = save_tuning_record(
        engine, model_name, run_id, tuner, result.hyperparameters, result.best_score, result.trials_completed, result.directory
    )
    return {
        "tuning_record": record,
        "tuner": tuner,
        "hyperparameters": result.hyperparameters,
        "best_val_loss": result.best_score,
        "trials_completed": result.trials_completed,
        "trials_run_now": result.trials_run_now,
        "directory": result.directory,
        "seconds": round(result.seconds, 1),
    }


def backtest_step(
    settings: Settings, model_name: str, run_id: str, windows: int, step: int | None = None, verbose: int = 0
) -> dict[str, Any]:
    """Rolling-origin backtest of the model's config (tuned hyperparameters applied) on the pulled
    data; the scores replace those of an identical earlier backtest in the `backtests` table."""
    from forecasting.backtesting import backtest, backtest_id, format_scores, score_rows
    from forecasting.database import backtests
    from forecasting.evaluation import season_length
    from forecasting.registry import champion_version, latest_tuning_record
    from forecasting.tuning import apply_hyperparameters

    config = settings.model(model_name)
    step = step or config.horizon
    engine = open_engine(settings)
    with engine.connect() as connection:
        record = latest_tuning_record(connection, model_name)
        champion = champion_version(connection, model_name)
    effective = apply_hyperparameters(config, record[1]) if record is not None else config
    data = prepare_data(engine, settings, calendar=effective.calendar)
    result = backtest(data.arrays, effective, data.frequency, season_length(data.frequency), windows, step, verbose=verbose)
    data_key = f"{data.rows_read}:{max(index[-1] for index in data.arrays.timestamps.values())}:{data.frequency}"
    identifier = backtest_id(model_name, effective, data_key, windows, step)
    created = utc_now()
    rows = [
        {**row, "backtest_id": identifier, "model_name": model_name, "model_version": champion, "run_id": run_id,
         "created_at": created, "windows": windows, "step_size": step}
        for row in score_rows(result.scores, effective.intervals)
    ]
    with engine.begin() as connection:
        connection.execute(sa.delete(backtests).where(backtests.c.backtest_id == identifier))
        connection.execute(sa.insert(backtests), rows)
    overall = result.scores[(result.scores["window"] == 0) & (result.scores["step"] == 0)].set_index("method")
    return {
        "backtest_id": identifier,
        "windows": windows,
        "step": step,
        "origins": [origin.isoformat() for origin in result.origins],
        "rows": len(rows),
        "smape": float(overall.loc["model", "smape"]),
        "mase": float(overall.loc["model", "mase"]),
        "seasonal_naive_smape": float(overall.loc["seasonal_naive", "smape"]),
        "naive_smape": float(overall.loc["naive", "smape"]),
        "coverage": {level: float(overall.loc["model", f"coverage_{level}"]) for level in effective.intervals},
        "train_seconds": round(sum(result.train_seconds), 1),
        "table": format_scores(result.scores, effective.intervals),
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
    data = prepare_data(engine, settings, frequency=loaded.manifest["frequency"], calendar=uses_calendar(loaded.manifest))
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
        "horizon": loaded.manifest["horizon"],
    }


def write_sql_step(settings: Settings, staged: str) -> int:
    """Upsert the staged forecasts into the `forecasts` table in one transaction."""
    checkpoint("before-sql-write")
    frame = pd.read_parquet(staged)
    engine = open_engine(settings)
    with engine.begin() as connection:
        table = sa.Table("forecasts", sa.MetaData(), autoload_with=connection)
        missing = [c for c in frame.columns if c not in table.c]
        if missing:
            raise ConfigError(f"forecasts table lacks columns {missing}; run `forecasting init`")
        written = upsert_frame(connection, table, frame, key=FORECAST_KEY)
    checkpoint("after-sql-write")
    return written


def write_parquet_step(settings: Settings, staged: str) -> int:
    """Upsert the staged forecasts into the hive-partitioned Parquet dataset."""
    from forecasting.store import write_forecasts

    return write_forecasts(settings.storage_root, pd.read_parquet(staged))


def finish_run(settings: Settings, run_id: str, summary: dict[str, Any], staged: str | None = None) -> None:
    """Mark the run succeeded with its counts, and remove the staged file."""
    engine = open_engine(settings)
    finished = utc_now()
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
                rows_pulled=(summary.get("pull") or {}).get("rows_pulled"),
                new_series=(summary.get("pull") or {}).get("new_series"),
                revised_values=(summary.get("pull") or {}).get("rows_revised"),
                quarantined=(summary.get("pull") or {}).get("quarantined"),
            )
        )
    if staged:
        Path(staged).unlink(missing_ok=True)


def fail_run(settings: Settings, run_id: str, error: BaseException) -> None:
    """Mark the run failed with the error (best effort: the database may be what failed)."""
    message = f"{type(error).__name__}: {error}"
    try:
        engine = open_engine(settings)
        finished = utc_now()
        with engine.begin() as connection:
            started = connection.execute(sa.select(runs.c.started_at).where(runs.c.run_id == run_id)).scalar_one()
            connection.execute(
                sa.update(runs)
                .where(runs.c.run_id == run_id)
                .values(status="failed", finished_at=finished, duration_seconds=(finished - started).total_seconds(), error=redact(message + "\n" + "".join(traceback.format_exception(error))[-4000:], settings.database.url))
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
    pulled: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run's summary: what it pulled, read, trained, wrote and where."""
    from forecasting.store import forecasts_root

    return {
        "run_id": run_id,
        "model": model_name,
        "mode": decision["mode"],
        "reason": decision["reason"],
        "pull": {k: v for k, v in (pulled or {}).items() if k != "columns"} or None,
        "series_read": forecast["series_read"],
        "rows_read": forecast["rows_read"],
        "series_forecast": forecast["series_forecast"],
        "series_skipped": forecast["series_skipped"],
        "skipped_examples": forecast["skipped_examples"],
        "frequency": forecast["frequency"],
        "horizon": forecast["horizon"],
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
    lines = [f"run {summary['run_id']} of model {summary['model']}: {summary['reason']}"]
    pull = summary.get("pull")
    if pull:
        since = "full refresh" if pull["full_refresh"] else f"newer than {pull['since']}"
        lines.append(
            f"  pulled {pull['rows_pulled']} rows ({since}): {pull['rows_new']} new, {pull['rows_revised']} revised, "
            f"{pull['new_series']} new series, {pull['quarantined']} quarantined, {pull['duplicates']} duplicates; watermark {pull['watermark']}"
        )
    lines += [
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
        members = trained.get("members", 1)
        ensemble = f" x {members} members (lookbacks {'/'.join(map(str, trained['member_lookbacks']))}, median)" if members > 1 else ""
        refit = f"; refit on {trained['refit']['windows']} windows" if trained.get("refit") else ""
        seasonal = trained.get("seasonal_series")
        deseasonalized = f", {seasonal} series deseasonalised" if seasonal is not None else ""
        lines.append(
            f"  model: {trained['cell'].upper()} [{layers}]{ensemble}, {trained.get('normalization', 'series')} scaling{deseasonalized}; "
            f"{trained['epochs_run']} epochs run, best epoch {trained['best_epoch']}, "
            f"best validation loss {trained['best_val_loss']:.4f} ({trained['train_windows']} training / {trained['val_windows']} validation windows"
            f"{refit}, {trained['train_seconds']} s)"
        )
        lines.append(
            f"  validation sMAPE: model {metrics['val_smape_model']:.2f}, naive {metrics['val_smape_naive']:.2f}, "
            f"seasonal naive {metrics['val_smape_seasonal_naive']:.2f}"
        )
        status = "champion" if trained["promoted"] else "candidate"
        parent = f", fine-tuned from v{trained['parent_version']}" if trained.get("parent_version") else ""
        tuned = f", tuning record {trained['tuning_record']}" if trained.get("tuning_record") else ""
        lines.append(f"  version registered: {trained['version']} ({status}{parent}{tuned}) in {summary['models']}/{trained['version']}")
        lines.append(f"  promotion gate on the latest {summary.get('horizon', 'horizon')} observations of each series: {trained['decision']}")
    else:
        lines.append(f"  model: champion version {summary['champion_version']} (no training in this run)")
    if trained and not trained["promoted"]:
        lines.append(f"  forecasts come from champion version {summary['champion_version']}")
    lines.append(f"  rows written: {summary['rows_sql']} to table forecasts in {summary['database']}")
    lines.append(f"  rows written: {summary['rows_parquet']} to Parquet dataset {summary['parquet']}")
    if summary.get("origins"):
        lines.append(f"  forecast origins: {', '.join(summary['origins'])}")
    return "\n".join(lines)


def summary_json(summary: dict[str, Any]) -> str:
    return json.dumps(summary, default=str, sort_keys=True)


def format_tuning(result: dict[str, Any]) -> str:
    """A tuning result as a few lines for a person."""
    hp = result["hyperparameters"]
    layers = ", ".join(f"{layer['units']} units dropout {layer['dropout']} {layer['activation']}" for layer in hp["layers"])
    return "\n".join(
        [
            f"{result['tuner']} search: {result['trials_run_now']} trials run now, {result['trials_completed']} completed in all "
            f"({result['seconds']} s), state in {result['directory']}",
            f"  best validation loss {result['best_val_loss']:.4f}: lookback {hp['lookback']}, learning rate {hp['learning_rate']:g}, layers [{layers}]",
            f"  stored as tuning record {result['tuning_record']}; the next retrain uses it",
        ]
    )


def scores_table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for a table of the run's scores: holdout (gate) and validation, model vs baselines."""
    trained = summary.get("training")
    if not trained:
        return []
    gate, metrics = trained["holdout"], trained["metrics"]
    rows = [
        {"set": "holdout", "metric": gate["holdout_metric"], "new_version": gate.get("holdout_score"),
         "champion": gate.get("champion_score"), "seasonal_naive": gate.get("baseline_score")},
        {"set": "validation", "metric": "smape", "new_version": metrics["val_smape_model"], "champion": None,
         "seasonal_naive": metrics["val_smape_seasonal_naive"]},
        {"set": "validation", "metric": "mae", "new_version": metrics["val_mae_model"], "champion": None,
         "seasonal_naive": metrics["val_mae_seasonal_naive"]},
    ]
    return [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()} for row in rows]
