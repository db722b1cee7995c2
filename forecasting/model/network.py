"""The seed article's networks, built from config: stacked SimpleRNN/LSTM/GRU layers and a Dense head,
optionally several of them side by side (an ensemble in one Keras model)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from forecasting.config.settings import ModelConfig
from forecasting.model.keras_progress import EpochProgress, PredictProgress  # noqa: F401 - EpochProgress: tuning imports it from here

PREDICT_BATCH = 4096

CELLS = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
LOSSES = {"mse": "mse", "mae": "mae", "huber": keras.losses.Huber}


def _member(
    config: ModelConfig, window: keras.KerasTensor, lookback: int, index: int, seeds, future: keras.KerasTensor | None = None
) -> keras.KerasTensor:
    prefix = f"m{index}_" if config.ensemble.members > 1 else ""
    x = window
    if lookback < config.lookback:
        x = keras.layers.Cropping1D((config.lookback - lookback, 0), name=f"{prefix}last_{lookback}")(x)
    last = len(config.layers) - 1
    for depth, layer in enumerate(config.layers):
        x = CELLS[config.cell](
            layer.units,
            activation=layer.activation,
            return_sequences=depth < last,
            kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
            recurrent_initializer=keras.initializers.Orthogonal(seed=next(seeds)),
            seed=next(seeds),
            name=f"{prefix}{config.cell}_{depth}",
        )(x)
        if layer.dropout > 0:
            x = keras.layers.Dropout(layer.dropout, seed=next(seeds), name=f"{prefix}dropout_{depth}")(x)
    if future is not None:
        # The values known for the target periods join the recurrent state before the output layer.
        x = keras.layers.Concatenate(name=f"{prefix}with_future")([x, keras.layers.Flatten(name=f"{prefix}future_flat")(future)])
    return keras.layers.Dense(
        config.horizon, kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)), name=f"{prefix}forecast"
    )(x)


def build_model(config: ModelConfig, n_inputs: int = 1, n_future: int = 0) -> keras.Model:
    """Stacked recurrent layers (return_sequences on all but the last), each followed by Dropout
    when it has one, then Dense(horizon); compiled with Adam and the configured loss.

    With `n_future` > 0 the network has a second input, "future" (horizon x n_future: the values
    known ahead for the target periods), flattened and concatenated with the recurrent state
    before Dense(horizon); without, it is the one-input network it always was.

    With `ensemble.members` > 1 the model holds that many such networks, each on the last
    `member_lookbacks()[i]` steps of the window, and outputs (batch, members, horizon):
    `forecast_array` takes their median."""
    # Every initializer and dropout layer gets its own seed from config.seed: nothing draws on
    # process-wide random state, which other threads (Prefect, Dask) may also use.
    seeds = iter(range(config.seed * 1000, config.seed * 1000 + 100_000))
    window = keras.Input(shape=(config.lookback, n_inputs), name="window")
    future = keras.Input(shape=(config.horizon, n_future), name="future") if n_future else None
    outputs = [_member(config, window, lookback, i, seeds, future) for i, lookback in enumerate(config.member_lookbacks())]
    if len(outputs) == 1:
        output = outputs[0]
    else:
        output = keras.layers.Concatenate(axis=1, name="members")(
            [keras.layers.Reshape((1, config.horizon), name=f"m{i}_row")(o) for i, o in enumerate(outputs)]
        )
    model = keras.Model(window if future is None else [window, future], output, name=f"{config.cell}_forecaster")
    compile_model(model, config.learning_rate, config.loss, config.jit_compile)
    return model


def compile_model(model: keras.Model, learning_rate: float, loss: str, jit_compile: bool = False) -> None:
    """Adam with `learning_rate` and the named loss; with `jit_compile`, steps compiled by XLA."""
    loss_fn = LOSSES[loss]
    with _xla_despite_op_determinism(jit_compile):
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss=loss_fn() if isinstance(loss_fn, type) else loss_fn,
            jit_compile=jit_compile,
        )
    # Built now, the optimizer's slots exist before the first step: Keras then traces its training
    # step once per fit instead of twice (a first trace only to create them), the same weights either way.
    model.optimizer.build(model.trainable_variables)


@contextmanager
def _xla_despite_op_determinism(jit_compile: bool) -> Iterator[None]:
    """Keras silently compiles without XLA while TensorFlow's op determinism is on (the job's default),
    because some XLA kernels are not deterministic on GPUs. On CPUs XLA's steps are: two trainings
    give the same weights bit for bit (tests/unit/test_xla_compile.py). So on a machine without a GPU
    a model asked for XLA is compiled with determinism off for that moment, and on again after."""
    switch = jit_compile and tf_config.is_op_determinism_enabled() and not tf.config.list_physical_devices("GPU")
    if switch:
        tf_config.disable_op_determinism()
    try:
        yield
    finally:
        if switch:
            tf_config.enable_op_determinism()


def future_inputs(model: keras.Model) -> int:
    """Columns of the network's future input (0: a one-input network)."""
    return int(model.inputs[1].shape[-1]) if len(model.inputs) > 1 else 0


def member_count(model: keras.Model) -> int:
    shape = model.output_shape
    return int(shape[1]) if len(shape) == 3 else 1


def member_targets(model: keras.Model, targets: np.ndarray) -> np.ndarray:
    """Targets (windows x horizon) repeated for each member, as the model's output is shaped:
    every member learns the same target, so training them together equals training them apart."""
    count = member_count(model)
    if count == 1:
        return targets
    return np.repeat(targets[:, np.newaxis, :], count, axis=1)


def forecast_array(model: keras.Model, inputs: np.ndarray | list[np.ndarray], what: str = "predict", unit: str = "windows") -> np.ndarray:
    """Scaled forecasts (windows x horizon): the model's output, or the median over its members.
    `inputs`: the windows, or [windows, future blocks] for a network with future inputs (progress
    reported per batch as `what`, counting `unit`)."""
    data = [np.asarray(part, dtype="float32") for part in inputs] if isinstance(inputs, (list, tuple)) else np.asarray(inputs, dtype="float32")
    progress = PredictProgress(len(data[0]) if isinstance(data, list) else len(data), PREDICT_BATCH, what, unit)
    predicted = model.predict(data, batch_size=PREDICT_BATCH, verbose=0, callbacks=[progress])
    return np.median(predicted, axis=1) if predicted.ndim == 3 else predicted
