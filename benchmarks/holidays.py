"""What holiday inputs are worth: the same network trained with and without `source.holidays`, on
daily series whose sales drop on national holidays.

    .venv/bin/python -m benchmarks.holidays [--series 20] [--years 3] [--epochs 12] [--drop 0.6] [--seed 0]

Synthetic daily series (a level per series, a weekly cycle, a mild yearly cycle, noise) whose sales
fall by `--drop` of themselves on US public holidays (and by half that on the days either side).
The history ends just before the last `horizon` days of the data, which hold Christmas; both models
(the `TINY`-style config below, with calendar inputs) forecast those days from there. Prints one JSON
line per model (MAE and sMAPE over the horizon and on its holidays alone) and a summary line with
the ratios with / without holidays (below 1: the holiday inputs help).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from forecasting.config.settings import ModelConfig, SourceConfig
from forecasting.evaluation.metrics import mae, smape
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.preparation.holiday_inputs import holiday_features
from forecasting.preparation.windows import build_arrays

HORIZON = 14
END = pd.Timestamp("2024-12-31")  # the horizon: 2024-12-18 .. 12-31, Christmas inside it


def holiday_frame(series: int, years: int, drop: float, seed: int) -> pd.DataFrame:
    """Daily series (long format) whose sales drop by `drop` on US holidays, half that beside them."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(end=END, periods=365 * years + 1, freq="D")
    on, eve, after = holiday_features(ts, "D", ("US",)).T
    effect = 1 - drop * on - drop / 2 * np.clip(eve + after - on, 0, 1)
    step = np.arange(len(ts))
    parts = []
    for index in range(series):
        weekly = 1 + rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * step / 7 + rng.uniform(0, 6))
        yearly = 1 + rng.uniform(0.05, 0.2) * np.sin(2 * np.pi * step / 365.25 + rng.uniform(0, 6))
        level = rng.uniform(50, 500)
        values = level * weekly * yearly * effect * (1 + rng.normal(0, 0.03, len(ts)))
        parts.append(pd.DataFrame({"series_id": f"H{index:02d}", "ts": ts, "value": values}))
    return pd.concat(parts, ignore_index=True)


def score(forecasts: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    joined = forecasts.merge(truth, left_on=["series_id", "target_ts"], right_on=["series_id", "ts"])
    on_holiday = holiday_features(pd.DatetimeIndex(joined["ts"]), "D", ("US",))[:, 0] > 0
    actual, predicted = joined["value"].to_numpy(), joined["yhat"].to_numpy()
    return {
        "points": len(joined), "mae": mae(actual, predicted), "smape": smape(actual, predicted),
        "holiday_points": int(on_holiday.sum()), "holiday_mae": mae(actual[on_holiday], predicted[on_holiday]),
        "holiday_smape": smape(actual[on_holiday], predicted[on_holiday]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--drop", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frame = holiday_frame(args.series, args.years, args.drop, args.seed)
    origin = END - pd.Timedelta(days=HORIZON)
    observed, truth = frame[frame["ts"] <= origin], frame[frame["ts"] > origin]
    config = ModelConfig(
        cell="gru", lookback=28, horizon=HORIZON, layers=[{"units": 32}], learning_rate=0.005, epochs=args.epochs,
        patience=4, min_epochs=0, batch_size=128, calendar=True, refit=False, seed=args.seed, intervals=[80],
    )
    results = {}
    for name, holidays in (("with", ["US"]), ("without", [])):
        started = time.perf_counter()
        arrays = build_arrays(observed, observed.iloc[:0], SourceConfig(frequency="D", holidays=holidays), "D", calendar=True)
        outcome = RecurrentForecaster.fit(arrays, config)
        results[name] = score(outcome.forecaster.predict(arrays).forecasts, truth)
        print(json.dumps({"benchmark": "holidays", "holidays": holidays, "series": args.series, "years": args.years,
                          "epochs_run": outcome.report.epochs_run, "seconds": round(time.perf_counter() - started, 1), **results[name]}))
    ratios = {f"{key}_ratio": round(results["with"][key] / results["without"][key], 3) for key in ("mae", "smape", "holiday_mae", "holiday_smape")}
    print(json.dumps({"benchmark": "holidays", "summary": True, "horizon": f"{(origin + pd.Timedelta(days=1)).date()}..{END.date()}", **ratios}))


if __name__ == "__main__":
    main()
