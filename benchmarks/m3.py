"""Accuracy on the M3 competition data: each subset's series trained on their training parts only,
forecast over the subset's horizon and scored on the held-out values, beside seasonal naive, naive
and (with the optional `benchmarks` extra) statsforecast's AutoETS and Theta from the same run.

    python -m benchmarks.m3 [--subset yearly|quarterly|monthly|other] [--model NAME] [--seed N] [--series N]
                            [--no-statsforecast] [--set key=json ...]

Without `--subset`, the `monthly` model of forecasting.toml on M3 monthly (the measured config).
With `--subset S` and no `--model`, a config naming only the subset's horizon: every other key is
derived from the data (forecasting/defaults.py), the frequency from the subset's dates. Early
stopping, interval calibration and every choice use a validation split cut from the training
parts; the held-out values are read only to score. See benchmarks/README.md for the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

# M3's horizon and seasonal period per subset (the published protocol).
M3_PROTOCOL = {"yearly": (6, 1), "quarterly": (8, 4), "monthly": (18, 12), "other": (8, 1)}
M3_HORIZON, SEASON = M3_PROTOCOL["monthly"]


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


def m3_split(series: int | None = None, subset: str = "monthly") -> tuple[pd.DataFrame, pd.DataFrame]:
    """One M3 subset in long format: each series' training part `x`, and the held-out `xx`."""
    from forecasting.sources.datasets import M3_SUBSETS, m3_subset

    full = m3_subset(subset, series, include_test=True)
    held_out = full["ts"] > pd.Timestamp(M3_SUBSETS[subset][1])
    return full[~held_out].reset_index(drop=True), full[held_out].reset_index(drop=True)


def _config_data(args: argparse.Namespace, horizon: int) -> dict:
    """The model's config: the named model of the config file, else only the subset's horizon."""
    from forecasting.config.settings import load_settings

    if args.model is None:
        return {"horizon": horizon}
    return load_settings(args.config).model(args.model).model_dump(mode="json", exclude={"schedule", "tuning"})


def _scores(frame: pd.DataFrame, test_part: pd.DataFrame, scales: dict, name: str) -> dict:
    from forecasting.evaluation.metrics import accuracy_by_step

    overall = accuracy_by_step(frame, test_part, scales).set_index("step").loc[0]
    return {f"{name}_smape": round(float(overall["smape"]), 3), f"{name}_mase": round(float(overall["mase"]), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(Path(__file__).resolve().parent.parent / "forecasting.toml"))
    parser.add_argument("--subset", choices=sorted(M3_PROTOCOL), default=None, help="M3 subset (default: monthly with --model monthly)")
    parser.add_argument("--model", default=None, help="a model of --config (default: monthly without --subset; with it, derived defaults)")
    parser.add_argument("--seed", type=int, default=None, help="base seed (default: the config's)")
    parser.add_argument("--series", type=int, default=None, help="score this many series spread over the subset (default: all)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="override a model key, e.g. ensemble.members=3")
    parser.add_argument("--no-statsforecast", action="store_true", help="leave AutoETS and Theta out even when statsforecast is installed")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)
    if args.subset is None:
        args.subset, args.model = "monthly", args.model or "monthly"

    from pydantic import ValidationError

    from benchmarks.classical import STATSFORECAST_MISSING, classical_forecasts, statsforecast_available
    from forecasting.config.settings import ModelConfig, format_validation_error
    from forecasting.sources.datasets import M3_SUBSETS
    from forecasting.evaluation.metrics import accuracy_by_step, baseline_forecasts, seasonal_naive_scale
    from forecasting.model.forecaster import RecurrentForecaster
    from forecasting.preparation.windows import to_series_arrays

    horizon, season = M3_PROTOCOL[args.subset]
    frequency = M3_SUBSETS[args.subset][0]
    data = _config_data(args, horizon)
    for item in args.set:
        _override(data, item)
    if args.seed is not None:
        data["seed"] = args.seed
    try:
        config = ModelConfig.model_validate(data)
    except ValidationError as error:
        parser.error(f"models.{args.model or args.subset}: {format_validation_error(error)}")
    if config.horizon != horizon:
        parser.error(f"model {args.model!r} forecasts {config.horizon} steps; M3 {args.subset} holds out {horizon}")

    train_part, test_part = m3_split(args.series, args.subset)
    arrays = to_series_arrays(train_part, [], frequency, config.calendar)

    started = time.perf_counter()
    outcome = RecurrentForecaster.fit(arrays, config, verbose=args.verbose)  # season derived from the frequency unless set
    train_seconds = time.perf_counter() - started
    forecast = outcome.forecaster.predict(arrays)
    if forecast.skipped:
        print(f"skipped {len(forecast.skipped)} series: {dict(list(forecast.skipped.items())[:3])}", file=sys.stderr)

    # MASE's scale and seasonal naive use M3's own period for the subset (the published protocol).
    histories = {sid: values[:, 0] for sid, values in arrays.values.items()}
    scales = {sid: seasonal_naive_scale(history, season) for sid, history in histories.items()}
    origins = {sid: index[-1] for sid, index in arrays.timestamps.items()}
    model_scores = accuracy_by_step(forecast.forecasts, test_part, scales, config.intervals).set_index("step")
    baselines = baseline_forecasts(histories, origins, horizon, season, frequency)
    classical: dict = {}
    classical_seconds = None
    if not args.no_statsforecast:
        if statsforecast_available():
            started = time.perf_counter()
            for name, frame in classical_forecasts(train_part, horizon, season, frequency).items():
                classical.update(_scores(frame, test_part, scales, name))
            classical_seconds = round(time.perf_counter() - started, 1)
        else:
            print(STATSFORECAST_MISSING, file=sys.stderr)
    overall = model_scores.loc[0]
    line = {
        "dataset": f"m3-{args.subset}",
        "series": int(overall["series"]),
        "smape": round(float(overall["smape"]), 3),
        "mase": round(float(overall["mase"]), 4),
        **_scores(baselines["seasonal_naive"], test_part, scales, "snaive"),
        "naive_smape": _scores(baselines["naive"], test_part, scales, "naive")["naive_smape"],
        **classical,
        **{f"coverage_{level}": round(float(overall[f"coverage_{level}"]), 2) for level in config.intervals},
        "train_seconds": round(train_seconds, 1),
        "classical_seconds": classical_seconds,
        "best_epoch": outcome.report.best_epoch,
        "val_smape": round(outcome.report.metrics["val_smape_model"], 3),
        "config": outcome.forecaster.config.model_dump(mode="json", exclude={"schedule", "tuning", "fine_tune", "promotion"}),
    }
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
