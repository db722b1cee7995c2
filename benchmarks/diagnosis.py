"""Where the model loses against the classical methods on M3: each series' scores by trait.

    python -m benchmarks.m3 --subset all --per-series per_series.parquet   (writes the per-series file)
    python -m benchmarks.diagnosis per_series.parquet [more.parquet ...]

For every subset and trait (history length, trend strength, seasonal strength, scale, share of
zeros), the series are split into three equal-count groups and each group's mean sMAPE and MASE is
printed for the model, the network alone (the job before the blend), AutoETS, Theta and seasonal
naive, with the share of the group's series where the model's sMAPE is worse than AutoETS's. One
JSON line per (subset, trait, group); `--markdown` prints the tables for benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pandas as pd

TRAITS = ("length", "trend", "seasonality", "scale", "zeros")
GROUPS = ("low", "mid", "high")


def traits(history: np.ndarray, season: int) -> dict[str, float]:
    """A history's length, trend strength (R² of a straight line), seasonal strength (the share of
    variance the season's mean profile explains after the trend is removed), scale (mean level) and
    share of zeros."""
    values = np.asarray(history, dtype="float64")
    values = values[np.isfinite(values)]
    time = np.arange(len(values))
    fitted = np.polyval(np.polyfit(time, values, 1), time) if len(values) > 1 else values
    total = float(np.var(values)) if len(values) > 1 else 0.0
    trend = 1 - float(np.var(values - fitted)) / total if total > 0 else 0.0
    residual = values - fitted
    seasonal = 0.0
    if season > 1 and len(values) >= 2 * season and np.var(residual) > 0:
        profile = pd.Series(residual).groupby(time % season).transform("mean").to_numpy()
        seasonal = float(np.var(profile) / np.var(residual))
    return {"length": float(len(values)), "trend": trend, "seasonality": seasonal, "scale": float(np.mean(np.abs(values))), "zeros": float(np.mean(values == 0))}


def series_scores(subset: str, methods: dict[str, pd.DataFrame], test_part: pd.DataFrame, histories: dict[str, np.ndarray], scales: dict[str, float], season: int) -> pd.DataFrame:
    """One row per series: its traits and, per method (long frames of series_id, target_ts, yhat), its sMAPE and MASE."""
    actual = test_part.rename(columns={"ts": "target_ts", "value": "actual"})[["series_id", "target_ts", "actual"]]
    rows = pd.DataFrame([{"subset": subset, "series_id": sid, **traits(history, season)} for sid, history in histories.items()])
    for name, frame in methods.items():
        joined = frame[["series_id", "target_ts", "yhat"]].merge(actual, on=["series_id", "target_ts"])
        error = (joined["actual"] - joined["yhat"]).abs()
        joined["smape"] = np.where((joined["actual"].abs() + joined["yhat"].abs()) == 0, 0.0, 200 * error / (joined["actual"].abs() + joined["yhat"].abs()))
        joined["mase"] = error / joined["series_id"].map(scales)
        scored = joined.groupby("series_id")[["smape", "mase"]].mean().add_prefix(f"{name}_")
        rows = rows.merge(scored, left_on="series_id", right_index=True, how="left")
    return rows


def diagnosis(frame: pd.DataFrame) -> list[dict]:
    """Per subset, trait and tercile of that trait: the mean scores of each method and how often the model loses to AutoETS."""
    methods = [name.removesuffix("_smape") for name in frame.columns if name.endswith("_smape")]
    lines = []
    for subset, part in frame.groupby("subset", sort=False):
        for trait in TRAITS:
            if part[trait].nunique() < 3:
                continue
            groups = pd.qcut(part[trait].rank(method="first"), 3, labels=GROUPS)
            for group in GROUPS:
                rows = part[groups == group]
                line = {"subset": subset, "trait": trait, "group": group, "series": len(rows),
                        "range": [round(float(rows[trait].min()), 3), round(float(rows[trait].max()), 3)]}
                for name in methods:
                    line[f"{name}_smape"] = round(float(rows[f"{name}_smape"].mean()), 3)
                    line[f"{name}_mase"] = round(float(rows[f"{name}_mase"].mean()), 4)
                if "ets_smape" in rows:
                    line["model_worse_than_ets"] = round(float((rows["model_smape"] > rows["ets_smape"]).mean()), 3)
                lines.append(line)
    return lines


def markdown(lines: list[dict]) -> str:
    """The lines as one table: subset, trait and group, then sMAPE / MASE per method."""
    methods = [key.removesuffix("_smape") for key in lines[0] if key.endswith("_smape")]
    header = ["subset", "trait (range)", "series", *methods, "model worse than AutoETS"]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for line in lines:
        cells = [line["subset"], f"{line['trait']} {line['group']} ({line['range'][0]:g}-{line['range'][1]:g})", str(line["series"])]
        cells += [f"{line[f'{name}_smape']:.2f} / {line[f'{name}_mase']:.3f}" for name in methods]
        cells.append(f"{100 * line.get('model_worse_than_ets', float('nan')):.0f}%")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="per-series files written by benchmarks.m3 --per-series")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table instead of JSON lines")
    args = parser.parse_args(argv)
    frame = pd.concat([pd.read_parquet(path) for path in args.files], ignore_index=True)
    # Several files (seeds) of the same series: their scores averaged per series.
    frame = frame.groupby(["subset", "series_id"], sort=False).mean(numeric_only=True).reset_index()
    lines = diagnosis(frame)
    if args.markdown:
        print(markdown(lines))
    else:
        for line in lines:
            print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
