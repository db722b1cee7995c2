"""Cyclic garbage collection and the cost per series: one `DatetimeIndex` slice per series (what
`windowing.to_series_arrays` builds) at two series counts, with Python's collector on, off (what the
job's data phases do: `memory.paused_gc`) and on after `gc.freeze()`, TensorFlow imported as in a run.

    .venv/bin/python -m benchmarks.collection [--sizes 10000,100000] [--length 120] [--repeats 2]

Each setting runs in its own process (`gc.freeze` cannot be undone). Prints one JSON line per
setting and size: the median microseconds per slice, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SETTINGS = ("on", "off", "frozen")


def measure(setting: str, sizes: list[int], length: int, repeats: int) -> None:
    """Time the slices in this process under `setting`; print one JSON line per size."""
    import gc

    import numpy as np
    import pandas as pd
    import tensorflow  # noqa: F401 - its objects are what a full collection walks in a run

    if setting == "frozen":
        gc.freeze()
    grid = pd.date_range("2000-01-01", periods=length, freq="MS").to_numpy()
    timings: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(repeats):
        for size in sizes:
            index = pd.DatetimeIndex(np.tile(grid, size))
            if setting == "off":
                gc.disable()
            started = time.perf_counter()
            kept = {str(series): index[series * length : (series + 1) * length] for series in range(size)}
            timings[size].append((time.perf_counter() - started) / size * 1e6)
            gc.enable()
            del kept
    for size in sizes:
        print(json.dumps({
            "benchmark": "collection", "collector": setting, "series": size,
            "us_per_slice": round(statistics.median(timings[size]), 2), "load_average": round(os.getloadavg()[0], 1),
        }), flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--length", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--setting", choices=SETTINGS, help=argparse.SUPPRESS)  # the child process's
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.setting:
        measure(args.setting, sizes, args.length, args.repeats)
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for setting in SETTINGS:
        command = [sys.executable, "-m", "benchmarks.collection", "--sizes", args.sizes, "--length", str(args.length),
                   "--repeats", str(args.repeats), "--setting", setting]  # fmt: skip
        subprocess.run(command, check=True, env=env)


if __name__ == "__main__":
    main()
