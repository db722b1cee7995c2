"""Forecast writes to PostgreSQL: the bulk path (COPY + one INSERT ... ON CONFLICT) against plain
executemany upserts, same rows, same run.

    .venv/bin/python -m benchmarks.forecast_writes [--series 1428] [--horizon 18] [--repeats 3] [--url URL]

Without --url (or $FORECASTING_TEST_POSTGRES_URL) it starts a throwaway PostgreSQL server the way
the tests do. Each repeat writes into an empty table (inserts) and then again (updates of every
row). Prints one JSON line per measurement and a summary with rows/s and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import pandas as pd
import sqlalchemy as sa

from forecasting.sources.database import create_db_engine, frame_to_rows, upsert, upsert_frame
from forecasting.sources.tables import FORECAST_KEY
from forecasting.sources.schema import migrate


def forecast_rows(series: int, horizon: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    origin = pd.Timestamp("2025-12-01")
    ids = np.repeat([f"N{i:04d}" for i in range(series)], horizon)
    steps = np.tile(np.arange(1, horizon + 1), series)
    yhat = rng.normal(5000, 1000, series * horizon)
    return pd.DataFrame(
        {
            "model_name": "bench", "model_version": 1, "series_id": ids, "forecast_origin": origin,
            "target_ts": [origin + pd.DateOffset(months=int(s)) for s in steps], "step": steps, "yhat": yhat,
            "yhat_lower_80": yhat - 100, "yhat_upper_80": yhat + 100, "yhat_lower_95": yhat - 200, "yhat_upper_95": yhat + 200,
            "run_id": f"bench-{seed}", "created_at": pd.Timestamp("2026-01-01"),
        }
    )


def timed(engine: sa.Engine, method: str, frame: pd.DataFrame) -> float:
    started = time.perf_counter()
    with engine.begin() as connection:
        table = sa.Table("forecasts", sa.MetaData(), autoload_with=connection)
        if method == "bulk":
            upsert_frame(connection, table, frame, FORECAST_KEY)
        else:
            upsert(connection, table, frame_to_rows(frame), FORECAST_KEY)
    return time.perf_counter() - started


def run(url: str, series: int, horizon: int, repeats: int) -> None:
    engine = create_db_engine(url)
    migrate(engine)
    rates: dict[str, list[float]] = {"bulk": [], "executemany": []}
    for repeat in range(repeats):
        for method in (("bulk", "executemany") if repeat % 2 == 0 else ("executemany", "bulk")):
            with engine.begin() as connection:
                connection.execute(sa.text("DELETE FROM forecasts"))
            for phase, seed in (("insert", 1), ("update", 2)):
                frame = forecast_rows(series, horizon, seed)
                seconds = timed(engine, method, frame)
                rates[method].append(len(frame) / seconds)
                print(json.dumps({"benchmark": "forecast_writes", "method": method, "phase": phase, "rows": len(frame),
                                  "seconds": round(seconds, 4), "rows_per_second": round(len(frame) / seconds)}))
    bulk, plain = statistics.median(rates["bulk"]), statistics.median(rates["executemany"])
    print(json.dumps({"benchmark": "forecast_writes", "summary": True, "rows": series * horizon, "median_rows_per_second_bulk": round(bulk),
                      "median_rows_per_second_executemany": round(plain), "ratio_bulk_over_executemany": round(bulk / plain, 2)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1428)
    parser.add_argument("--horizon", type=int, default=18)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--url", default=os.environ.get("FORECASTING_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    if args.url:
        run(args.url, args.series, args.horizon, args.repeats)
        return
    from tests.postgres_server import throwaway_database

    with throwaway_database() as url:
        run(url, args.series, args.horizon, args.repeats)


if __name__ == "__main__":
    main()
