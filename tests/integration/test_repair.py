"""SQL and Parquet kept together: missing, unreadable and short partitions are rebuilt from SQL."""

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
import pytest

from forecasting.sources.database import create_db_engine
from forecasting.sources.upserts import upsert_frame
from forecasting.sources.tables import FORECAST_KEY
from forecasting.publishing.repair import format_repair, repair_parquet
from forecasting.sources.schema import migrate
from forecasting.publishing.forecast_dataset import forecasts_root, read_forecasts, write_forecasts
from tests.support.data import forecast_rows


def sql_and_parquet(database_url, tmp_path, origins=("2025-10-01", "2025-11-01", "2025-12-01")):
    """Three origins of two series in SQL and in Parquet, written as a run writes them."""
    engine = create_db_engine(database_url)
    migrate(engine)
    frame = pd.concat(
        [forecast_rows(series, origin, f"r{index}", yhat=float(index), model="tiny").assign(yhat_lower_95=0.0, yhat_upper_95=9.0)
         for index, origin in enumerate(origins) for series in ("a", "b")],
        ignore_index=True,
    )
    with engine.begin() as connection:
        upsert_frame(connection, sa.Table("forecasts", sa.MetaData(), autoload_with=connection), frame, key=FORECAST_KEY)
    write_forecasts(tmp_path, frame)
    return engine, frame


def comparable(frame):
    frame = frame.drop(columns=[c for c in ("model_name", "origin_date") if c in frame])
    frame = frame.assign(**{c: pd.to_datetime(frame[c]).astype("datetime64[us]") for c in ("forecast_origin", "target_ts", "created_at")})
    return frame.sort_values(["forecast_origin", "series_id", "target_ts"]).reset_index(drop=True)[sorted(frame.columns)]


def test_nothing_to_repair_is_one_line(database_url, tmp_path):
    engine, _ = sql_and_parquet(database_url, tmp_path)
    report = repair_parquet(engine, tmp_path, "tiny", [80, 95])
    assert report.fixed == {} and report.origins_checked == 3
    text = format_repair(report, tmp_path)
    assert text.count("\n") == 0 and "matches table forecasts: 3 origin dates checked" in text and "nothing to repair" in text


def test_removed_dataset_and_truncated_or_short_partitions_are_rebuilt_from_sql(database_url, tmp_path):
    engine, frame = sql_and_parquet(database_url, tmp_path)
    before = comparable(read_forecasts(tmp_path, "tiny"))
    shutil.rmtree(forecasts_root(tmp_path))
    report = repair_parquet(engine, tmp_path, "tiny", [80, 95])
    assert report.fixed == {"2025-10-01": "missing", "2025-11-01": "missing", "2025-12-01": "missing"}
    assert report.rows_rebuilt == len(frame) == 18
    pd.testing.assert_frame_equal(comparable(read_forecasts(tmp_path, "tiny")), before)

    partitions = forecasts_root(tmp_path) / "model_name=tiny"
    truncated = partitions / "origin_date=2025-11-01" / "part-0.parquet"
    truncated.write_bytes(truncated.read_bytes()[:100])
    write_forecasts(tmp_path, frame[(frame.forecast_origin == "2025-12-01") & (frame.series_id == "a")].assign(model_name="other"))
    short = partitions / "origin_date=2025-12-01" / "part-0.parquet"
    shutil.copy(forecasts_root(tmp_path) / "model_name=other" / "origin_date=2025-12-01" / "part-0.parquet", short)
    report = repair_parquet(engine, tmp_path, "tiny", [80, 95])
    assert report.fixed == {"2025-11-01": "unreadable", "2025-12-01": "row-count mismatch (parquet 3, sql 6)"}
    pd.testing.assert_frame_equal(comparable(read_forecasts(tmp_path, "tiny")), before)
    assert repair_parquet(engine, tmp_path, "tiny", [80, 95]).fixed == {}
    assert not [p for p in forecasts_root(tmp_path).rglob(".*") if p.is_file()]

    # SQL took a rewrite of an origin (same rows, newer values) that the Parquet write missed.
    rewritten = frame[frame.forecast_origin == "2025-10-01"].assign(yhat=7.0, run_id="r9", created_at=pd.Timestamp("2026-02-01 10:11:12.131415"))
    with engine.begin() as connection:
        upsert_frame(connection, sa.Table("forecasts", sa.MetaData(), autoload_with=connection), rewritten, key=FORECAST_KEY)
    report = repair_parquet(engine, tmp_path, "tiny", [80, 95])
    assert report.fixed == {
        "2025-10-01": "stale (newest row written 2026-01-01 00:00:00 in parquet, 2026-02-01 10:11:12.131415 in sql)"
    }
    stored = read_forecasts(tmp_path, "tiny")
    assert set(stored[stored.origin_date == "2025-10-01"].yhat) == {7.0} and len(stored) == 18


