"""The seed article's networks, built from config: stacked SimpleRNN/LSTM/GRU layers and a Dense head."""

from __future__ import annotations

import keras

from forecasting.config import ModelConfig

CELLS = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
LOSSES = {"mse": "mse", "mae": "mae", "huber": keras.losses.Huber}


def build_model(config: ModelConfig, n_inputs: int = 1) -> keras.Model:
    """Stacked recurrent layers (return_sequences on all but the last), each followed by Dropout
    when it has one, then Dense(horizon); compiled with Adam and the configured loss."""
    cell = CELLS[config.cell]
    # Every initializer and dropout layer gets its own seed from config.seed: nothing draws on
    # process-wide random state, which other threads (Prefect, Dask) may also use.
    seeds = iter(range(config.seed * 1000, config.seed * 1000 + 1000))
    model = keras.Sequential(name=f"{config.cell}_forecaster")
    model.add(keras.Input(shape=(config.lookback, n_inputs), name="window"))
    last = len(config.layers) - 1
    for index, layer in enumerate(config.layers):
        model.add(
            cell(
                layer.units,
                activation=layer.activation,
                return_sequences=index < last,
                kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
                recurrent_initializer=keras.initializers.Orthogonal(seed=next(seeds)),
                seed=next(seeds),
                name=f"{config.cell}_{index}",
            )
        )
        if layer.dropout > 0:
            model.add(keras.layers.Dropout(layer.dropout, seed=next(seeds), name=f"dropout_{index}"))
    model.add(keras.layers.Dense(config.horizon, kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)), name="forecast"))
    compile_model(model, config.learning_rate, config.loss, config.jit_compile)
    return model


def compile_model(model: keras.Model, learning_rate: float, loss: str, jit_compile: bool = False) -> None:
    """Adam with `learning_rate` and the named loss."""
    loss_fn = LOSSES[loss]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=loss_fn() if isinstance(loss_fn, type) else loss_fn,
        jit_compile=jit_compile,
    )
