"""XLA under the job's default op determinism: asked for, it is used, and training stays reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.config.settings import ModelConfig
from forecasting.model.network import build_model
from forecasting.preparation.scaling import WindowLevels
from forecasting.model.training import set_determinism
from forecasting.model.fitting import Schedule, fit_windows
from forecasting.preparation.windows import WindowSplit


def _trained_weights(config: ModelConfig) -> tuple[bool, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 6, 1)).astype("float32"), rng.normal(size=(300, 2)).astype("float32")
    split = WindowSplit(x, y, x[:60], y[:60], np.array(["a"] * 60, dtype=object), WindowLevels.empty(), np.array([]), np.array([]))
    set_determinism(config.seed, config.deterministic)
    model = build_model(config)
    fit_windows(model, split, x, y, Schedule(epochs=2, batch_size=64, patience=2, seed=config.seed))
    return bool(model.jit_compile), model.get_weights()


@pytest.mark.slow
def test_jit_compile_is_used_with_op_determinism_on_and_trains_reproducibly() -> None:
    config = ModelConfig(lookback=6, horizon=2, layers=[{"units": 4}], jit_compile=True, deterministic=True)
    first_jit, first = _trained_weights(config)
    second_jit, second = _trained_weights(config)
    # Keras used to switch XLA off silently while op determinism was on.
    assert first_jit and second_jit
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_without_jit_compile_the_model_is_not_compiled_by_xla() -> None:
    jit, _ = _trained_weights(ModelConfig(lookback=6, horizon=2, layers=[{"units": 4}], jit_compile=False, deterministic=True))
    assert not jit