def test_a_truncated_partition_does_not_block_the_next_write(tmp_path):
    frame = forecast_rows("a", "2025-12-01", "r1")
    write_forecasts(tmp_path, frame)
    target = forecasts_root(tmp_path) / "model_name=m" / "origin_date=2025-12-01" / "part-0.parquet"
    target.write_bytes(target.read_bytes()[:50])
    assert write_forecasts(tmp_path, forecast_rows("b", "2025-12-01", "r2")) == 3
    assert set(read_forecasts(tmp_path, "m").series_id) == {"b"}


@pytest.mark.slow
def test_repair_command_reports_what_it_fixed(tmp_path):
    database = tmp_path / "repair.db"
    engine, _ = sql_and_parquet(f"sqlite:///{database}", tmp_path / "store")
    config = tmp_path / "forecasting.toml"
    from tests.support.data import write_config

    write_config(tmp_path, f"sqlite:///{database}")
    shutil.rmtree(forecasts_root(tmp_path / "store") / "model_name=tiny" / "origin_date=2025-11-01")
    root = Path(__file__).parents[2]

    def repair():
        return subprocess.run(
            [sys.executable, "-m", "forecasting", "--config", str(config), "repair", "--model", "tiny"],
            cwd=tmp_path, capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        )

    fixed = repair()
    assert fixed.returncode == 0, fixed.stderr
    lines = fixed.stdout.strip().splitlines()
    assert lines[0].startswith("parquet dataset of model tiny: rebuilt 1 of 3 origin dates from table forecasts (6 rows)")
    assert lines[1:] == ["  2025-11-01: rebuilt missing"]
    again = repair()
    assert again.returncode == 0 and len(again.stdout.strip().splitlines()) == 1 and "nothing to repair" in again.stdout
    unknown = subprocess.run(
        [sys.executable, "-m", "forecasting", "--config", str(config), "repair", "--model", "nope"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_runs_rebuild_every_origin_after_the_dataset_is_removed_or_a_partition_truncated(database_url, settings_for, prefect_server):
    from flows.forecast_pipeline import forecast_pipeline
    from forecasting.config.settings import SourceConfig
    from forecasting.sources.loading import load_observations
    from forecasting.steps import format_summary
    from tests.support.data import synthetic_frame

    settings, path = settings_for(database_url)
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    frame = synthetic_frame(length=49)
    load_observations(engine, SourceConfig(), frame[frame.ts < "2024-01-01"])
    first = forecast_pipeline(model="tiny", mode="retrain", config=str(path))
    assert first["parquet_repair"]["fixed"] == {} and "parquet repaired" not in format_summary(first)
    load_observations(engine, SourceConfig(), frame)
    forecast_pipeline(model="tiny", mode="forecast", config=str(path))

    def origins():
        return read_forecasts(settings.storage_root, "tiny").groupby("origin_date").size().to_dict()

    assert origins() == {"2023-12-01": 48, "2024-01-01": 48}
    shutil.rmtree(forecasts_root(settings.storage_root))
    rebuilt = forecast_pipeline(model="tiny", mode="forecast", config=str(path))
    assert rebuilt["parquet_repair"]["fixed"] == {"2023-12-01": "missing"}
    assert "parquet repaired: 1 origins rebuilt from table forecasts (48 rows: 2023-12-01 missing)" in format_summary(rebuilt)
    assert origins() == {"2023-12-01": 48, "2024-01-01": 48}

    for day in ("2023-12-01", "2024-01-01"):
        target = forecasts_root(settings.storage_root) / "model_name=tiny" / f"origin_date={day}" / "part-0.parquet"
        target.write_bytes(target.read_bytes()[:200])
    again = forecast_pipeline(model="tiny", mode="forecast", config=str(path))
    assert again["parquet_repair"]["fixed"] == {"2023-12-01": "unreadable"}
    assert origins() == {"2023-12-01": 48, "2024-01-01": 48}
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM forecasts")).scalar() == 96
