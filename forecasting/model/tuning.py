"""Hyperparameter search with keras-tuner over the `[models.<name>.tuning]` space.

The space mirrors the seed article: the number of stacked layers, and per layer its units
(`hp.Int` min/max/step), dropout (`hp.Float` with step) and activation (`hp.Choice`); plus the
learning rate and the lookback. Trials train on the same time-ordered split as retraining
(validation = windows reaching into each series' last `horizon` rows), with early stopping.
Tuner state lives under `<storage>/tuning/<model>/`, so an interrupted search resumes. On an object
store, keras-tuner works in a local folder that is downloaded from the store before the search and
uploaded after each trial, so a search interrupted on one machine resumes on another.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt

from forecasting.config.model_settings import EnsembleConfig, ModelConfig, TuningConfig
from forecasting.errors import ConfigError, RunError
from forecasting.model.defaults import resolve_for
from forecasting.model.network import EpochProgress, build_model, member_targets
from forecasting.runtime.faults import checkpoint
from forecasting.runtime.progress import keras_verbose
from forecasting.model.training import fit_scaler, future_width, set_determinism, split_for_training
from forecasting.model.deadline import Deadline, TrainingTimeout
from forecasting.preparation.windows import SeriesArrays, WindowSplit
from forecasting.storage.locations import download_folder, is_remote, location

TUNERS = {"hyperband": kt.Hyperband, "random": kt.RandomSearch, "bayesian": kt.BayesianOptimization}


class TuningTimeout(TrainingTimeout, kt.errors.FatalError):
    """The search ran past `training_timeout_minutes` (a FatalError, so keras-tuner stops instead of failing a trial)."""


def apply_hyperparameters(config: ModelConfig, hyperparameters: dict[str, Any] | None) -> ModelConfig:
    """The model config with tuned `layers`, `learning_rate` and `lookback` put in place."""
    if not hyperparameters:
        return config
    tuned = {key: value for key, value in hyperparameters.items() if key in ("layers", "learning_rate", "lookback")}
    merged = {**config.model_dump(), **tuned}
    if merged["ensemble"]["lookbacks"]:
        # Ensemble members may not read further back than the tuned lookback.
        merged["ensemble"]["lookbacks"] = [min(value, merged["lookback"]) for value in merged["ensemble"]["lookbacks"]]
    return ModelConfig.model_validate(merged)


def hyperparameters_from(hp: kt.HyperParameters) -> dict[str, Any]:
    """A trial's values in the shape `apply_hyperparameters` takes (unused deeper layers dropped)."""
    count = hp.get("layers")
    return {
        "lookback": int(hp.get("lookback")),
        "learning_rate": float(hp.get("learning_rate")),
        "layers": [
            {"units": int(hp.get(f"units_{i}")), "dropout": round(float(hp.get(f"dropout_{i}")), 6), "activation": hp.get(f"activation_{i}")}
            for i in range(count)
        ],
    }


class RecurrentHyperModel(kt.HyperModel):
    """Builds the seed article's stacked network from a trial's hyperparameters and fits it on the
    precomputed time-ordered windows for the trial's lookback."""

    def __init__(self, config: ModelConfig, tuning: TuningConfig, splits: dict[int, WindowSplit]) -> None:
        super().__init__(name=f"{config.cell}_forecaster")
        self.config, self.tuning, self.splits = config, tuning, splits

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        space = self.tuning
        hp.Choice("lookback", sorted(self.splits))
        hp.Choice("learning_rate", space.learning_rate)
        count = hp.Int("layers", space.layers.min, space.layers.max, step=space.layers.step)
        for i in range(count):
            hp.Int(f"units_{i}", space.units.min, space.units.max, step=space.units.step)
            hp.Float(f"dropout_{i}", space.dropout.min, space.dropout.max, step=space.dropout.step)
            hp.Choice(f"activation_{i}", space.activation)
        config = apply_hyperparameters(self.config, hyperparameters_from(hp))
        split = self.splits[config.lookback]
        return build_model(config, n_inputs=split.x_train.shape[2], n_future=future_width(split))

    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        split = self.splits[int(hp.get("lookback"))]
        return model.fit(
            split.train_inputs(),
            member_targets(model, split.y_train),
            validation_data=(split.val_inputs(), member_targets(model, split.y_val)),
            batch_size=self.config.batch_size,
            shuffle=True,
            **kwargs,
        )


@dataclass
class SearchResult:
    hyperparameters: dict[str, Any]
    best_score: float
    trials_completed: int
    trials_run_now: int
    directory: str
    seconds: float


