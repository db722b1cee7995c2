"""keras-tuner search: all three tuners, tuning records used by retrains, resuming an interrupted search."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from forecasting import steps
from forecasting.config.settings import ModelConfig, SourceConfig
from forecasting.sources.database import create_db_engine
from forecasting.sources.loading import load_observations
from forecasting.sources.schema import migrate
from forecasting.model.tuning import apply_hyperparameters, search
from forecasting.preparation.windows import to_series_arrays
from tests.support.data import TINY_MODEL, pull, synthetic_frame

SPACE = {
    "layers": {"min": 1, "max": 2},
    "units": {"min": 4, "max": 12, "step": 4},
    "dropout": {"min": 0.0, "max": 0.2, "step": 0.1},
    "activation": ["tanh", "relu", "sigmoid"],
    "learning_rate": [0.01, 0.001],
    "lookback": [6, 12],
    "max_epochs": 3,
    "factor": 3,
    "max_trials": 2,
}


@pytest.mark.slow
@pytest.mark.parametrize("tuner", ["hyperband", "random", "bayesian"])
def test_each_tuner_runs_two_trials_and_retrain_uses_the_winner(tuner, settings_for):
    settings, _ = settings_for("sqlite:///tune.db", model={"tuning": {**SPACE, "tuner": tuner}})
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame())
    pull(settings)
    result = steps.tune_step(settings, "tiny", "tune-run")
    assert result.tuner == tuner and result.trials_completed == 2 and result.trials_run_now == 2
    hp = result.hyperparameters
    assert hp["lookback"] in (6, 12) and hp["learning_rate"] in (0.01, 0.001) and 1 <= len(hp["layers"]) <= 2
    assert all(layer["units"] in (4, 8, 12) and layer["activation"] in ("tanh", "relu", "sigmoid") for layer in hp["layers"])
    assert result.tuning_record == 1 and Path(result.directory).is_dir()
    trained = steps.train_step(settings, "tiny", "retrain-run", mode="retrain")
    assert trained.tuning_record == 1 and trained.lookback == hp["lookback"]
    assert [layer["units"] for layer in trained.layers] == [layer["units"] for layer in hp["layers"]]


def test_apply_hyperparameters_validates():
    config = ModelConfig(**TINY_MODEL)
    tuned = apply_hyperparameters(config, {"lookback": 6, "learning_rate": 0.5, "layers": [{"units": 3}], "ignored": 1})
    assert (tuned.lookback, tuned.learning_rate, tuned.layers[0].units, tuned.horizon) == (6, 0.5, 3, config.horizon)


RESUMABLE = """
import sys
import keras
from forecasting.config.settings import ModelConfig
from forecasting.model.tuning import search
from forecasting.preparation.windows import to_series_arrays
from tests.support.data import TINY_MODEL, pull, synthetic_frame
config = ModelConfig(**{**TINY_MODEL, "tuning": %s})
search(to_series_arrays(synthetic_frame(), []), config, __import__("pathlib").Path(sys.argv[1]), "random", 3)
"""


def _status(trial_file: Path) -> str | None:
    try:
        return json.loads(trial_file.read_text()).get("status")
    except json.JSONDecodeError:  # keras-tuner is writing it right now
        return None


def _oracle_moved_past(directory: Path, trial_file: Path) -> bool:
    try:
        trial_id = json.loads(trial_file.read_text())["trial_id"]
        ongoing = json.loads((directory / "oracle.json").read_text())["ongoing_trials"]
    except (OSError, json.JSONDecodeError, KeyError):  # not written yet, or being written
        return False
    return bool(ongoing) and trial_id not in ongoing.values()


@pytest.mark.slow
def test_interrupted_search_resumes_without_repeating_finished_trials(tmp_path):
    space = {**SPACE, "max_epochs": 40, "lookback": [12]}
    directory = tmp_path / "tuning" / "tiny" / "random-test"
    script = tmp_path / "search.py"
    script.write_text(RESUMABLE % json.dumps(space))
    root = Path(__file__).parents[2]
    process = subprocess.Popen(
        [sys.executable, str(script), str(directory)], cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    first_trial = None
    deadline = time.time() + 240
    try:
        while time.time() < deadline and process.poll() is None:
            finished = [p for p in directory.glob("trial_*/trial.json") if _status(p) == "COMPLETED"]
            # keras-tuner saves its oracle with the ended trial still listed as ongoing (and retries such a
            # trial after a restart) until the next trial starts: interrupt only once that is recorded.
            if finished and _oracle_moved_past(directory, finished[0]):
                first_trial = finished[0]
                break
            time.sleep(0.2)
    finally:
        still_running = process.poll() is None
        if still_running:
            os.killpg(process.pid, signal.SIGKILL)
        _, errors = process.communicate()
    assert first_trial is not None, f"the first trial never completed: {errors[-2000:]}"
    assert still_running, "the search finished before it could be interrupted"
    before = first_trial.read_text()
    config = ModelConfig(**{**TINY_MODEL, "tuning": space})
    result = search(to_series_arrays(synthetic_frame(), []), config, directory, "random", 3)
    assert result.trials_completed == 3
    assert result.trials_run_now <= 2
    assert first_trial.read_text() == before  # the finished trial was not run again


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_tune_model_flow_records_the_run_and_the_winner(settings_for):
    from flows.tune_model import tune_model

    import pandas as pd
    import sqlalchemy as sa

    settings, path = settings_for("sqlite:///tune-flow.db", model={"tuning": {**SPACE, "max_trials": 1}})
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame())
    result = tune_model(model="tiny", tuner="random", config=str(path))
    assert result["trials_completed"] == 1 and result["tuning_record"] == 1
    with engine.connect() as connection:
        runs = pd.read_sql(sa.text("SELECT mode, status, reason FROM runs"), connection)
        record = connection.execute(sa.text("SELECT tuner, trials, hyperparameters FROM tuning_records")).one()
    assert list(runs["mode"]) == ["tune"] and list(runs.status) == ["completed"]
    assert runs.reason.iloc[0] == "tune: random search, 1 trials run now, 1 in all"
    assert record[0] == "random" and record[1] == 1 and json.loads(record[2]) == result["hyperparameters"]


@pytest.mark.slow
def test_a_search_with_future_features_builds_and_fits_the_two_input_network(tmp_path):
    from forecasting.preparation.windows import build_arrays
    from forecasting.preparation.future_rows import split_future
    from forecasting.model.network import future_inputs
    from tests.support.data import promotion_frame

    observed, ahead = split_future(promotion_frame(n_series=4, length=36, ahead=6))
    arrays = build_arrays(observed, ahead, SourceConfig(future_features=["promo"], frequency="MS"), "MS")
    config = ModelConfig.model_validate({**TINY_MODEL, "tuning": {**SPACE, "tuner": "random", "max_trials": 1, "max_epochs": 1}})
    result = search(arrays, config, tmp_path / "search", "random", 1)
    assert result.trials_completed == 1
    tuned = apply_hyperparameters(config, result.hyperparameters)
    from forecasting.model.tuning import RecurrentHyperModel
    from forecasting.model.training import fit_scaler, split_for_training

    split = split_for_training(arrays, fit_scaler(arrays, tuned), tuned)
    import keras_tuner as kt

    network = RecurrentHyperModel(tuned, tuned.tuning, {tuned.lookback: split}).build(kt.HyperParameters())
    assert future_inputs(network) == 1
