"""Peak memory of the training path, in process: synthetic series (benchmarks.scale's generator) ->
per-series arrays -> `training.train` with the benchmark's model config, RSS sampled every 20 ms and
attributed to the step running (arrays, scaler + windows, fit, refit windows, refit, report).

    python -m benchmarks.train_memory --series 20000 [--epochs 1] [--windows-only]

Prints one JSON object: peak RSS (MiB) over the whole run and per step, the RSS before training,
window counts and seconds. `--windows-only` stops after the scaler and the windows (no TensorFlow fit).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    """This process's resident set size now, in MiB."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * PAGE / 2**20


class Sampler(threading.Thread):
    """Samples RSS every `interval` seconds; keeps the peak per label (`label` is set by the caller)."""

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval, self.label, self.peaks, self.running = interval, "start", {}, True

    def run(self) -> None:
        while self.running:
            self.note()
            time.sleep(self.interval)

    def note(self) -> None:
        """Record the RSS now under the current label."""
        value = rss_mib()
        self.peaks[self.label] = max(self.peaks.get(self.label, 0.0), value)

    def mark(self, label: str) -> None:
        """Close the current label (sampled once more) and start `label`."""
        self.note()
        self.label = label
        self.note()


def labelled(sampler: Sampler, module: Any, name: str, label: str) -> None:
    """Wrap `module.name` so that the sampler attributes its run to `label` (the next one, each call)."""
    original = getattr(module, name)
    calls = {"n": 0}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        sampler.mark(label if calls["n"] == 1 else f"{label} {calls['n']}")
        try:
            return original(*args, **kwargs)
        finally:
            sampler.mark(f"after {label}" if calls["n"] == 1 else f"after {label} {calls['n']}")

    setattr(module, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=20000)
    parser.add_argument("--length", type=int, default=120)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--windows-only", action="store_true")
    args = parser.parse_args()
    sampler = Sampler()
    sampler.start()
    started = time.perf_counter()
    sampler.mark("generate")
    from benchmarks.scale import synthetic_series

    frame = synthetic_series(args.series, args.length)
    frame["ts"] = frame["ts"].astype("datetime64[ns]")
    sampler.mark("arrays")
    from forecasting.config.settings import ModelConfig
    from forecasting.model import training
    from forecasting.preparation.windows import to_series_arrays

    arrays = to_series_arrays(frame, [], "MS")
    del frame
    sampler.mark("imports")
    config = ModelConfig.model_validate(
        {"cell": "gru", "lookback": 24, "horizon": 18, "layers": [{"units": 16}], "learning_rate": 3e-3, "loss": "mae",
         "epochs": args.epochs, "min_epochs": args.epochs, "patience": args.epochs, "batch_size": 1024, "seed": 42,
         "deseasonalize": True, "series_weighting": 0.5, "season": 12}
    )
    before = rss_mib()
    result: dict[str, Any] = {"series": args.series, "length": args.length, "epochs": args.epochs, "rss_before_mib": round(before, 1)}
    if args.windows_only:
        sampler.mark("scaler + windows")
        scaler = training.fit_scaler(arrays, config, 12)
        split = training.split_for_training(arrays, scaler, config)
        sampler.mark("end")
        result["windows"] = {"train": int(len(split.y_train)), "val": int(len(split.y_val))}
    else:
        labelled(sampler, training, "split_for_training", "windows")
        labelled(sampler, training, "fit_windows", "fit")
        labelled(sampler, training, "training_report", "report")
        sampler.mark("train: scaler")
        trained = training.train(arrays, config, season=12)
        sampler.mark("end")
        result["windows"] = {"train": trained.report.train_windows, "val": trained.report.val_windows}
    sampler.running = False
    sampler.join()
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["peak_by_step_mib"] = {label: round(value, 1) for label, value in sampler.peaks.items()}
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["load_average"] = os.getloadavg()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
