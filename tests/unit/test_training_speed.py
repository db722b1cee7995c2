"""What keeps the job's training path fast: validation in training-size batches (Keras fell back to 32)."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.config.settings import ModelConfig
from forecasting.model.network import build_model
from forecasting.preparation.scaling import WindowLevels
from forecasting.model.fitting import Schedule, fit_windows
from forecasting.preparation.windows import WindowSplit


@pytest.mark.slow
def test_validation_windows_are_evaluated_in_training_size_batches() -> None:
    config = ModelConfig(lookback=4, horizon=2, layers=[{"units": 2}])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(96, 4, 1)).astype("float32"), rng.normal(size=(96, 2)).astype("float32")
    split = WindowSplit(x, y, x[:80], y[:80], np.array(["a"] * 80, dtype=object), WindowLevels.empty(), np.array([]), np.array([]))
    model = build_model(config)
    evaluate, batch_sizes = model.evaluate, []

    def recording_evaluate(*args, **kwargs):
        # `fit` evaluates the validation data through the model's own `evaluate`: record its batch size, then run it.
        batch_sizes.append(kwargs.get("batch_size"))
        return evaluate(*args, **kwargs)

    model.evaluate = recording_evaluate
    history = fit_windows(model, split, x, y, Schedule(epochs=2, batch_size=64, patience=2, seed=1))
    assert batch_sizes == [64, 64]
    assert len(history.history["val_loss"]) == 2
