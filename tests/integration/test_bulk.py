"""SQLite bulk upserts (forecasting.sources.upserts) store exactly what SQLAlchemy's row-by-row upsert stores:
timestamps in SQLAlchemy's format, NULL for missing values, replaced rows on a conflict."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting.sources.upserts import sqlite_upsert_frame
from forecasting.sources.database import create_db_engine, frame_to_rows, upsert, upsert_frame
from forecasting.errors import ConfigError
from forecasting.sources.schema import migrate
from forecasting.sources.tables import FORECAST_KEY


def forecast_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    origin = pd.Timestamp("2025-12-01")
    frame = pd.DataFrame(
        {
            "model_name": pd.Categorical(["m"] * rows), "model_version": 1,
            "series_id": pd.array([f"s{i // 3}" for i in range(rows)], dtype="string"),
            "forecast_origin": origin, "target_ts": [origin + pd.DateOffset(months=1 + i % 3) for i in range(rows)],
            "step": [1 + i % 3 for i in range(rows)], "yhat": rng.normal(size=rows),
            "yhat_lower_80": rng.normal(size=rows), "yhat_upper_80": rng.normal(size=rows),
            "yhat_lower_95": rng.normal(size=rows), "yhat_upper_95": rng.normal(size=rows),
            "run_id": f"r{seed}", "created_at": pd.Timestamp("2026-01-02 03:04:05.123456"),
        }
    )  # fmt: skip
    frame.loc[:4, "yhat_lower_80"] = np.nan
    frame.loc[2, "created_at"] = pd.NaT
    return frame


def stored(path) -> list[tuple]:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT * FROM forecasts ORDER BY series_id, target_ts").fetchall()


def test_bulk_path_stores_what_the_row_by_row_upsert_stores(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("forecasting.sources.upserts.CHUNK_ROWS", 7)  # several chunks
    results = {}
    for method in ("rows", "bulk"):
        path = tmp_path / f"{method}.db"
        engine = create_db_engine(f"sqlite:///{path}")
        migrate(engine)
        for frame in (forecast_frame(30, 1), forecast_frame(12, 2)):  # inserts, then replacements of the first 12
            frame = frame.assign(created_at=frame["created_at"].fillna(pd.Timestamp("2026-01-01")))
            with engine.begin() as connection:
                table = sa.Table("forecasts", sa.MetaData(), autoload_with=connection)
                if method == "rows":
                    upsert(connection, table, frame_to_rows(frame), FORECAST_KEY)
                else:
                    assert upsert_frame(connection, table, frame, FORECAST_KEY) == len(frame)
        results[method] = stored(path)
    assert results["bulk"] == results["rows"] and len(results["bulk"]) == 30
    assert results["bulk"][0][3] == "2025-12-01 00:00:00.000000" and results["bulk"][0][7] is None
    assert sum(row[11] == "r2" for row in results["bulk"]) == 12


def test_unknown_column_is_a_clear_error(tmp_path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'x.db'}")
    migrate(engine)
    with engine.begin() as connection, pytest.raises(ConfigError, match="has no columns"):
        table = sa.Table("forecasts", sa.MetaData(), autoload_with=connection)
        sqlite_upsert_frame(connection, table, forecast_frame(3, 1).assign(extra=1), FORECAST_KEY)