def search_directory(storage_root: Path, model_name: str, tuner: str, config: ModelConfig, tuning: TuningConfig, data_key: str) -> Path:
    """`<storage>/tuning/<model>/<tuner>-<hash>`: the same search (space, model, data) resumes in the same place."""
    fingerprint = json.dumps(
        {"tuner": tuner, "tuning": tuning.model_dump(mode="json"), "model": config.model_dump(mode="json", exclude={"schedule", "tuning"}), "data": data_key},
        sort_keys=True,
    )
    return location(storage_root) / "tuning" / model_name / f"{tuner}-{hashlib.sha256(fingerprint.encode()).hexdigest()[:12]}"


def search(
    arrays: SeriesArrays,
    config: ModelConfig,
    directory: Path,
    tuner_name: str | None = None,
    max_trials: int | None = None,
    verbose: int = 0,
    after_trial: Callable[[], None] | None = None,
) -> SearchResult:
    """Run (or resume) the search; returns the best hyperparameters and how many trials ran.
    `after_trial`: called once each trial's state is saved (see `synced_search`)."""
    if is_remote(directory):
        return synced_search(arrays, config, directory, tuner_name, max_trials, verbose)
    tuning = config.tuning or TuningConfig()
    tuner_name = tuner_name or tuning.tuner
    if tuner_name not in TUNERS:
        raise ConfigError(f"--tuner: {tuner_name!r} is not one of {', '.join(TUNERS)}")
    max_trials = max_trials or tuning.max_trials
    started = time.perf_counter()
    splits: dict[int, WindowSplit] = {}
    # The search tunes one network; an ensemble then repeats the winner over seeds and lookbacks.
    config = resolve_for(config.model_copy(update={"ensemble": EnsembleConfig()}), arrays)
    scaler = fit_scaler(arrays, config, config.season)
    for lookback in tuning.lookback or [config.lookback]:
        splits[lookback] = split_for_training(arrays, scaler, config.model_copy(update={"lookback": lookback}))
    set_determinism(config.seed, config.deterministic)
    hypermodel = RecurrentHyperModel(config, tuning, splits)
    common = dict(objective="val_loss", seed=config.seed, directory=str(directory.parent), project_name=directory.name, overwrite=False)
    if tuner_name == "hyperband":
        tuner = kt.Hyperband(
            hypermodel, max_epochs=tuning.max_epochs, factor=tuning.factor, hyperband_iterations=tuning.hyperband_iterations, **common
        )
        tuner.oracle.max_trials = max_trials
    else:
        tuner = TUNERS[tuner_name](hypermodel, max_trials=max_trials, **common)
    ended = tuner.on_trial_end

    def on_trial_end(trial: Any) -> None:
        ended(trial)
        if after_trial is not None:
            after_trial()
        checkpoint("tuning-trial")

    tuner.on_trial_end = on_trial_end
    before = _completed(tuner)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)
    # The whole search shares one deadline (keras-tuner copies the callback into each trial, clock started).
    deadline = Deadline(config.training_timeout_minutes, "tuning", TuningTimeout).start()
    killable = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: checkpoint("training"))
    callbacks = [stopper, deadline, EpochProgress("tuning trial epochs"), killable]
    tuner.search(epochs=tuning.max_epochs, callbacks=callbacks, verbose=keras_verbose(verbose))
    completed = _completed(tuner)
    best = [trial for trial in tuner.oracle.get_best_trials(1) if trial.score is not None]
    if not best:
        raise RunError(f"{tuner_name} search in {directory}: no trial completed with a validation loss (see the log for trial errors)")
    best_trial = best[0]
    return SearchResult(
        hyperparameters=hyperparameters_from(best_trial.hyperparameters),
        best_score=float(best_trial.score),
        trials_completed=completed,
        trials_run_now=completed - before,
        directory=str(directory),
        seconds=time.perf_counter() - started,
    )


def synced_search(
    arrays: SeriesArrays, config: ModelConfig, directory: Path, tuner_name: str | None, max_trials: int | None, verbose: int = 0
) -> SearchResult:
    """`search` in a local folder synced with `directory` on an object store: downloaded first, the
    files that changed uploaded after each trial and at the end."""
    with tempfile.TemporaryDirectory(prefix="forecasting-tuning-") as scratch:
        local = Path(scratch) / directory.name
        download_folder(directory, local)
        sent: dict[Path, tuple[int, int]] = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in local.rglob("*") if p.is_file()}

        def upload() -> None:
            for path in sorted(p for p in local.rglob("*") if p.is_file()):
                stamp = (path.stat().st_mtime_ns, path.stat().st_size)
                if sent.get(path) != stamp:
                    target = directory.joinpath(*path.relative_to(local).parts)
                    target.fs.put_file(str(path), target.path)
                    sent[path] = stamp

        result = search(arrays, config, local, tuner_name, max_trials, verbose, after_trial=upload)
        upload()
    return replace(result, directory=str(directory))


def _completed(tuner: kt.Tuner) -> int:
    return sum(1 for trial in tuner.oracle.trials.values() if trial.status == "COMPLETED")
