"""The steps of one pipeline run, as plain functions that take settings and return small values.

`flows/` wraps each step in a Prefect task; the CLI and tests can call them directly too.
Heavy objects (frames, models) stay inside a step; steps hand each other ids, paths and counts.
"""

from __future__ import annotations

import json
import math
import os
import traceback
import uuid
from dataclasses import dataclass, field
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
    runs,
    table_columns,
    upsert_frame,
)
from forecasting.errors import ConfigError, RunError
from forecasting.faults import checkpoint
from forecasting.registry import utc_now
from forecasting.validation import fill_gaps, infer_frequency, regularize
from forecasting.windowing import SeriesArrays, to_series_arrays

Mode = Literal["auto", "retrain", "fine-tune", "forecast"]
MODES = ("auto", "retrain", "fine-tune", "forecast")
STAGING = "staging"


def open_engine(settings: Settings) -> Engine:
    """An engine for the configured database. Connection failures surface as SQLAlchemy errors,
    which the flow's database tasks retry; the CLI checks reachability up front (`connect_checked`)."""
    return create_db_engine(settings.database.url, settings.database.schema_name)


@dataclass
class PreparedData:
    arrays: SeriesArrays
    frequency: str
    series_read: int
    rows_read: int
    stale: dict[str, str] = field(default_factory=dict)  # series left out (drop_stale) -> why


def prepare_data(
    engine: Engine, settings: Settings, frequency: str | None = None, calendar: bool = False, drop_stale: bool = False
) -> PreparedData:
    """The pulled observations (the local history store), each series on a regular grid of the
    configured, recorded or inferred frequency, gaps handled per `source.gaps`. With `drop_stale`,
    series whose last observation is `source.stale_after` or more periods before the newest one
    are left out (and listed)."""
    from forecasting import history

    frame = history.read(history.history_root(settings.storage_root, settings.source.table))
    if frame.empty:
        raise RunError(
            f"no observations have been pulled from {settings.source.table!r} yet; load some with `forecasting load FILE` "
            "and run the pipeline (it pulls first)"
        )
    frequency = infer_frequency(frame, frequency or settings.source.frequency or _recorded_frequency(engine, settings))
    series_read, rows_read = int(frame["series_id"].nunique()), len(frame)
    stale = stale_series(frame, frequency, settings.source.stale_after) if drop_stale else {}
    if stale:
        frame = frame.loc[~frame["series_id"].isin(list(stale)).to_numpy()]
    regular, _ = regularize(frame, frequency)
    regular = fill_gaps(regular, settings.source.gaps)
    return PreparedData(
        arrays=to_series_arrays(regular, settings.source.features, frequency, calendar),
        frequency=frequency,
        series_read=series_read,
        rows_read=rows_read,
        stale=stale,
    )


def stale_series(frame: pd.DataFrame, frequency: str, periods: int) -> dict[str, str]:
    """Series whose last observation is `periods` or more periods before the newest of all (0: none)."""
    if periods <= 0 or frame.empty:
        return {}
    last = frame.groupby("series_id")["ts"].max()
    newest = last.max()
    cutoff = newest - periods * pd.tseries.frequencies.to_offset(frequency)
    old = last[last <= cutoff].sort_values()
    return {str(sid): f"last observation {ts}, {periods}+ periods (source.stale_after) before the newest, {newest}" for sid, ts in old.items()}


def _recorded_frequency(engine: Engine, settings: Settings) -> str | None:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(ingestion_state.c.frequency).where(ingestion_state.c.source == settings.source.table)
        ).scalar()


def source_lock(settings: Settings, engine: Engine) -> Any:
    """Pulls into one source's history store take turns (models sharing a source may run at once)."""
    from forecasting.locking import model_lock

    return model_lock(engine, settings.storage_root, f"source.{settings.source.table}", timeout=3600)


