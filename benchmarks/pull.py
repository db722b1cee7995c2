"""Pull cost: the per-series pull (`forecasting.history.ingestion`) against the previous single-watermark
pull, same data, same run.

    .venv/bin/python -m benchmarks.pull [--series 10000] [--length 60] [--backend sqlite|postgres] [--url URL]

The source table gets `--series` monthly series of `--length` months. Scenarios, in order, each
timed for both methods (each with its own history store, both from the same source table):
`first` (empty store: everything read), `append` (one new month for every series), `unchanged`
(nothing new), `append_1pct` (one new month for 1% of the series), `revise_old` (one value
revised two years back: only the new pull notices it). `old` is the previous pull's data path: one
query for rows newer than the global watermark, screening, and the merge into the store; `new` is
`steps.pull_step` plus `commit_pull` (the per-series state is written there). Prints one JSON
line per measurement and one summary line per scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from forecasting import steps
from forecasting.history import store as history
from forecasting.config.settings import Settings
from forecasting.sources.database import create_db_engine, read_observations, upsert_frame
from forecasting.sources.schema import migrate
from forecasting.preparation.validation import screen


def source_rows(series: int, months: pd.DatetimeIndex, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.repeat([f"N{i:05d}" for i in range(series)], len(months))
    return pd.DataFrame({"series_id": ids, "ts": np.tile(months.to_numpy(), series), "value": rng.normal(5000, 1000, len(ids))})


def write(engine: sa.Engine, frame: pd.DataFrame) -> None:
    with engine.begin() as connection:
        upsert_frame(connection, sa.Table("observations", sa.MetaData(), autoload_with=connection), frame, ["series_id", "ts"])


class OldPull:
    """The single-watermark pull as it was: rows newer than the newest pulled timestamp."""

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.settings, self.engine, self.watermark = settings, engine, None
        self.root = history.history_root(settings.storage_root, settings.source.table)

    def __call__(self) -> int:
        with self.engine.connect() as connection:
            frame = read_observations(connection, self.settings.source, since=self.watermark)
        if self.watermark is not None and len(frame):  # the read may include rows a little before the bound: cut exactly
            frame = frame.loc[pd.to_datetime(frame["ts"]) > pd.Timestamp(self.watermark)]
        clean = screen(frame, "MS", 0.2).clean if len(frame) else frame
        history.merge(self.root, clean)
        if len(clean):
            self.watermark = max(clean["ts"].max(), self.watermark or clean["ts"].max()).to_pydatetime()
        return len(frame)


def new_pull(settings: Settings, run: int) -> int:
    pulled = steps.pull_step(settings, f"bench-{run}")
    steps.commit_pull(settings, f"bench-{run}", pulled)
    return pulled.rows_pulled


def run(url: str, backend: str, series: int, length: int, folder: Path) -> None:
    engine = create_db_engine(url)
    migrate(engine)
    months = pd.date_range("2020-01-01", periods=length, freq="MS")
    write(engine, source_rows(series, months, 0))
    settings = {
        method: Settings.model_validate({"database": {"url": url}, "storage": {"root": str(folder / method)}, "source": {"frequency": "MS"}, "models": {}})
        for method in ("old", "new")
    }
    old = OldPull(settings["old"], engine)
    step = [0]

    def measure(scenario: str) -> None:
        seconds = {}
        for method in ("old", "new"):
            step[0] += 1
            started = time.perf_counter()
            rows = old() if method == "old" else new_pull(settings["new"], step[0])
            seconds[method] = time.perf_counter() - started
            stored = history.read(history.history_root(settings[method].storage_root, "observations"), columns=["series_id", "ts"])
            print(json.dumps({"benchmark": "pull", "backend": backend, "series": series, "scenario": scenario, "method": method,
                              "rows_pulled": rows, "rows_stored": len(stored), "seconds": round(seconds[method], 3)}))
        print(json.dumps({"benchmark": "pull", "backend": backend, "series": series, "scenario": scenario, "summary": True,
                          "old_seconds": round(seconds["old"], 3), "new_seconds": round(seconds["new"], 3),
                          "ratio_new_over_old": round(seconds["new"] / seconds["old"], 2)}))

    measure("first")
    write(engine, source_rows(series, pd.date_range(months[-1], periods=2, freq="MS")[1:], 1))
    measure("append")
    measure("unchanged")
    later = pd.date_range(months[-1], periods=3, freq="MS")[2:]
    write(engine, source_rows(series, later, 2).iloc[: max(1, series // 100)])
    measure("append_1pct")
    with engine.begin() as connection:
        table = sa.Table("observations", sa.MetaData(), autoload_with=connection)
        revised = connection.execute(
            sa.update(table).where(table.c.series_id == "N00000", table.c.ts == months[-24].to_pydatetime()).values(value=table.c.value + 1)
        )
        assert revised.rowcount == 1
    measure("revise_old")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10000)
    parser.add_argument("--length", type=int, default=60)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--url", default=None, help="a database to use instead (PostgreSQL: an empty database)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.url:
            run(args.url, args.backend, args.series, args.length, Path(folder))
        elif args.backend == "sqlite":
            run(f"sqlite:///{Path(folder) / 'bench.db'}", "sqlite", args.series, args.length, Path(folder))
        else:
            from tests.postgres_server import throwaway_database

            with throwaway_database() as url:
                run(url, "postgres", args.series, args.length, Path(folder))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
