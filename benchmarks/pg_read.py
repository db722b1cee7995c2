"""PostgreSQL reads of the source: the ADBC driver's Arrow read (`adbc`, what the pull uses when the `adbc`
extra is installed) against the driver's row tuples (`rows`, what it uses otherwise) and `pandas.read_sql`,
on the same query, in one process, alternating, with the same conversions after each (frames checked equal).
(psycopg's `COPY ... TO STDOUT (FORMAT csv)` parsed by Arrow was measured too, at 1.03x the row read for
240,000 rows and 0.66x for 1.2 M, and is not used.)

    .venv/bin/python -m benchmarks.pg_read [--series 10000] [--length 120] [--repeats 3] [--url URL]

Prints one JSON line: seconds of each read (best and all repeats), rows, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def measure(url: str, args: argparse.Namespace) -> dict:
    from benchmarks.scale import synthetic_series
    from forecasting.sources import arrow_reads as pg_copy
    from forecasting.config.settings import SourceConfig
    from forecasting.sources.database import create_db_engine, read_observations, records
    from forecasting.sources.loading import load_observations
    from forecasting.sources.schema import migrate

    engine = create_db_engine(url)
    migrate(engine)
    frame = synthetic_series(args.series, args.length)
    frame["ts"] = pd.to_datetime(frame["ts"])
    load_observations(engine, SourceConfig(), frame)
    copy_records = pg_copy.copy_records

    def rows(connection, query, names, numeric=None):
        return records(connection.execute(query), names)

    def read_sql(connection, query, names, numeric=None):
        return pd.read_sql(query, connection).set_axis(names, axis=1)

    adbc = pg_copy.adbc_available
    readers = {"adbc": copy_records, "rows": rows, "read_sql": read_sql}
    if not adbc():
        del readers["adbc"]
    seconds: dict[str, list[float]] = {name: [] for name in readers}
    frames = {}
    for _ in range(args.repeats):
        for name, reader in readers.items():
            pg_copy.copy_records = reader
            pg_copy.adbc_available = adbc if name == "adbc" else (lambda: True)  # `reader` stands in for ADBC
            try:
                started = time.perf_counter()
                with engine.connect() as connection:
                    frames[name] = read_observations(connection, SourceConfig())
                seconds[name].append(time.perf_counter() - started)
            finally:
                pg_copy.copy_records = copy_records
                pg_copy.adbc_available = adbc
    for name in readers:
        pd.testing.assert_frame_equal(frames["rows"], frames[name])
    best = {name: min(values) for name, values in seconds.items()}
    return {
        "benchmark": "pg_read", "series": args.series, "rows": len(frames["rows"]),
        "best_seconds": {k: round(v, 3) for k, v in best.items()}, "seconds": {k: [round(v, 3) for v in vs] for k, vs in seconds.items()},
        "ratios_over_rows": {name: round(best["rows"] / best[name], 2) for name in readers},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10000)
    parser.add_argument("--length", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--url", default=None, help="an empty PostgreSQL database (SQLAlchemy URL); default: a throwaway server")
    args = parser.parse_args()
    if args.url:
        print(json.dumps(measure(args.url, args)), flush=True)
        return
    sys.path.insert(0, str(ROOT))
    from tests.postgres_server import throwaway_database

    with throwaway_database() as url:
        print(json.dumps(measure(url, args)), flush=True)


if __name__ == "__main__":
    main()