def pull_step(settings: Settings, run_id: str, full_refresh: bool = False, allow_series_drop: bool = False) -> dict[str, Any]:
    """Pull what changed in the source since the last committed pull into the history store, per
    series (see `forecasting.ingestion`); unusable rows go to `quarantine` with a reason. The pull
    state moves only in `commit_pull`, once the run's outputs are committed."""
    from forecasting import ingestion

    engine = open_engine(settings)
    with source_lock(settings, engine):
        return ingestion.pull(settings, engine, run_id, full_refresh, allow_series_drop)


def commit_pull(settings: Settings, run_id: str, pulled: dict[str, Any]) -> None:
    """Advance the source's pull state to what the run pulled (called after its outputs are committed)."""
    from forecasting import ingestion

    ingestion.commit(settings, open_engine(settings), run_id, pulled)


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
    """Remove staged files (forecasts `<run_id>.parquet`, pull state `<run_id>-pull-state.parquet`)
    of runs that are no longer running (a killed or failed run leaves them)."""
    staging = Path(settings.storage_root) / STAGING
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


def _newest_version(engine: Engine, model_name: str) -> dict[str, Any] | None:
    """The registry row of the most recently trained version (champion or not)."""
    from forecasting.database import model_versions

    with engine.connect() as connection:
        row = connection.execute(
            sa.select(model_versions).where(model_versions.c.model_name == model_name).order_by(model_versions.c.version.desc()).limit(1)
        ).mappings().first()
    return dict(row) if row else None


def _trained_on(newest: dict[str, Any], champion: int) -> str:
    """Which version's data watermark 'new' is measured from, for the reason text."""
    if newest["version"] == champion:
        return f"champion v{champion}"
    return f"{newest['status']} v{newest['version']}; champion v{champion}"


def decide_mode(settings: Settings, model_name: str, requested: str) -> dict[str, str]:
    """The mode to run and one sentence saying why.

    "New observations" are those newer than the data watermark of the newest version trained
    (champion or candidate), so a candidate that was not promoted is not trained again on the same data.
    `fine-tune` falls back to retrain without a champion and to forecast without new observations.
    `auto`: no champion -> retrain; champion older than `promotion.retrain_every_days` -> retrain;
    new observations -> fine-tune, unless the champion's error on the latest holdout grew more than
    `promotion.drift_tolerance` over its score at promotion (then retrain); none -> forecast only.
    """
    from forecasting.registry import champion_version, load_holdout, load_version, version_row

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
    newest = _newest_version(engine, model_name) or row
    trained_on = _trained_on(newest, champion)
    watermark = newest["data_watermark"]
    since = _format_watermark(str(watermark))
    if requested == "fine-tune":
        count, series = _newer_observations(engine, settings, watermark)
        if not count:
            return {"mode": "forecast", "reason": f"forecast: fine-tune requested, but nothing is newer than {since}, the data of {trained_on}"}
        return {"mode": "fine-tune", "reason": f"fine-tune: requested; {count} new observation{'s' if count != 1 else ''} for {series} series since {since} ({trained_on})"}
    age_days = (utc_now() - row["created_at"]).total_seconds() / 86400
    if config.promotion.retrain_every_days is not None and age_days > config.promotion.retrain_every_days:
        return {
            "mode": "retrain",
            "reason": f"retrain: champion v{champion} is {age_days:.1f} days old (retrain_every_days {config.promotion.retrain_every_days:g})",
        }
    newer = _newer_observations(engine, settings, watermark)
    if not newer[0]:
        return {"mode": "forecast", "reason": f"forecast: no observations newer than {since}, the data of {trained_on}"}
    new_data = f"{newer[0]} new observation{'s' if newer[0] != 1 else ''} for {newer[1]} series since {since}"
    if row["holdout_score"] is not None and row["holdout_metric"] == config.promotion.metric:
        try:
            loaded = load_version(engine, model_name, champion)
            # The network the promotion score came from (out of sample), where the artifact keeps it.
            network, scaler = load_holdout(engine, loaded) or (loaded.model, loaded.scaler)
        except RunError as error:
            return {"mode": "retrain", "reason": f"retrain: champion v{champion} could not be loaded ({error}); {new_data}"}
        data = prepare_data(engine, settings, frequency=loaded.manifest["frequency"], calendar=uses_calendar(loaded.manifest))
        recent = _holdout(
            network, scaler, data.arrays, loaded.manifest["lookback"], loaded.manifest["horizon"], data.frequency, row["holdout_metric"]
        )["score"]
        limit = row["holdout_score"] * (1 + config.promotion.drift_tolerance)
        if recent > limit:
            growth = recent / row["holdout_score"] - 1 if row["holdout_score"] else float("inf")
            return {
                "mode": "retrain",
                "reason": f"retrain: champion v{champion}'s recent {row['holdout_metric']} {recent:.3f} is {growth:.0%} worse than "
                f"{row['holdout_score']:.3f} at promotion (tolerance {config.promotion.drift_tolerance:.0%}); {new_data}",
            }
    return {"mode": "fine-tune", "reason": f"fine-tune: {new_data} ({trained_on})"}


