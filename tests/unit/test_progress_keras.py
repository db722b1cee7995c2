"""The Keras progress callbacks: lines per batch with the epoch and losses, an early stop said as such,
and the same numbers as without them (training and forecasts unchanged)."""

from __future__ import annotations

import logging

import keras
import numpy as np

from forecasting.config.settings import ModelConfig
from forecasting.model.network import build_model, forecast_array
from forecasting.model.keras_progress import EpochProgress, PredictProgress
from forecasting.model.training import set_determinism

CONFIG = ModelConfig(cell="gru", lookback=6, horizon=2, layers=[{"units": 4}], learning_rate=0.01, epochs=3, batch_size=16)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0  # each reading one second later
        return self.now


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 6, 1)).astype("float32"), rng.normal(size=(64, 2)).astype("float32")


def fitted(callbacks: list) -> keras.Model:
    set_determinism(7, deterministic_ops=False)
    model = build_model(CONFIG)
    x, y = data()
    model.fit(x, y, validation_data=(x[:16], y[:16]), epochs=3, batch_size=16, shuffle=False, verbose=0, callbacks=callbacks)
    return model


def test_training_and_forecasts_are_the_same_with_progress_and_its_lines_say_epochs_and_losses(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="forecasting.progress"):
        reported = fitted([EpochProgress(interval=0, clock=Clock(), bar=False)])
    plain = fitted([])
    for ours, theirs in zip(reported.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    lines = [r.getMessage() for r in caplog.records if r.name == "forecasting.progress"]
    assert lines[0] == "train epochs: started, 12 batches to go"
    assert lines[1].startswith("train epochs: 1/12 batches (8%), 1 batches/s, at most 11 s left (early stopping may end it sooner); epoch 1/3, loss ")
    assert any(line.startswith("train epochs: 5/12 batches") and "epoch 2/3" in line and "val_loss" in line for line in lines)
    assert lines[-1].startswith("train epochs: done, 12/12 batches in ") and "; 3/3 epochs, last val_loss " in lines[-1]
    x, _ = data()
    np.testing.assert_array_equal(forecast_array(plain, x), plain.predict(x, batch_size=4096, verbose=0))


def test_an_early_stop_is_said_and_prediction_counts_windows_per_batch(caplog) -> None:
    stop = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", epoch >= 0))
    set_determinism(7, deterministic_ops=False)
    model = build_model(CONFIG)
    x, y = data()
    with caplog.at_level(logging.INFO, logger="forecasting.progress"):
        model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[stop, EpochProgress(interval=0, clock=Clock(), bar=False)])
        model.predict(x, batch_size=16, verbose=0, callbacks=[PredictProgress(len(x), 16, "forecast", "series", interval=0, clock=Clock(), bar=False)])
    lines = [r.getMessage() for r in caplog.records if r.name == "forecasting.progress"]
    assert [line for line in lines if line.startswith("train epochs: done")][0].endswith("; stopped early after 1/3 epochs")
    forecast = [line for line in lines if line.startswith("forecast: ")]
    assert forecast[0] == "forecast: started, 64 series to go"
    assert [line.split(" (")[0] for line in forecast[1:5]] == [f"forecast: {n}/64 series" for n in (16, 32, 48, 64)]
    assert forecast[-1].startswith("forecast: done, 64/64 series in ")


def test_the_likely_end_of_early_stopping_is_said_and_a_fit_without_it_says_about(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="forecasting.progress"):
        fitted([EpochProgress(likely_epochs=2, interval=0, clock=Clock(), bar=False)])
        fitted([EpochProgress("refit", early_stopping=False, interval=0, clock=Clock(), bar=False)])
    lines = [r.getMessage() for r in caplog.records if r.name == "forecasting.progress"]
    assert lines[1].startswith(
        "train epochs: 1/12 batches (8%), 1 batches/s, about 7.0 s left (early stopping likely ends it near epoch 2 of 3; at most 11 s); epoch 1/3, loss "
    )
    assert any(line.startswith("train epochs: 9/12 batches (75%), ") and ", at most 3.7 s left (early stopping may end it sooner); epoch 3/3" in line for line in lines)
    assert any(line.startswith("refit: 1/12 batches (8%), 1 batches/s, about 11 s left; epoch 1/3") for line in lines)


def test_progress_none_silences_keras_own_epoch_lines(capsys, monkeypatch) -> None:
    """The flow trains with Keras's `verbose = 2` (a line per epoch); with FORECASTING_PROGRESS=none (cron
    mails any output) those lines are off too, like the job's own progress lines. Training is unchanged."""
    from forecasting.model.fitting import Schedule, fit_windows

    x, y = data()
    schedule = Schedule(epochs=2, batch_size=16, patience=2, seed=7, verbose=2)
    printed, losses = {}, {}
    for progress in ("", "none"):
        monkeypatch.setenv("FORECASTING_PROGRESS", progress)
        set_determinism(7, deterministic_ops=False)
        history = fit_windows(build_model(CONFIG), None, x, y, schedule)
        printed[progress], losses[progress] = capsys.readouterr().out, history.history["loss"]
    assert "Epoch 1/2" in printed[""] and "Epoch 2/2" in printed[""]
    assert "Epoch" not in printed["none"] and "loss" not in printed["none"]
    assert losses["none"] == losses[""]
