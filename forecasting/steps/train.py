"""The training step: retrain or fine-tune, score both sides of the promotion gate, register the version."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from forecasting.config.settings import ModelConfig, Settings
from forecasting.errors import ConfigError, RunError
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.model.inputs import InputSpec
from forecasting.publishing.registry import (
    champion_version,
    latest_tuning_record,
    load_version,
    register_version,
)
from forecasting.runtime.phases import timed
from forecasting.steps.data import open_engine, prepare_data
from forecasting.steps.gate import GateFacts, apply_gate
from forecasting.steps.mode import TRAINING_MODES, changed_inputs


@dataclass(frozen=True)
class TrainSummary:
    """What `train_step` did: the version registered, whether it was promoted and why, its
    architecture, training figures, validation metrics and the gate's scores (`holdout`)."""

    version: int
    mode: str
    promoted: bool
    decision: str
    parent_version: int | None
    tuning_record: int | None
    cell: str
    layers: list[dict[str, Any]]
    lookback: int
    members: int
    member_lookbacks: list[int]
    normalization: str
    seasonal_series: int | None
    refit: dict[str, Any] | None
    epochs_run: int
    best_epoch: int
    best_val_loss: float
    train_windows: int
    val_windows: int
    series_trained: int
    train_seconds: float
    metrics: dict[str, float]
    holdout: dict[str, Any]
    process: int
    anomalies_left_out: int = 0  # flagged actuals read as missing (`ignore_anomalies`)
    blend_weights: dict[str, float] = field(default_factory=dict)  # each classical method's share in the forecasts (`model.blending`)
    series_too_short: int = 0  # series shorter than lookback + horizon: no window to train or validate on (new series)

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain data (the flow's result and the run summary's `training`)."""
        return asdict(self)


@timed("train")
def train_step(settings: Settings, model_name: str, run_id: str, mode: str = "retrain", verbose: int = 0) -> TrainSummary:
    """Retrain from scratch (with the newest tuning record, if any) or fine-tune the champion; score
    the new version, the champion and seasonal naive on the latest holdout; register the version and
    promote it only if it beats the champion by the configured margin (see `gate.apply_gate`)."""
    if mode not in TRAINING_MODES:
        raise ConfigError(f"--mode: {mode!r} does not train; use retrain or fine-tune")
    config = settings.model(model_name)
    engine = open_engine(settings)
    with engine.connect() as connection:
        champion_number = champion_version(connection, model_name)
        record = latest_tuning_record(connection, model_name)
    champion, held_out, unusable = None, None, None
    if champion_number is not None:
        try:
            champion = load_version(engine, model_name, champion_number)
            held_out = champion.holdout_forecaster()  # None: saved before holdout networks were kept
        except RunError as error:
            champion = None
            if mode == "fine-tune":
                raise
            # A retrain does not need the champion's network: gate against seasonal naive alone.
            unusable = f"champion v{champion_number} could not be loaded ({error})"
    tuning_record = None
    # With ignore_anomalies, the flagged actuals are missing in everything this training reads: its windows and the gate's holdout.
    left_out = model_name if config.ignore_anomalies else None
    if mode == "fine-tune":
        if champion is None:
            raise RunError(f"fine-tune: model {model_name!r} has no champion to continue from; run with --mode retrain first")
        effective = ModelConfig.model_validate(
            {**champion.config.model_dump(mode="json"), "fine_tune": config.fine_tune.model_dump(), "promotion": config.promotion.model_dump(),
             "intervals": config.intervals, "seed": config.seed}
        )
        tuning_record = champion.provenance.get("tuning_record")
        data = prepare_data(engine, settings, inputs=champion.inputs, anomalies_of=left_out)
        outcome = champion.fine_tune(data.arrays, effective, verbose=verbose)
    else:
        effective = config
        if record is not None:
            from forecasting.model.tuning import apply_hyperparameters  # keras-tuner takes seconds to import: only when needed; lazy: keras, keras_tuner, tensorflow

            tuning_record, hyperparameters = record
            effective = apply_hyperparameters(config, hyperparameters)
        requested = InputSpec.requested(settings.source, effective)
        data = prepare_data(engine, settings, inputs=requested, anomalies_of=left_out)
        outcome = RecurrentForecaster.fit(data.arrays, effective, requested.features, verbose=verbose, future_features=requested.future_features)

    metric = config.promotion.metric
    # Both sides are scored by their holdout networks: trained on nothing at or after the start of
    # the current holdout (a refit network has seen its own holdout, so it would score in sample).
    new_scores = outcome.holdout.score_holdout(data.arrays, metric)

    def champion_score() -> float:
        champion_arrays = data.arrays
        if (champion.calendar, champion.future_features, champion.holidays) != (
            outcome.forecaster.calendar, outcome.forecaster.future_features, outcome.forecaster.holidays
        ):
            # The champion reads other input columns: its own, on the grid of the data scored.
            champion_arrays = prepare_data(engine, settings, inputs=replace(champion.inputs, frequency=data.frequency), anomalies_of=left_out).arrays
        return (held_out or champion).score_holdout(champion_arrays, metric)["score"]

    gate = apply_gate(
        GateFacts(
            metric=metric, margin=config.promotion.margin, score=new_scores["score"], baseline=new_scores["baseline"],
            horizon=effective.horizon, champion=champion.version if champion is not None else None,
            champion_horizon=champion.horizon if champion is not None else None, unusable=unusable,
            scored_by_deployed=champion is not None and held_out is None, champion_score=champion_score,
            inputs_changed=changed_inputs(champion, settings.source) if champion is not None else None,
        )
    )
    report = outcome.report
    provenance = {
        **outcome.forecaster.provenance,
        "metrics": {**report.metrics, f"holdout_{metric}": gate.scores["holdout_score"], f"holdout_{metric}_seasonal_naive": gate.scores["baseline_score"]},
        "parent_version": champion.version if mode == "fine-tune" else None,
        "mode": mode,
        "tuning_record": tuning_record,
    }
    forecaster = replace(outcome.forecaster, provenance=provenance)
    trained = forecaster.config  # with the keys derived from the data (defaults.py)
    version = register_version(engine, settings.storage_root, model_name, forecaster, run_id, promote=gate.promote, gate=gate.scores)
    if champion_number is None and not gate.promote:
        raise RunError(
            f"model {model_name!r}: version {version} was registered as a candidate, not champion: its holdout {metric} is "
            f"{new_scores['score']} (not finite), and there is no champion to forecast with; check the data "
            "(values far beyond the series' usual size, the quarantine table), then retrain"
        )
    return TrainSummary(
        version=version,
        mode=mode,
        promoted=gate.promote,
        decision=gate.decision,
        parent_version=provenance["parent_version"],
        tuning_record=tuning_record,
        cell=trained.cell,
        layers=[layer.model_dump() for layer in trained.layers],
        lookback=trained.lookback,
        members=trained.ensemble.members,
        member_lookbacks=sorted(set(trained.member_lookbacks())),
        normalization=trained.normalization,
        seasonal_series=len(forecaster.scaler.factors) if forecaster.scaler.seasonal else None,
        refit=report.details.get("refit"),
        epochs_run=report.epochs_run,
        best_epoch=report.best_epoch,
        best_val_loss=report.best_val_loss,
        train_windows=report.train_windows,
        val_windows=report.val_windows,
        series_trained=report.series_trained,
        train_seconds=round(report.seconds, 1),
        metrics=report.metrics,
        holdout=gate.scores,
        process=os.getpid(),
        anomalies_left_out=data.anomalies_left_out,
        blend_weights=dict(forecaster.blend_weights),
        series_too_short=sum(1 for values in data.arrays.values.values() if len(values) < trained.lookback + trained.horizon),
    )