def train_step(settings: Settings, model_name: str, run_id: str, mode: str = "retrain", verbose: int = 0) -> dict[str, Any]:
    """Retrain from scratch (with the newest tuning record, if any) or fine-tune the champion; score
    the new version, the champion and seasonal naive on the latest holdout; register the version and
    promote it only if it beats the champion by the configured margin."""
    from forecasting.evaluation import season_length
    from forecasting.registry import (
        build_manifest,
        champion_version,
        latest_tuning_record,
        load_holdout,
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
    champion, champion_holdout, unusable = None, None, None
    if champion_number is not None:
        try:
            champion = load_version(engine, model_name, champion_number)
            champion_holdout = load_holdout(engine, champion)
        except RunError as error:
            champion = None
            if mode == "fine-tune":
                raise
            # A retrain does not need the champion's network: gate against seasonal naive alone.
            unusable = f"champion v{champion_number} could not be loaded ({error})"
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
        _fine_tune_holdout_network(engine, parent, result, data, effective, verbose)
    else:
        effective = config
        if record is not None:
            tuning_record, hyperparameters = record
            effective = apply_hyperparameters(config, hyperparameters)
        data = prepare_data(engine, settings, calendar=effective.calendar)
        result = train(data.arrays, effective, season=season_length(data.frequency), verbose=verbose)

    metric = config.promotion.metric
    # Both sides are scored by their holdout networks: trained on nothing at or after the start of
    # the current holdout (a refit network has seen its own holdout, so it would score in sample).
    new_scores = _holdout(result.holdout_model or result.model, result.holdout_scaler or result.scaler, data.arrays, effective.lookback, effective.horizon, data.frequency, metric)
    gate: dict[str, Any] = {"holdout_metric": metric, "holdout_score": _finite(new_scores["score"]), "baseline_score": _finite(new_scores["baseline"])}
    if not math.isfinite(new_scores["score"]):
        promote = False
        decision = (
            f"kept as candidate: its {metric} on the holdout is {new_scores['score']} (not finite), so it cannot be compared"
            + (f"; forecasts stay with champion v{champion.version}" if champion is not None else "; the model has no champion")
        )
    elif unusable is not None:
        needed = new_scores["baseline"] * (1 - config.promotion.margin)
        promote = bool(new_scores["score"] < needed)
        decision = (
            f"{'promoted' if promote else 'kept as candidate'}: {unusable}; gated against seasonal naive only: {metric} "
            f"{new_scores['score']:.3f} {'beats' if promote else 'does not beat'} seasonal naive {new_scores['baseline']:.3f} "
            f"(margin {config.promotion.margin:.0%})"
        )
    elif champion is None:
        promote, decision = True, f"promoted: first version ({metric} {new_scores['score']:.3f}, seasonal naive {new_scores['baseline']:.3f})"
    elif champion.manifest["horizon"] != effective.horizon:
        promote, decision = True, f"promoted: champion v{champion.version} forecasts a different horizon ({champion.manifest['horizon']})"
    else:
        champion_arrays = data.arrays
        if uses_calendar(champion.manifest) != effective.calendar:  # the champion reads other input columns
            champion_arrays = prepare_data(engine, settings, frequency=data.frequency, calendar=uses_calendar(champion.manifest)).arrays
        held_out = champion_holdout
        scored_by = "" if held_out is not None else " (scored by its deployed network: its artifact predates holdout networks)"
        champion_model, champion_scaler = held_out or (champion.model, champion.scaler)
        old = _holdout(champion_model, champion_scaler, champion_arrays, champion.manifest["lookback"], champion.manifest["horizon"], data.frequency, metric)
        gate["champion_score"] = _finite(old["score"])
        if not math.isfinite(old["score"]):
            promote = True
            decision = (
                f"promoted: {metric} {new_scores['score']:.3f}; champion v{champion.version}'s {metric} on the holdout is "
                f"{old['score']} (not finite){scored_by}"
            )
        else:
            needed = old["score"] * (1 - config.promotion.margin)
            promote = bool(new_scores["score"] < needed)
            verdict = "promoted" if promote else "kept as candidate"
            relation = "beats" if promote else "does not beat"
            decision = (
                f"{verdict}: {metric} {new_scores['score']:.3f} {relation} champion v{champion.version}'s {old['score']:.3f}{scored_by}"
                f" (margin {config.promotion.margin:.0%}; seasonal naive {new_scores['baseline']:.3f})"
            )
    gate["decision"] = decision
    manifest = build_manifest(
        config=effective,
        scaler=result.scaler,
        features=settings.source.features,
        frequency=data.frequency,
        interval_halfwidths=result.interval_halfwidths,
        metrics={**result.metrics, f"holdout_{metric}": gate["holdout_score"], f"holdout_{metric}_seasonal_naive": gate["baseline_score"]},
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
    holdout = (result.holdout_model or result.model, result.holdout_scaler if result.holdout_scaler is not result.scaler else None)
    version = register_version(engine, settings.storage_root, model_name, result.model, manifest, run_id, promote=promote, gate=gate, holdout=holdout)
    if champion_number is None and not promote:
        raise RunError(
            f"model {model_name!r}: version {version} was registered as a candidate, not champion: its holdout {metric} is "
            f"{new_scores['score']} (not finite), and there is no champion to forecast with; check the data "
            "(values far beyond the series' usual size, the quarantine table), then retrain"
        )
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


def _finite(value: float) -> float | None:
    """A score to store: None instead of inf or NaN (the decision says why)."""
    return float(value) if math.isfinite(value) else None


def _fine_tune_holdout_network(engine: Engine, parent: Any, result: Any, data: PreparedData, config: ModelConfig, verbose: int) -> None:
    """Fine-tune the parent's holdout network on the same windows, so that the new version also has a
    network that never saw the current holdout (the parent's deployed network may have, after a refit).
    Its validation scores and interval widths are out of sample, so the result takes those too."""
    from forecasting.evaluation import season_length
    from forecasting.registry import load_holdout
    from forecasting.training import fine_tune

    entry = parent.manifest.get("holdout")
    if entry is None or entry["model"] == "model.keras":  # no holdout network kept, or the deployed one is it
        return
    held_out = load_holdout(engine, parent)
    honest = fine_tune(
        data.arrays, config, held_out[0], held_out[1], parent.manifest.get("series_train_end", {}),
        season=season_length(data.frequency), verbose=verbose,
    )
    result.holdout_model, result.holdout_scaler = honest.model, honest.scaler
    result.metrics, result.interval_halfwidths = honest.metrics, honest.interval_halfwidths
    result.extra["holdout_network"] = {"epochs_run": honest.epochs_run, "best_epoch": honest.best_epoch}


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
    data = prepare_data(engine, settings, frequency=loaded.manifest["frequency"], calendar=uses_calendar(loaded.manifest), drop_stale=True)
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
        "series_constant": len(result.constant),
        "constant_examples": dict(list(result.constant.items())[:5]),
        "series_stale": len(data.stale),
        "stale_examples": dict(list(data.stale.items())[:5]),
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


def repair_parquet_step(settings: Settings, model_name: str) -> dict[str, Any]:
    """Rebuild from SQL every Parquet partition of the model that is missing, unreadable or holds
    a different number of rows than SQL (see forecasting.repair); returns what was fixed."""
    from forecasting.repair import repair_parquet

    report = repair_parquet(open_engine(settings), settings.storage_root, model_name, settings.model(model_name).intervals)
    return report.as_dict()


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
    repaired: dict[str, Any] | None = None,
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
        "series_constant": forecast.get("series_constant", 0),
        "constant_examples": forecast.get("constant_examples", {}),
        "series_stale": forecast.get("series_stale", 0),
        "stale_examples": forecast.get("stale_examples", {}),
        "frequency": forecast["frequency"],
        "horizon": forecast["horizon"],
        "origins": forecast["origins"],
        "champion_version": forecast["version"],
        "produced_version": trained["version"] if trained else None,
        "training": trained,
        "rows_sql": rows_sql,
        "rows_parquet": rows_parquet,
        "parquet_repair": repaired,
        "database": masked_url(settings.database.url),
        "parquet": str(forecasts_root(settings.storage_root)),
        "models": str(Path(settings.storage_root) / "models" / model_name),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a few lines for a person."""
    lines = [f"run {summary['run_id']} of model {summary['model']}: {summary['reason']}"]
    pull = summary.get("pull")
    if pull:
        if pull["full_refresh"]:
            since = f"full refresh: {pull['refresh_reason']}" if pull.get("refresh_reason") else "full refresh"
        elif "series_read_whole" in pull:
            since = f"{pull['series_read_whole']} series read whole, {pull['series_read_window']} re-read recent, {pull['series_unchanged']} unchanged"
        else:
            since = f"newer than {pull['since']}"
        lines.append(
            f"  pulled {pull['rows_pulled']} rows ({since}): {pull['rows_new']} new, {pull['rows_revised']} revised, "
            f"{pull.get('rows_removed', 0)} removed, {pull['new_series']} new series, {pull.get('series_removed', 0)} series removed, "
            f"{pull['quarantined']} quarantined, {pull['duplicates']} duplicates; watermark {pull['watermark']}"
        )
        if pull.get("series_set_aside"):
            lines.append(f"  series set aside (rows quarantined, history kept): {pull['series_set_aside']}")
            for series_id, reason in pull.get("set_aside_examples", {}).items():
                lines.append(f"    set aside {series_id}: {reason}")
    lines += [
        f"  series read: {summary['series_read']} ({summary['rows_read']} observations, frequency {summary['frequency']}); "
        f"forecast: {summary['series_forecast']}; skipped: {summary['series_skipped']}",
    ]
    for series_id, reason in summary.get("skipped_examples", {}).items():
        lines.append(f"    skipped {series_id}: {reason}")
    if summary.get("series_constant"):
        lines.append(
            f"  constant series: {summary['series_constant']} forecast as their last value with zero-width intervals, not by the network"
        )
        for series_id, what in summary.get("constant_examples", {}).items():
            lines.append(f"    constant {series_id}: {what}")
    if summary.get("series_stale"):
        lines.append(f"  stale series (not forecast): {summary['series_stale']}")
        for series_id, reason in summary.get("stale_examples", {}).items():
            lines.append(f"    stale {series_id}: {reason}")
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
    repaired = summary.get("parquet_repair") or {}
    if repaired.get("fixed"):
        listed = ", ".join(f"{day} {problem}" for day, problem in list(repaired["fixed"].items())[:5])
        more = f", and {len(repaired['fixed']) - 5} more" if len(repaired["fixed"]) > 5 else ""
        lines.append(
            f"  parquet repaired: {repaired['origins_repaired']} origins rebuilt from table forecasts "
            f"({repaired['rows_rebuilt']} rows: {listed}{more})"
        )
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
