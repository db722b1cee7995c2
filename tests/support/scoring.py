"""Forecast errors computed from scratch with the textbook formulas, to check the job's against."""

from __future__ import annotations

import numpy as np
import pandas as pd


ORIGIN_INDEX = 29  # the forecasts are made from each series' 30th month


def forecast_frame(full: pd.DataFrame, origin_index: int, horizon: int = 6, version: int = 1, bias: float = 5.0) -> pd.DataFrame:
    """Forecasts as a run writes them: truth plus a bias, with 80/95 bands of +-8 and +-20."""
    rows = []
    for series_id, group in full.groupby("series_id"):
        values, ts = group["value"].to_numpy(), group["ts"].to_numpy()
        for step in range(1, horizon + 1):
            yhat = values[origin_index + step] + bias * (1 if step % 2 else -1)
            rows.append({
                "model_name": "tiny", "model_version": version, "series_id": series_id, "forecast_origin": ts[origin_index],
                "target_ts": ts[origin_index + step], "step": step, "yhat": yhat, "yhat_lower_80": yhat - 8, "yhat_upper_80": yhat + 8,
                "yhat_lower_95": yhat - 20, "yhat_upper_95": yhat + 20, "run_id": f"run-v{version}", "created_at": pd.Timestamp("2026-01-01"),
            })
    return pd.DataFrame(rows)


def by_hand(full: pd.DataFrame, forecasts: pd.DataFrame, season: int = 12) -> pd.DataFrame:
    """Each forecast row's errors, computed from scratch with the textbook formulas (monthly data)."""
    rows = []
    for row in forecasts.itertuples():
        series = full[full.series_id == row.series_id].set_index("ts")["value"]
        if row.target_ts not in series.index:
            continue
        actual = series[row.target_ts]
        insample = series[series.index <= row.forecast_origin].to_numpy()
        scale = np.mean(np.abs(insample[season:] - insample[:-season]))
        naive = series[row.target_ts - pd.DateOffset(months=season * int(np.ceil(row.step / season)))]
        rows.append({
            "series_id": row.series_id, "target_ts": row.target_ts, "actual": actual, "error": actual - row.yhat,
            "abs_error": abs(actual - row.yhat), "smape_term": 200 * abs(actual - row.yhat) / (abs(actual) + abs(row.yhat)),
            "scale": scale, "scaled_error": abs(actual - row.yhat) / scale,
            "inside_80": row.yhat_lower_80 <= actual <= row.yhat_upper_80, "inside_95": row.yhat_lower_95 <= actual <= row.yhat_upper_95,
            "naive_yhat": naive, "naive_abs_error": abs(actual - naive), "naive_scaled_error": abs(actual - naive) / scale,
        })
    return pd.DataFrame(rows).sort_values(["series_id", "target_ts"], ignore_index=True)
