"""The tuning step: run or resume the keras-tuner search and store its winner as a tuning record."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from forecasting.config.model_settings import TuningConfig
from forecasting.config.settings import Settings
from forecasting.publishing.registry import save_tuning_record
from forecasting.model.inputs import InputSpec
from forecasting.steps.data import open_engine, prepare_data


@dataclass(frozen=True)
class TuneSummary:
    """What `tune_step` did: the tuning record stored, the tuner, the winning hyperparameters and
    their validation loss, trials run now and in all, the search state's folder and the time taken."""

    tuning_record: int
    tuner: str
    hyperparameters: dict[str, Any]
    best_val_loss: float
    trials_completed: int
    trials_run_now: int
    directory: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain data (the tune-model flow's result)."""
        return asdict(self)

    def reason(self) -> str:
        """The sentence the run's `runs` row keeps."""
        return f"tune: {self.tuner} search, {self.trials_run_now} trials run now, {self.trials_completed} in all"


def tune_step(
    settings: Settings, model_name: str, run_id: str, tuner: str | None = None, max_trials: int | None = None, verbose: int = 0
) -> TuneSummary:
    """Run or resume the keras-tuner search (`tuner` and `max_trials` default to the config's) on the
    pulled data and store its winner as the model's next tuning record."""
    from forecasting.model.tuning import (  # lazy: keras, keras_tuner, tensorflow
        search,
        search_directory,
    )

    config = settings.model(model_name)
    tuning = config.tuning or TuningConfig()
    tuner = tuner or tuning.tuner
    engine = open_engine(settings)
    data = prepare_data(engine, settings, inputs=InputSpec.requested(settings.source, config))
    data_key = f"{data.rows_read}:{max(index[-1] for index in data.arrays.timestamps.values())}"
    directory = search_directory(settings.storage_root, model_name, tuner, config, tuning, data_key)
    result = search(data.arrays, config, directory, tuner, max_trials, verbose=verbose)
    record = save_tuning_record(
        engine, model_name, run_id, tuner, result.hyperparameters, result.best_score, result.trials_completed, result.directory
    )
    return TuneSummary(
        tuning_record=record,
        tuner=tuner,
        hyperparameters=result.hyperparameters,
        best_val_loss=result.best_score,
        trials_completed=result.trials_completed,
        trials_run_now=result.trials_run_now,
        directory=result.directory,
        seconds=round(result.seconds, 1),
    )
