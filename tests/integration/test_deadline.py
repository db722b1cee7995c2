"""The training time limit (`training_timeout_minutes`) stops training between batches and fails the run."""

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting.model import deadline, training
from forecasting.config.settings import ModelConfig, SourceConfig
from forecasting.sources.database import create_db_engine
from forecasting.errors import RunError
from forecasting.sources.loading import load_observations
from forecasting.model.network import build_model
from forecasting.sources.schema import migrate
from forecasting.model.training import fine_tune, train
from forecasting.model.deadline import Deadline, TrainingTimeout
from forecasting.model.tuning import search
from forecasting.preparation.windows import to_series_arrays
from tests.support.data import TINY_MODEL, synthetic_frame

MESSAGE = r"training stopped: it ran longer than the limit of .* minutes \(models\.<name>\.training_timeout_minutes\)"


class FakeClock:
    """A clock the test moves by hand, so nothing depends on how fast this machine is."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(deadline, "monotonic", fake)
    return fake


def test_the_callback_stops_fit_after_the_first_batch_past_the_deadline(clock):
    import keras

    config = ModelConfig(**TINY_MODEL)
    model = build_model(config, n_inputs=1)
    x = np.zeros((64, config.lookback, 1), dtype="float32")
    y = np.zeros((64, config.horizon), dtype="float32")
    seen = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))
    deadline = Deadline(1.0).start()
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[counter, deadline], verbose=0)
    assert len(seen) == 8  # within the limit: all 8 batches
    seen.clear()
    clock.now += 61  # past the 1-minute limit
    with pytest.raises(TrainingTimeout, match=MESSAGE):
        model.fit(x, y, batch_size=8, epochs=3, callbacks=[counter, deadline], verbose=0)
    assert seen == [0]
    assert isinstance(TrainingTimeout("x"), RunError)


@pytest.mark.slow
def test_the_limit_covers_the_refit_and_fine_tuning(clock, monkeypatch):
    config = ModelConfig(**{**TINY_MODEL, "season": 12, "training_timeout_minutes": 5, "refit": True, "ensemble": {"members": 2}})
    arrays = to_series_arrays(synthetic_frame(), [], "MS")
    built = []

    def build_and_maybe_age(*args, **kwargs):
        built.append(1)
        if len(built) == 2:  # the refit's network: the first fit finished in time, the limit passes now
            clock.now += 5 * 60
        return build_model(*args, **kwargs)

    monkeypatch.setattr(training, "build_model", build_and_maybe_age)
    with pytest.raises(TrainingTimeout, match=MESSAGE.replace(".*", "5")):
        train(arrays, config, season=12)
    assert len(built) == 2
    monkeypatch.setattr(training, "build_model", build_model)
    parent = train(arrays, config.model_copy(update={"refit": False}), season=12)
    from forecasting.model.network import compile_model

    def compile_and_age(*args, **kwargs):  # fine-tuning starts its clock, then compiles the parent
        clock.now += 5 * 60
        return compile_model(*args, **kwargs)

    monkeypatch.setattr(training, "compile_model", compile_and_age)
    with pytest.raises(TrainingTimeout, match=MESSAGE.replace(".*", "5")):
        fine_tune(to_series_arrays(synthetic_frame(length=50), [], "MS"), config, (parent.network, parent.scaler, parent.series_train_end), 12)


@pytest.mark.slow
def test_the_limit_stops_a_tuning_search(tmp_path):
    config = ModelConfig(**{**TINY_MODEL, "training_timeout_minutes": 1e-9, "tuning": {"max_trials": 2, "max_epochs": 2, "layers": {"min": 1, "max": 1}}})
    arrays = to_series_arrays(synthetic_frame(), [], "MS")
    with pytest.raises(TrainingTimeout, match=r"tuning stopped: it ran longer than the limit of 1e-09 minutes"):
        search(arrays, config, tmp_path / "tuning" / "tiny" / "random-x", "random")


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_run_past_the_limit_fails_with_the_message(settings_for):
    from flows.forecast_pipeline import forecast_pipeline

    settings, path = settings_for("sqlite:///deadline.db", model={"training_timeout_minutes": 1e-9})
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame())
    with pytest.raises(RunError, match=MESSAGE):
        forecast_pipeline(model="tiny", mode="retrain", config=str(path))
    with engine.connect() as connection:
        runs = pd.read_sql(sa.text("SELECT status, error FROM runs"), connection)
    assert list(runs.status) == ["failed"]
    assert "TrainingTimeout: training stopped: it ran longer than the limit of 1e-09 minutes" in runs.error.iloc[0]
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT COUNT(*) FROM model_versions")).scalar() == 0
