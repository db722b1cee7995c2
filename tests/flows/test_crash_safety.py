"""Kill the job (SIGKILL) at each stage; the next run completes and leaves everything consistent."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from flows.forecast_pipeline import forecast_pipeline
from forecasting.history import store as history
from forecasting.config.settings import SourceConfig
from forecasting.sources.database import create_db_engine
from forecasting.sources.loading import load_observations
from forecasting.publishing.registry import load_version
from forecasting.sources.schema import migrate
from forecasting.publishing.forecast_dataset import read_forecasts
from tests.conftest import synthetic_frame

ROOT = Path(__file__).parents[2]
RUN = (
    "from flows.forecast_pipeline import forecast_pipeline; import sys; "
    "forecast_pipeline(model='tiny', mode=sys.argv[2], config=sys.argv[1], full_refresh=sys.argv[3] == 'refresh')"
)
POINTS = ["pull", "training", "after-sql-write", "parquet-write", "artifact-registration"]
CASES = [pytest.param("sqlite", point, id=f"sqlite-{point}") for point in POINTS] + [
    pytest.param("postgres", point, id=f"postgres-{point}", marks=pytest.mark.postgres) for point in POINTS
]


# A killed `--full-refresh`: during the rebuild's bucket writes, and with the rebuilt store complete
# but not yet swapped in.
REFRESH_POINTS = ["pull", "rebuild-swap"]
REFRESH_CASES = [pytest.param("sqlite", point, id=f"sqlite-refresh-{point}") for point in REFRESH_POINTS] + [
    pytest.param("postgres", point, id=f"postgres-refresh-{point}", marks=pytest.mark.postgres) for point in REFRESH_POINTS
]


def run_in_subprocess(config, api_url, kill_at, mode="retrain", full_refresh=False):
    env = {**os.environ, "PREFECT_API_URL": api_url, "FORECASTING_KILL_AT": kill_at, "PYTHONPATH": str(ROOT)}
    arguments = [sys.executable, "-c", RUN, config, mode, "refresh" if full_refresh else "incremental"]
    return subprocess.run(arguments, env=env, capture_output=True, text=True, timeout=300)


def project(backend, request, settings_for):
    url = f"sqlite:///{Path(request.getfixturevalue('tmp_path')) / 'crash.db'}" if backend == "sqlite" else None
    if url is None:
        from tests.postgres_server import create_database

        url = create_database(request.getfixturevalue("postgres_admin_url"))
    settings, path = settings_for(url)
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame())
    return settings, path, engine


def assert_consistent(settings, engine):
    with engine.connect() as connection:
        forecasts = pd.read_sql(sa.text("SELECT series_id, forecast_origin, target_ts, yhat FROM forecasts"), connection)
        versions = connection.execute(sa.text("SELECT version FROM model_versions WHERE model_name = 'tiny'")).scalars().all()
        champion = connection.execute(sa.text("SELECT version FROM model_aliases WHERE model_name = 'tiny' AND alias = 'champion'")).scalar()
        runs = pd.read_sql(sa.text("SELECT status FROM runs"), connection)
        watermark = connection.execute(sa.text("SELECT watermark FROM ingestion_state")).scalar()
    assert len(forecasts) == 48 and not forecasts.duplicated(["series_id", "forecast_origin", "target_ts"]).any()
    parquet = read_forecasts(settings.storage_root, "tiny")
    assert len(parquet) == 48
    merged = forecasts.assign(forecast_origin=pd.to_datetime(forecasts.forecast_origin), target_ts=pd.to_datetime(forecasts.target_ts)).merge(
        parquet[["series_id", "forecast_origin", "target_ts", "yhat"]], on=["series_id", "forecast_origin", "target_ts"], suffixes=("", "_parquet")
    )
    assert len(merged) == 48 and (merged.yhat == merged.yhat_parquet).all()
    for version in versions:  # every registry row has a complete, checksummed artifact
        assert load_version(engine, "tiny", version).version == version
    assert champion in versions
    leftovers = [str(p) for p in Path(settings.storage_root).rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".tmp-")]
    assert leftovers == []
    assert list((Path(settings.storage_root) / "staging").glob("*")) == []  # the killed run's staged file is gone
    stored = history.read(history.history_root(settings.storage_root, "observations"))
    assert pd.Timestamp(watermark) == stored.ts.max() == pd.Timestamp("2023-12-01")  # never ahead of the data
    assert set(runs.status) <= {"completed", "abandoned"} and (runs.status == "completed").sum() >= 1


@pytest.mark.parametrize("backend, point", CASES)
def test_killed_run_then_next_run_leaves_everything_consistent(backend, point, request, settings_for, prefect_server):
    settings, path, engine = project(backend, request, settings_for)
    killed = run_in_subprocess(str(path), prefect_server, point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    summary = forecast_pipeline(model="tiny", mode="auto", config=str(path))
    assert summary["rows_sql"] == 48
    assert_consistent(settings, engine)
    with engine.connect() as connection:
        statuses = connection.execute(sa.text("SELECT status FROM runs ORDER BY started_at")).scalars().all()
    assert statuses == ["abandoned", "completed"]


@pytest.mark.parametrize("backend, point", REFRESH_CASES)
def test_killed_full_refresh_keeps_the_history_store(backend, point, request, settings_for, prefect_server):
    """Issue 12, point 1: a killed --full-refresh left one bucket, and the next run forecast 2 of 30 series with exit 0."""
    settings, path, engine = project(backend, request, settings_for)
    forecast_pipeline(model="tiny", mode="retrain", config=str(path))
    root = history.history_root(settings.storage_root, "observations")
    before = history.read(root)
    killed = run_in_subprocess(str(path), prefect_server, point, mode="forecast", full_refresh=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert history.status(root) == "complete"
    pd.testing.assert_frame_equal(history.read(root), before)  # the rebuild was aside; the store is as it was
    summary = forecast_pipeline(model="tiny", mode="forecast", config=str(path))
    assert (summary["series_read"], summary["series_forecast"], summary["rows_sql"]) == (8, 8, 48)
    assert_consistent(settings, engine)
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("g-")) == [history.manifest(root)["generation"]]
    with engine.connect() as connection:
        statuses = connection.execute(sa.text("SELECT status FROM runs ORDER BY started_at")).scalars().all()
    assert statuses == ["completed", "abandoned", "completed"]
