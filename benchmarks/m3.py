"""Accuracy on the M3 competition data: each subset's series trained on their training parts only,
forecast over the subset's horizon and scored on the held-out values, beside seasonal naive, naive
and (with the optional `benchmarks` extra) statsforecast's AutoETS and Theta from the same run.

    python -m benchmarks.m3 [--subset yearly|quarterly|monthly|other|all] [--model NAME] [--seed N] [--series N]
                            [--no-statsforecast] [--set key=json ...]

Without `--subset`, the `monthly` model of forecasting.toml on M3 monthly (the measured config).
With `--subset S` and no `--model`, a config naming only the subset's horizon: every other key is
derived from the data (forecasting/defaults.py), the frequency from the subset's dates. Early
stopping, interval calibration and every choice use a validation split cut from the training
parts; the held-out values are read only to score. Each method is scored by sMAPE, MASE and MAPE.
`--subset all` runs the four subsets one after the other (one line each), then prints one line
`m3-all` with two averages over them: `point_average`, the mean over every forecast point of every
subset (series x horizon steps: the M3 'Average' of Makridakis & Hibon 2000 and of the N-BEATS
paper's Table 1), and `series_weighted`, the mean of the subsets' figures weighted by their series.
See benchmarks/README.md for the figures.
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
SUBSETS = ("yearly", "quarterly", "monthly", "other")  # `--subset all` runs them in this order
METRICS = ("smape", "mase", "mape")
DIGITS = {"smape": 3, "mase": 4, "mape": 3}


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


def _scores(frame: pd.DataFrame, test_part: pd.DataFrame, scales: dict, name: str) -> tuple[dict, dict]:
    """A method's metrics over all its scored points (keys `<name>_smape`, ..., unrounded) and how many series and points."""
    from forecasting.evaluation.metrics import accuracy_by_step

    overall = accuracy_by_step(frame, test_part, scales).set_index("step").loc[0]
    return _metrics(overall, f"{name}_"), _counts(overall)


def _metrics(overall: pd.Series, prefix: str = "") -> dict:
    return {f"{prefix}{metric}": float(overall[metric]) for metric in METRICS}


def _counts(overall: pd.Series) -> dict:
    return {"series": int(overall["series"]), "points": int(overall["points"])}


def rounded(line: dict) -> dict:
    """The line as printed: each metric to 3 decimals, MASE to 4."""
    result = {}
    for key, value in line.items():
        metric = key.rsplit("_", 1)[-1]
        result[key] = round(value, DIGITS[metric]) if metric in DIGITS and isinstance(value, float) else value
    return result


def _methods(line: dict) -> list[tuple[str, str]]:
    return [(method, "" if method == "model" else f"{method}_") for method in line["scored"]]


def combined(lines: list[dict]) -> dict:
    """The subsets' figures together (each line: a subset's metrics and `scored`, per method its series
    and points). `point_average`: each metric's mean over every forecast point of every subset, i.e.
    the subsets' figures weighted by their points (M3's published 'Average'); `series_weighted`: weighted
    by their series. A method missing from a subset is in neither. Every point of M3 is scored by every
    metric (no zero actual, no series with a zero MASE scale), so the points counted are each metric's."""
    point, series = {}, {}
    for method, prefix in _methods(lines[0]):
        if not all(method in line["scored"] for line in lines):
            continue
        weights = {kind: np.array([line["scored"][method][kind] for line in lines], dtype="float64") for kind in ("points", "series")}
        for metric in METRICS:
            values = np.array([line[prefix + metric] for line in lines], dtype="float64")
            point[prefix + metric] = float(np.sum(values * weights["points"]) / np.sum(weights["points"]))
            series[prefix + metric] = float(np.sum(values * weights["series"]) / np.sum(weights["series"]))
    model = [line["scored"]["model"] for line in lines]
    return {
        "dataset": "m3-all",
        "subsets": [line["dataset"].removeprefix("m3-") for line in lines],
        "series": sum(count["series"] for count in model),
        "points": sum(count["points"] for count in model),
        "point_average": rounded(point),
        "series_weighted": rounded(series),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(Path(__file__).resolve().parent.parent / "forecasting.toml"))
    parser.add_argument(
        "--subset", choices=[*sorted(M3_PROTOCOL), "all"], default=None,
        help="M3 subset, or all four and their averages (default: monthly with --model monthly)",
    )
    parser.add_argument("--model", default=None, help="a model of --config (default: monthly without --subset; with it, derived defaults)")
    parser.add_argument("--seed", type=int, default=None, help="base seed (default: the config's)")
    parser.add_argument("--series", type=int, default=None, help="score this many series spread over the subset (default: all; per subset with all)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="override a model key, e.g. ensemble.members=3")
    parser.add_argument("--no-statsforecast", action="store_true", help="leave AutoETS and Theta out even when statsforecast is installed")
    parser.add_argument(
        "--per-series", default=None, metavar="PARQUET",
        help="write each series' sMAPE and MASE per method (the network alone too) and its traits, for benchmarks.diagnosis",
    )
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)
    if args.subset is None:
        args.subset, args.model = "monthly", args.model or "monthly"
    if args.subset == "all" and args.model is not None:
        parser.error("--subset all runs the derived defaults of each subset: leave --model out")
    subsets = SUBSETS if args.subset == "all" else (args.subset,)
    configs = {subset: _model_config(parser, args, subset) for subset in subsets}  # every config checked before any training
    lines, per_series = [], []
    for subset in subsets:
        lines.append(run_subset(args, subset, configs[subset], per_series))
        print(json.dumps(rounded(lines[-1])), flush=True)
    if args.per_series:
        pd.concat(per_series, ignore_index=True).to_parquet(args.per_series, index=False)
    if len(lines) > 1:
        print(json.dumps(combined(lines)))
    return 0


