"""Small real data and configs: monthly series, promotion series, forecast rows, a tiny model's config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa


def synthetic_frame(n_series: int = 8, length: int = 48, seed: int = 0, start: str = "2020-01-01") -> pd.DataFrame:
    """Monthly series with level, trend and yearly seasonality plus noise, in long format."""
    rng = np.random.default_rng(seed)
    parts = []
    ts = pd.date_range(start, periods=length, freq="MS")
    for index in range(n_series):
        level = rng.uniform(50, 500)
        trend = rng.uniform(-1, 2) * np.arange(length)
        season = rng.uniform(5, 40) * np.sin(2 * np.pi * np.arange(length) / 12 + rng.uniform(0, 6))
        values = level + trend + season + rng.normal(0, 3, length)
        parts.append(pd.DataFrame({"series_id": f"S{index:02d}", "ts": ts, "value": values}))
    return pd.concat(parts, ignore_index=True)


def promotion_frame(n_series: int = 8, length: int = 48, ahead: int = 6, seed: int = 0, lift: float = 0.6) -> pd.DataFrame:
    """Monthly series (level, mild seasonality, noise) whose level rises by `lift` of itself in
    promotion months (`promo` = 1, drawn at random, about one month in four), followed by `ahead`
    future rows (value empty, promo known). The last `ahead` observed... are not special: callers
    cut their own origin. Long format: series_id, ts, value, promo."""
    rng = np.random.default_rng(seed)
    parts = []
    ts = pd.date_range("2018-01-01", periods=length + ahead, freq="MS")
    for index in range(n_series):
        level = rng.uniform(50, 500)
        promo = (rng.random(length + ahead) < 0.25).astype("float64")
        season = 1 + 0.1 * np.sin(2 * np.pi * np.arange(length + ahead) / 12 + rng.uniform(0, 6))
        values = level * season * (1 + lift * promo) + rng.normal(0, 0.02 * level, length + ahead)
        values[length:] = np.nan
        parts.append(pd.DataFrame({"series_id": f"P{index:02d}", "ts": ts, "value": values, "promo": promo}))
    return pd.concat(parts, ignore_index=True)


TINY_MODEL = {
    "cell": "gru",
    "lookback": 12,
    "horizon": 6,
    "layers": [{"units": 8, "dropout": 0.1}, {"units": 4}],
    "learning_rate": 0.01,
    "epochs": 4,
    "batch_size": 64,
    "patience": 2,
    "intervals": [80, 95],
    # Pinned to the defaults these tests were written for (the defaults became mae, 0.5 and 15% of epochs).
    "loss": "mse",
    "series_weighting": 0.0,
    "min_epochs": 0,
}


def toml_value(value) -> str:
    """A Python value as an inline TOML value."""
    import json

    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def write_config(directory: Path, database_url: str, model: dict | None = None, source: dict | None = None) -> Path:
    """A forecasting.toml in `directory` with one model `tiny`."""
    import json

    model = dict(TINY_MODEL, **(model or {}))
    lines = [
        "[database]",
        f"url = {json.dumps(database_url)}",
        "[storage]",
        'root = "store"',
        "[source]",
        *(f"{key} = {json.dumps(value)}" for key, value in (source or {"frequency": "MS"}).items()),
        "[models.tiny]",
    ]
    for key, value in model.items():
        lines.append(f"{key} = {toml_value(value)}")
    path = directory / "forecasting.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def insert_promotion_rows(engine, frame: pd.DataFrame) -> None:
    """Insert a `promotion_frame` (series_id, ts, value, promo; NaN as NULL) into a source table
    `observations` that has a `promo` column."""
    rows = [
        {"s": row.series_id, "t": row.ts.to_pydatetime(), "v": None if pd.isna(row.value) else float(row.value),
         "p": None if pd.isna(row.promo) else float(row.promo)}
        for row in frame.itertuples()
    ]
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO observations (series_id, ts, value, promo) VALUES (:s, :t, :v, :p)"), rows)


def forecast_rows(series, origin, run_id, yhat=1.0, model="m", horizon=3):
    origin = pd.Timestamp(origin)
    return pd.DataFrame(
        {
            "model_name": model,
            "model_version": 1,
            "series_id": series,
            "forecast_origin": origin,
            "target_ts": [origin + pd.DateOffset(months=step) for step in range(1, horizon + 1)],
            "step": range(1, horizon + 1),
            "yhat": yhat,
            "yhat_lower_80": yhat - 1,
            "yhat_upper_80": yhat + 1,
            "run_id": run_id,
            "created_at": pd.Timestamp("2026-01-01"),
        }
    )


def pull(settings):
    """What a pipeline run does first: pull new source rows into the history store, commit the watermark."""
    from forecasting import steps

    pulled = steps.pull_step(settings, "test-pull")
    steps.commit_pull(settings, "test-pull", pulled)
    return pulled


def execute(engine, sql, **params):
    with engine.begin() as connection:
        connection.execute(sa.text(sql), params)
