"""Cold start: new daily series with 2-3 weeks of history among series with a year of it.

    .venv/bin/python -m benchmarks.cold_start [--established 30] [--new 8] [--epochs 15] [--seed 0]

Synthetic daily series (a level per series, a shared weekly shape with its own amplitude, a mild trend,
noise); the new ones are the same kind of series, started 14 to 21 days before the forecast origin.
A model whose config names only the horizon (14 days; lookback and the rest derived) is trained three
times: on every series (this code: the new series leave the lookback alone and are forecast, padded
where shorter than it), on the established series alone, and on every series with the lookback the
rule before (the 5th percentile of all lengths minus the horizon) derives. Each forecasts the next
14 days. Prints one JSON line per training and a summary line:

- `new_*`: the new series' MAE and sMAPE with the cold-start path, beside seasonal naive (their last
  week repeated) and their mean over the last week; the ratio to the best of those (below 1: better);
- `established_ratio_*`: the established series' MAE and sMAPE trained with the new series over
  without them (about 1: not hurt), and the rule before with them over without them.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from forecasting.config.settings import ModelConfig, SourceConfig
from forecasting.evaluation.metrics import coverage, mae, seasonal_naive_forecast, smape
from forecasting.model.defaults import SHORT_SERIES_QUANTILE, preferred_lookback
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.preparation.windows import build_arrays

HORIZON = 14
CALENDAR = True
ORIGIN = pd.Timestamp("2024-06-30")
WEEKLY = np.array([0.85, 0.9, 0.95, 1.0, 1.1, 1.3, 0.9])  # a store's week: Friday and Saturday busiest


def store_frame(established: int, new: int, seed: int) -> pd.DataFrame:
    """Daily series (long format) through ORIGIN + HORIZON: `established` with a year before the origin, `new` with 14-21 days."""
    rng = np.random.default_rng(seed)
    parts = []
    for index in range(established + new):
        days = 365 if index < established else int(rng.integers(14, 22))
        ts = pd.date_range(end=ORIGIN + pd.Timedelta(days=HORIZON), periods=days + HORIZON, freq="D")
        step = np.arange(len(ts))
        weekly = 1 + rng.uniform(0.6, 1.4) * (WEEKLY[ts.day_of_week] - 1)
        trend = 1 + rng.uniform(-0.1, 0.2) * step / 365
        values = rng.uniform(50, 500) * weekly * trend * (1 + rng.normal(0, 0.05, len(ts)))
        kind = "E" if index < established else "N"
        parts.append(pd.DataFrame({"series_id": f"{kind}{index:02d}", "ts": ts, "value": values}))
    return pd.concat(parts, ignore_index=True)


def scores(forecasts: pd.DataFrame, truth: pd.DataFrame, ids: list[str]) -> dict[str, float]:
    joined = forecasts[forecasts["series_id"].isin(ids)].merge(truth, left_on=["series_id", "target_ts"], right_on=["series_id", "ts"])
    actual, predicted = joined["value"].to_numpy(), joined["yhat"].to_numpy()
    found = {"series": int(joined["series_id"].nunique()), "mae": round(mae(actual, predicted), 3), "smape": round(smape(actual, predicted), 3)}
    for level in (80, 95):
        if f"yhat_lower_{level}" in joined:
            found[f"coverage_{level}"] = round(coverage(actual, joined[f"yhat_lower_{level}"].to_numpy(), joined[f"yhat_upper_{level}"].to_numpy()), 1)
    return found


def baselines(observed: pd.DataFrame, truth: pd.DataFrame, ids: list[str]) -> dict[str, dict[str, float]]:
    """Seasonal naive (the last week repeated) and the last week's mean, for the series `ids`."""
    rows = {"seasonal_naive": [], "week_mean": []}
    for series_id in ids:
        history = observed.loc[observed["series_id"] == series_id, "value"].to_numpy()
        targets = pd.date_range(ORIGIN + pd.Timedelta(days=1), periods=HORIZON, freq="D")
        naive = seasonal_naive_forecast(history[np.newaxis, :, np.newaxis], HORIZON, 7)[0]
        for name, values in (("seasonal_naive", naive), ("week_mean", np.full(HORIZON, history[-7:].mean()))):
            rows[name].append(pd.DataFrame({"series_id": series_id, "target_ts": targets, "yhat": values}))
    return {name: scores(pd.concat(parts), truth, ids) for name, parts in rows.items()}