def _model_config(parser: argparse.ArgumentParser, args: argparse.Namespace, subset: str):
    from pydantic import ValidationError

    from forecasting.config.settings import ModelConfig, format_validation_error

    horizon = M3_PROTOCOL[subset][0]
    data = _config_data(args, horizon)
    for item in args.set:
        _override(data, item)
    if args.seed is not None:
        data["seed"] = args.seed
    try:
        config = ModelConfig.model_validate(data)
    except ValidationError as error:
        parser.error(f"models.{args.model or subset}: {format_validation_error(error)}")
    if config.horizon != horizon:
        parser.error(f"model {args.model!r} forecasts {config.horizon} steps; M3 {subset} holds out {horizon}")
    return config


def run_subset(args: argparse.Namespace, subset: str, config, per_series: list[pd.DataFrame] | None = None) -> dict:
    """Train, forecast and score one subset beside the baselines: the subset's line, metrics unrounded
    (with `--per-series`, each series' scores and traits are appended to `per_series`)."""
    from benchmarks.classical import STATSFORECAST_MISSING, classical_forecasts, statsforecast_available
    from forecasting.evaluation.metrics import accuracy_by_step, seasonal_naive_scale
    from forecasting.model.backtesting import baseline_forecasts
    from forecasting.model.forecaster import RecurrentForecaster
    from forecasting.preparation.windows import to_series_arrays
    from forecasting.sources.datasets import M3_SUBSETS

    horizon, season = M3_PROTOCOL[subset]
    frequency = M3_SUBSETS[subset][0]
    train_part, test_part = m3_split(args.series, subset)
    arrays = to_series_arrays(train_part, [], frequency, config.calendar)

    started = time.perf_counter()
    outcome = RecurrentForecaster.fit(arrays, config, verbose=args.verbose)  # season derived from the frequency unless set
    train_seconds = time.perf_counter() - started
    forecast = outcome.forecaster.predict(arrays)
    if forecast.skipped:
        print(f"{subset}: skipped {len(forecast.skipped)} series: {dict(list(forecast.skipped.items())[:3])}", file=sys.stderr)

    # MASE's scale and seasonal naive use M3's own period for the subset (the published protocol).
    histories = {sid: values[:, 0] for sid, values in arrays.values.items()}
    scales = {sid: seasonal_naive_scale(history, season) for sid, history in histories.items()}
    origins = {sid: index[-1] for sid, index in arrays.timestamps.items()}
    overall = accuracy_by_step(forecast.forecasts, test_part, scales, config.intervals).set_index("step").loc[0]
    baselines = baseline_forecasts(histories, origins, horizon, season, frequency)
    frames = {"snaive": baselines["seasonal_naive"], "naive": baselines["naive"]}
    classical_seconds = None
    if not args.no_statsforecast:
        if statsforecast_available():
            started = time.perf_counter()
            frames.update(classical_forecasts(train_part, horizon, season, frequency))
            classical_seconds = round(time.perf_counter() - started, 1)
        else:
            print(STATSFORECAST_MISSING, file=sys.stderr)
    metrics, scored = _metrics(overall), {"model": _counts(overall)}
    for name, frame in frames.items():
        metrics_of, scored[name] = _scores(frame, test_part, scales, name)
        metrics.update(metrics_of)
    if args.per_series and per_series is not None:
        from dataclasses import replace

        from benchmarks.diagnosis import series_scores

        network = replace(outcome.forecaster, blend_weights={}).predict(arrays).forecasts  # the network alone: the job before the blend
        methods = {"model": forecast.forecasts, "network": network, **frames}
        per_series.append(series_scores(subset, methods, test_part, histories, scales, season))
    return {
        "dataset": f"m3-{subset}",
        "series": int(overall["series"]),
        **metrics,
        **{f"coverage_{level}": round(float(overall[f"coverage_{level}"]), 2) for level in config.intervals},
        "scored": scored,
        "train_seconds": round(train_seconds, 1),
        "classical_seconds": classical_seconds,
        "best_epoch": outcome.report.best_epoch,
        "val_smape": round(outcome.report.metrics["val_smape_model"], 3),
        "blend_weights": dict(outcome.forecaster.blend_weights),
        "holdout": {key.removeprefix("holdout_"): round(value, 4) for key, value in outcome.report.metrics.items() if key.startswith("holdout_")},
        "config": outcome.forecaster.config.model_dump(mode="json", exclude={"schedule", "tuning", "fine_tune", "promotion"}),
    }


if __name__ == "__main__":
    sys.exit(main())
