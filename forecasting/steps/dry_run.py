"""`forecasting check`: a dry run of what a run needs, one `Check` at a time, each ok or a problem.

First what no model changes (`setup_checks`: the database, the job's tables, the source's columns and
types, its rows and frequency, the storage, the Prefect API), then per model: the series' lengths
against its lookback and horizon (how many would take no part in training, or are forecast from a padded window), the
settings it would train with (the derived defaults, `model.defaults`, and the newest tuning record,
as a retrain uses them) and how long training would take (`model.calibration`: the real network
timed on a few batches of the real windows). Nothing is written to the job's tables or storage.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from forecasting.config.model_settings import ModelConfig
from forecasting.config.settings import Settings
from forecasting.errors import ForecastingError
from forecasting.model.defaults import DERIVED_KEYS
from forecasting.model.inputs import InputSpec
from forecasting.publishing.registry import latest_tuning_record
from forecasting.runtime import console
from forecasting.runtime.progress import duration
from forecasting.steps.setup_checks import (
    Check,
    SourceRows,
    check_database,
    check_job_tables,
    check_prefect,
    check_rows,
    check_source_columns,
    check_storage_places,
    failed,
)

LONG_TRAINING_SECONDS = 600.0  # above this, the estimate says what shortens a training


def dry_run(settings: Settings, model_names: list[str], estimate: bool = True) -> Iterator[Check]:
    """Every check in turn; those that need an earlier one's result are left out when it failed.
    `estimate`: calibrate each model's training time (imports TensorFlow)."""
    engine, check = check_database(settings)
    yield check
    rows = None
    if engine is not None:
        yield check_job_tables(engine, settings, model_names)
        check = check_source_columns(engine, settings)
        yield check
        if not check.problem:
            rows, check = check_rows(engine, settings)
            yield check
    yield from check_storage_places(settings)
    yield check_prefect()
    if rows is None or engine is None:
        return
    for name in model_names:
        try:
            yield from check_model(settings, name, rows, engine, estimate)
        except ForecastingError as error:
            yield failed(f"model {name}", error, url=settings.database.url)


def exit_code(checks: list[Check]) -> int:
    """0 when nothing is a problem; else 2 when any problem is the config's or the data's, else 1."""
    return max((check.exit_code for check in checks if check.problem), default=0)


def _tuned(engine: Engine, name: str, config: ModelConfig) -> tuple[ModelConfig, int | None]:
    """The config a retrain would use: with the newest tuning record's hyperparameters, when there is one."""
    try:
        with engine.connect() as connection:
            record = latest_tuning_record(connection, name)
    except sa.exc.SQLAlchemyError:  # no job tables yet: said by the tables check
        return config, None
    if record is None:
        return config, None
    from forecasting.model.tuning import apply_hyperparameters  # keras-tuner takes seconds to import; lazy: keras_tuner

    return apply_hyperparameters(config, record[1]), record[0]


def check_model(settings: Settings, name: str, rows: SourceRows, engine: Engine, estimate: bool = True) -> Iterator[Check]:
    """The series' lengths for model `name`, the settings it would train with and (with `estimate`) how long."""
    label = f"model {name}"
    effective, record = _tuned(engine, name, settings.model(name))
    requested = InputSpec.requested(settings.source, effective)
    arrays = requested.prepare(rows.observed, rows.ahead, settings.source, rows.frequency)
    resolved, spec = InputSpec.resolve(effective, arrays, requested.features, requested.future_features)
    lengths = np.array([len(values) for values in arrays.values.values()], dtype="int64")
    check, trainable = _series(label, lengths, resolved, rows.frequency)
    yield check
    yield Check(label, _settings_text(effective, resolved, record, lengths))
    if trainable and estimate:
        yield _estimate(label, name, arrays, resolved, spec.season)


