"""Accuracy on the M3 monthly competition data (1428 series, 18 months held out).

Trains the job's model (the `monthly` model of forecasting.toml, through the same training and
prediction code as `forecasting run`) on each series' training part only, forecasts the 18
held-out months and prints one JSON line. Early stopping, interval calibration and every choice
use a validation split cut from the training parts; the held-out values are read only to score.

    python -m benchmarks.m3 [--seed N] [--series N] [--set key=json ...]

Published and measured references on the same protocol: seasonal naive 17.23, AutoETS 14.16,
Theta 13.83 (published 13.85), N-BEATS ensemble 13.11 (sMAPE). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

M3_HORIZON = 18
SEASON = 12


def _override(data: dict, dotted: str) -> None:
    key, _, raw = dotted.partition("=")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    *parents, leaf = key.split(".")
    for parent in parents:
        data = data.setdefault(parent, {})
    data[leaf] = value


def m3_split(series: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """M3 monthly in long format: each series' training part `x`, and the 18 held-out months `xx`."""
    from forecasting.datasets import M3_ANCHOR, m3_monthly

    full = m3_monthly(series, end=M3_ANCHOR, include_test=True)
    held_out = full["ts"] > pd.Timestamp(M3_ANCHOR)
    return full[~held_out].reset_index(drop=True), full[held_out].reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(Path(__file__).resolve().parent.parent / "forecasting.toml"))
    parser.add_argument("--model", default="monthly")
    parser.add_argument("--seed", type=int, default=None, help="base seed (default: the config's)")
    parser.add_argument("--series", type=int, default=None, help="score a subset spread over M3 (default: all 1428)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="override a model key, e.g. ensemble.members=3")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)

    from pydantic import ValidationError

    from forecasting.config import ModelConfig, format_validation_error, load_settings
    from forecasting.evaluation import accuracy_by_step, baseline_forecasts, seasonal_naive_scale
    from forecasting.forecaster import RecurrentForecaster
    from forecasting.windowing import to_series_arrays

    data = load_settings(args.config).model(args.model).model_dump(mode="json", exclude={"schedule", "tuning"})
    for item in args.set:
        _override(data, item)
    if args.seed is not None:
        data["seed"] = args.seed
    try:
        config = ModelConfig.model_validate(data)
    except ValidationError as error:
        parser.error(f"models.{args.model}: {format_validation_error(error)}")
    if config.horizon != M3_HORIZON:
        parser.error(f"model {args.model!r} forecasts {config.horizon} steps; M3 monthly holds out {M3_HORIZON}")

    train_part, test_part = m3_split(args.series)
    arrays = to_series_arrays(train_part, [], "MS", config.calendar)

    started = time.perf_counter()
    outcome = RecurrentForecaster.fit(arrays, config, verbose=args.verbose)  # monthly: season 12 (SEASON)
    train_seconds = time.perf_counter() - started
    forecast = outcome.forecaster.predict(arrays)
    if forecast.skipped:
        print(f"skipped {len(forecast.skipped)} series: {dict(list(forecast.skipped.items())[:3])}", file=sys.stderr)

    histories = {sid: values[:, 0] for sid, values in arrays.values.items()}
    scales = {sid: seasonal_naive_scale(history, SEASON) for sid, history in histories.items()}
    origins = {sid: index[-1] for sid, index in arrays.timestamps.items()}
    model_scores = accuracy_by_step(forecast.forecasts, test_part, scales, config.intervals).set_index("step")
    baselines = baseline_forecasts(histories, origins, config.horizon, SEASON, "MS")
    snaive = accuracy_by_step(baselines["seasonal_naive"], test_part, scales).set_index("step")
    naive = accuracy_by_step(baselines["naive"], test_part, scales).set_index("step")
    overall = model_scores.loc[0]
    line = {
        "dataset": "m3-monthly",
        "series": int(overall["series"]),
        "smape": round(float(overall["smape"]), 3),
        "mase": round(float(overall["mase"]), 4),
        "snaive_smape": round(float(snaive.loc[0, "smape"]), 3),
        "snaive_mase": round(float(snaive.loc[0, "mase"]), 4),
        "naive_smape": round(float(naive.loc[0, "smape"]), 3),
        **{f"coverage_{level}": round(float(overall[f"coverage_{level}"]), 2) for level in config.intervals},
        "train_seconds": round(train_seconds, 1),
        "best_epoch": outcome.report.best_epoch,
        "val_smape": round(outcome.report.metrics["val_smape_model"], 3),
        "config": config.model_dump(mode="json", exclude={"schedule", "tuning", "fine_tune", "promotion"}),
    }
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
