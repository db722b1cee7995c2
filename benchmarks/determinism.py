"""What TensorFlow's deterministic ops cost: training time with and without them.

    .venv/bin/python -m benchmarks.determinism [--series 300] [--epochs 5] [--repeats 2]

Each training runs in a fresh process (op determinism cannot be switched off once on), the two
settings alternate, and the same M3 monthly subset, model config and seed are used. Prints one
JSON line per training and a summary line with the median ratio deterministic / default.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

ONE_TRAINING = """
import json, sys, time
from forecasting.config.settings import load_settings
from forecasting.sources.datasets import m3_monthly
from forecasting.model.defaults import resolve_for
from forecasting.model.training import train
from forecasting.preparation.validation import regularize
from forecasting.preparation.windows import to_series_arrays
series, epochs, deterministic = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
config = load_settings("forecasting.toml").model("monthly")
config = config.model_copy(update={"epochs": epochs, "patience": epochs, "deterministic": deterministic})
frame, _ = regularize(m3_monthly(series), "MS")
arrays = to_series_arrays(frame, [])
started = time.perf_counter()
result = train(arrays, resolve_for(config, arrays), season=12)
print(json.dumps({"seconds": time.perf_counter() - started, "epochs": result.report.epochs_run, "val_loss": result.report.best_val_loss}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    seconds: dict[bool, list[float]] = {True: [], False: []}
    for repeat in range(args.repeats):
        for deterministic in ((True, False) if repeat % 2 == 0 else (False, True)):
            run = subprocess.run(
                [sys.executable, "-c", ONE_TRAINING, str(args.series), str(args.epochs), "1" if deterministic else "0"],
                capture_output=True, text=True, check=True,
            )
            result = json.loads(run.stdout.strip().splitlines()[-1])
            seconds[deterministic].append(result["seconds"])
            print(json.dumps({"benchmark": "determinism", "deterministic_ops": deterministic, "series": args.series, **result}))
    ratio = statistics.median(seconds[True]) / statistics.median(seconds[False])
    print(json.dumps({"benchmark": "determinism", "summary": True, "median_seconds_deterministic": statistics.median(seconds[True]),
                      "median_seconds_default": statistics.median(seconds[False]), "ratio_deterministic_over_default": round(ratio, 3)}))


if __name__ == "__main__":
    main()