def _series(label: str, lengths: np.ndarray, config: ModelConfig, frequency: str) -> tuple[Check, bool]:
    """The series' lengths against lookback and horizon; a problem when no training could be done."""
    lookback, horizon = int(config.lookback), config.horizon
    windows = np.maximum(lengths - lookback - horizon + 1, 0)
    validation = int(np.minimum(windows, horizon).sum())
    training = int(np.maximum(lengths - lookback - 2 * horizon + 1, 0).sum())
    longest = int(lengths.max()) if len(lengths) else 0
    if not validation or not training:
        needed = lookback + 2 * horizon - 1
        text = (
            f"series too short: training needs a series with more than lookback {lookback} + 2 x horizon {horizon} - 1 = {needed} "
            f"observations (windows to train on before each series' last {horizon}, which validate), and the longest of the "
            f"{len(lengths):,} series has {longest}; load more history, or lower {label.replace('model ', 'models.')}.horizon or lookback"
        )
        return Check(label, text, problem=True, exit_code=2), False
    spread = f"{longest:,} periods long each" if lengths.min() == longest else (
        f"{int(lengths.min()):,} to {longest:,} periods long (median {int(np.median(lengths)):,})"
    )
    text = f"{len(lengths):,} series on the {frequency} grid, {spread}; "
    short, unforecast = int((lengths < lookback + horizon).sum()), int((lengths < lookback).sum())
    if short:
        text += f"{short:,} shorter than lookback {lookback} + horizon {horizon} = {lookback + horizon} take no part in training"
        text += f", {unforecast:,} of them shorter than lookback {lookback} forecast from a padded window (short_history)" if unforecast else ""
    else:
        text += f"all long enough for lookback {lookback} + horizon {horizon} = {lookback + horizon}"
    return Check(label, text + f"; {training:,} training and {validation:,} validation windows"), True


def _settings_text(asked: ModelConfig, resolved: ModelConfig, record: int | None, lengths: np.ndarray) -> str:
    """What the model would train with, each key the data decides marked `derived`."""
    def value(key: str) -> str:
        return f"{key} {getattr(resolved, key)}" + (" (derived)" if key in DERIVED_KEYS and getattr(asked, key) is None else "")

    layers = "+".join(str(layer.units) for layer in resolved.layers)
    parts = [
        f"trains {resolved.cell} {layers} units", value("lookback"), f"horizon {resolved.horizon}", value("season"), value("batch_size"),
        f"epochs {resolved.epochs}", value("min_epochs"), f"patience {resolved.patience}", f"learning_rate {resolved.learning_rate:g}",
        f"loss {resolved.loss}", "refit" if resolved.refit else "no refit",
    ]  # fmt: skip
    if resolved.ensemble.members > 1:
        parts.append(f"{resolved.ensemble.members} ensemble members")
    if record is not None:
        parts.append(f"tuning record {record} (its layers, learning_rate and lookback)")
    return ", ".join(parts)


def _estimate(label: str, name: str, arrays: Any, config: ModelConfig, season: int) -> Check:
    """How long training would take: likely (early stopping), at most (all epochs), from a calibration."""
    console.import_tensorflow()  # its start-up lines go nowhere unless verbose
    from forecasting.model.calibration import calibrate  # lazy: tensorflow, keras

    estimate = calibrate(arrays, config, season)
    likely, ceiling = estimate.likely_seconds, estimate.ceiling_seconds
    refit = ", and the refit as many" if estimate.refit else ""
    if (estimate.likely_run, estimate.likely_kept) == (estimate.epochs, estimate.epochs):  # early stopping cannot end it sooner
        text = f"training takes about {duration(likely)} (all {estimate.epochs} epochs{refit})"
    else:
        refit = f", then the refit trains {estimate.likely_kept} epochs on all windows" if estimate.refit else ""
        text = (
            f"training takes about {duration(likely)} (early stopping likely ends it near epoch {estimate.likely_run} of {estimate.epochs}"
            f"{refit}), at most {duration(ceiling)} (all {estimate.epochs} epochs)"
        )
    text += (
        f"; {estimate.batches:,} batches of {estimate.batch_size} an epoch at {1000 * estimate.batch_seconds:.1f} ms each, "
        f"timed on {estimate.timed_batches} batches in {duration(estimate.calibration_seconds)}"
    )
    timeout = config.training_timeout_minutes * 60
    if likely > timeout:
        return Check(label, text + (
            f"; longer than models.{name}.training_timeout_minutes = {config.training_timeout_minutes:g}, which would stop it and fail the run: "
            "raise it, or lower epochs or patience, raise batch_size, or use fewer or smaller layers"
        ), problem=True, exit_code=2)  # fmt: skip
    if ceiling > timeout:
        text += f"; models.{name}.training_timeout_minutes = {config.training_timeout_minutes:g} stops it at {duration(timeout)} if early stopping does not"
    if likely > LONG_TRAINING_SECONDS:
        text += "; shorter with fewer epochs or a lower patience, a larger batch_size, fewer or smaller layers"
    return Check(label, text)