def old_rule_lookback(lengths: list[int]) -> int:
    """The lookback the rule before this change derived: the preferred one, capped by the 5th percentile of all lengths minus the horizon."""
    short = int(np.quantile(np.asarray(lengths), SHORT_SERIES_QUANTILE, method="lower"))
    return max(2, min(preferred_lookback(HORIZON, 7), short - HORIZON))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--established", type=int, default=30)
    parser.add_argument("--new", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frame = store_frame(args.established, args.new, args.seed)
    observed, truth = frame[frame["ts"] <= ORIGIN], frame[frame["ts"] > ORIGIN]
    established = sorted(s for s in observed["series_id"].unique() if s.startswith("E"))
    new = sorted(s for s in observed["series_id"].unique() if s.startswith("N"))
    base = {"horizon": HORIZON, "layers": [{"units": 32}], "learning_rate": 0.005, "epochs": args.epochs, "patience": 4, "min_epochs": 0,
            "calendar": CALENDAR, "refit": False, "seed": args.seed, "intervals": [80, 95], "ensemble": {"members": 1}}
    lengths = observed.groupby("series_id").size().tolist()
    runs = {"with_new": (observed, {}), "without_new": (observed[observed["series_id"].isin(established)], {}),
            "rule_before": (observed, {"lookback": old_rule_lookback(lengths)})}
    results = {}
    for name, (data, extra) in runs.items():
        started = time.perf_counter()
        arrays = build_arrays(data, data.iloc[:0], SourceConfig(frequency="D"), "D", calendar=CALENDAR)
        outcome = RecurrentForecaster.fit(arrays, ModelConfig.model_validate({**base, **extra}))
        result = outcome.forecaster.predict(arrays)
        forecasts = result.forecasts
        methods = forecasts.groupby("method")["series_id"].nunique().to_dict()
        results[name] = {"established": scores(forecasts, truth, established), "new": scores(forecasts, truth, new)}
        by_method = forecasts[forecasts["series_id"].isin(new)].groupby("method")["series_id"].unique()
        results[name]["new_by_method"] = {method: scores(forecasts, truth, list(ids)) for method, ids in by_method.items()}
        print(json.dumps({"benchmark": "cold_start", "training": name, "lookback": outcome.forecaster.lookback, "methods": methods,
                          "skipped": len(result.skipped), "epochs_run": outcome.report.epochs_run,
                          "seconds": round(time.perf_counter() - started, 1), **results[name]}))
    simple = baselines(observed, truth, new)
    best = min(simple, key=lambda name: simple[name]["mae"])
    with_new, without = results["with_new"], results["without_new"]
    print(json.dumps({
        "benchmark": "cold_start", "summary": True, "established": len(established), "new": len(new),
        "new_lengths": sorted(int(n) for n in observed[observed["series_id"].isin(new)].groupby("series_id").size()),
        "new_cold_start": with_new["new"], "new_baselines": simple, "best_baseline": best,
        "new_mae_ratio_to_best_baseline": round(with_new["new"]["mae"] / simple[best]["mae"], 3),
        "new_smape_ratio_to_best_baseline": round(with_new["new"]["smape"] / simple[best]["smape"], 3),
        "established_ratio_mae": round(with_new["established"]["mae"] / without["established"]["mae"], 3),
        "established_ratio_smape": round(with_new["established"]["smape"] / without["established"]["smape"], 3),
        "rule_before_established_ratio_mae": round(results["rule_before"]["established"]["mae"] / without["established"]["mae"], 3),
        "rule_before_new_series_forecast": results["rule_before"]["new"]["series"],
    }))


if __name__ == "__main__":
    main()
