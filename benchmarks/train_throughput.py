"""Training throughput: the seed article's plain Keras path against the job's training path, on the
same windows with the same network, alternating in one process.

    .venv/bin/python -m benchmarks.train_throughput [--series 1000] [--length 120] [--epochs 5]
        [--repeats 3] [--networks gru64,lstm64x2] [--batch-size 1024] [--no-deterministic]

The windows are those the job trains on (`training.split_for_training` of the synthetic series of
`benchmarks/scale.py`: lookback 24, horizon 18, `window_log` scaling, deseasonalised): its training
windows and its validation windows (each series' latest 18 months). The plain path is the seed
article's: a `keras.Sequential` of the same cells and Dense(horizon), Adam, `fit(X, y,
validation_split=…)` on NumPy arrays, where X holds the training windows followed by the validation
windows, so `validation_split` takes exactly the job's validation windows. The job's path is
`model.build_model` + `training.fit_windows` (its tf.data pipeline, seeded shuffle, callbacks).
Both run `--epochs` epochs (no early stopping), batch `--batch-size`, MAE loss, learning rate 3e-3,
the same seed. Op determinism is process-wide once on, so with it (the job's default) both paths run
with deterministic kernels.

Prints one JSON line per training (seconds of `fit`, training windows per second, the validation
loss after the last epoch) and a summary per network: median windows/s of each path, their ratio
(job / plain) and the validation losses.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import pandas as pd


def networks(spec: str) -> list[tuple[str, str, list[int]]]:
    """`gru64,lstm64x2` -> [(name, cell, units per layer)]."""
    found = []
    for item in spec.split(","):
        cell = item.rstrip("0123456789x")
        units, _, depth = item[len(cell):].partition("x")
        found.append((item, cell, [int(units)] * int(depth or 1)))
    return found


def windows(series: int, length: int, config) -> object:
    from benchmarks.scale import synthetic_series
    from forecasting.model.training import fit_scaler, split_for_training
    from forecasting.preparation.windows import to_series_arrays

    frame = synthetic_series(series, length)
    frame["ts"] = pd.to_datetime(frame["ts"])
    arrays = to_series_arrays(frame, [], "MS")
    return split_for_training(arrays, fit_scaler(arrays, config, season=12), config)


def plain_keras(split, config, epochs: int) -> tuple[float, float]:
    """The seed article's code path: Sequential, fit on NumPy with validation_split. (seconds, last val loss)."""
    import keras

    keras.utils.set_random_seed(config.seed)
    cells = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM, "rnn": keras.layers.SimpleRNN}
    layers = [keras.Input(shape=split.x_train.shape[1:])]
    for depth, layer in enumerate(config.layers):
        layers.append(cells[config.cell](layer.units, return_sequences=depth < len(config.layers) - 1))
    layers.append(keras.layers.Dense(config.horizon))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate), loss=config.loss)
    x = np.concatenate([split.x_train, split.x_val])
    y = np.concatenate([split.y_train, split.y_val])
    fraction = len(split.x_val) / len(x)
    assert int(np.floor(len(x) * (1.0 - fraction))) == len(split.x_train), "validation_split must take the validation windows"
    started = time.perf_counter()
    history = model.fit(x, y, epochs=epochs, batch_size=config.batch_size, validation_split=fraction, verbose=0)
    return time.perf_counter() - started, float(history.history["val_loss"][-1])


def job_path(split, config, epochs: int) -> tuple[float, float]:
    """The job's training path on the same windows. (seconds, last val loss)."""
    from forecasting.model.network import build_model
    from forecasting.model.training import Schedule, fit_windows, set_determinism

    set_determinism(config.seed, config.deterministic)
    model = build_model(config, n_inputs=split.x_train.shape[2])
    schedule = Schedule(epochs, config.batch_size, config.patience, config.seed, 0, config.min_epochs)
    started = time.perf_counter()
    history = fit_windows(model, split, split.x_train, split.y_train, schedule)
    return time.perf_counter() - started, float(history.history["val_loss"][-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--length", type=int, default=120)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--networks", default="gru64,lstm64x2")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--no-deterministic", action="store_true", help="without TensorFlow's op determinism (both paths)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="override a model key of the job's path, e.g. jit_compile=true")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from benchmarks.m3 import _override
    from forecasting.config.settings import ModelConfig
    from forecasting.model.training import set_determinism

    for name, cell, units in networks(args.networks):
        data = {
            "cell": cell, "lookback": 24, "horizon": 18, "layers": [{"units": u} for u in units], "learning_rate": 3e-3,
            "loss": "mae", "epochs": args.epochs, "min_epochs": args.epochs, "patience": args.epochs, "batch_size": args.batch_size,
            "seed": 42, "deterministic": not args.no_deterministic, "refit": False,
        }  # fmt: skip
        plain_config = ModelConfig.model_validate(data)
        for item in args.set:
            _override(data, item)
        job_config = ModelConfig.model_validate(data)
        split = windows(args.series, args.length, plain_config)
        # Op determinism is process-wide: switch it on before either path runs, so both use the same kernels.
        set_determinism(plain_config.seed, plain_config.deterministic)
        rates: dict[str, list[float]] = {"plain": [], "job": []}
        losses: dict[str, list[float]] = {"plain": [], "job": []}
        for repeat in range(args.repeats):
            for path in (("plain", "job") if repeat % 2 == 0 else ("job", "plain")):
                seconds, val_loss = (plain_keras(split, plain_config, args.epochs) if path == "plain" else job_path(split, job_config, args.epochs))
                rate = len(split.x_train) * args.epochs / seconds
                rates[path].append(rate)
                losses[path].append(val_loss)
                print(json.dumps({"benchmark": "train_throughput", "network": name, "path": path, "repeat": repeat, "seconds": round(seconds, 2),
                                  "windows_per_second": round(rate), "val_loss": round(val_loss, 5)}), flush=True)
        plain, job = statistics.median(rates["plain"]), statistics.median(rates["job"])
        print(json.dumps({
            "benchmark": "train_throughput", "summary": True, "network": name, "train_windows": len(split.x_train),
            "val_windows": len(split.x_val), "epochs": args.epochs, "batch_size": args.batch_size, "deterministic": not args.no_deterministic,
            "job_overrides": args.set, "plain_windows_per_second": round(plain), "job_windows_per_second": round(job),
            "ratio_job_over_plain": round(job / plain, 2), "plain_val_loss": round(statistics.median(losses["plain"]), 5),
            "job_val_loss": round(statistics.median(losses["job"]), 5),
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
