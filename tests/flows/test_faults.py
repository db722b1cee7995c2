"""Database faults and concurrent runs, with the throwaway PostgreSQL server and real processes."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting.config.settings import SourceConfig
from forecasting.sources.database import create_db_engine
from forecasting.sources.loading import load_observations
from forecasting.publishing.registry import load_version
from forecasting.sources.schema import migrate
from forecasting.publishing.forecast_dataset import read_forecasts
from tests.support.data import synthetic_frame
from tests.support.postgres_server import PostgresServer, create_database, find_binaries

ROOT = Path(__file__).parents[2]


def cli(config_dir, api_url, *args, env=None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FORECASTING_")}
    environment.update({"PREFECT_API_URL": api_url, "PYTHONPATH": str(ROOT), **(env or {})})
    env = environment
    return subprocess.Popen(
        [sys.executable, "-m", "forecasting", *args], cwd=config_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def prepared(settings_for, url):
    settings, path = settings_for(url)
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame())
    return settings, path, engine


def test_two_runs_started_together_take_turns(database_url, settings_for, prefect_server):
    settings, path, engine = prepared(settings_for, database_url)
    runs = [cli(path.parent, prefect_server, "run", "--model", "tiny", "--mode", "retrain") for _ in range(2)]
    for process in runs:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-2000:]
    with engine.connect() as connection:
        records = pd.read_sql(sa.text("SELECT started_at, finished_at, status FROM runs ORDER BY started_at"), connection)
        forecasts = connection.execute(sa.text("SELECT COUNT(*) FROM forecasts")).scalar_one()
        versions = connection.execute(sa.text("SELECT version FROM model_versions")).scalars().all()
    assert list(records.status) == ["completed", "completed"]
    assert pd.Timestamp(records.finished_at[0]) <= pd.Timestamp(records.started_at[1])  # one after the other
    assert forecasts == 48 and len(read_forecasts(settings.storage_root, "tiny")) == 48
    assert sorted(versions) == [1, 2] and all(load_version(engine, "tiny", v).version == v for v in versions)


@pytest.mark.postgres
def test_database_stopping_mid_run_fails_clearly_and_the_next_run_recovers(settings_for, prefect_server):
    if os.environ.get("FORECASTING_TEST_POSTGRES_URL"):
        pytest.skip("needs a server of its own to stop; runs with the throwaway server")
    server = PostgresServer(find_binaries())
    server.start()
    try:
        settings, path, engine = prepared(settings_for, create_database(server.url()))
        paused = path.parent / "paused"
        pause = {"FORECASTING_PAUSE_AT": "before-sql-write", "FORECASTING_PAUSE_FILE": str(paused), "FORECASTING_PAUSE_SECONDS": "3"}
        process = cli(path.parent, prefect_server, "run", "--model", "tiny", "--mode", "retrain", env=pause)
        deadline = time.time() + 180
        while not paused.exists() and time.time() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert paused.exists(), "the run never reached the SQL write"
        engine.dispose()
        server.stop_server()  # while the run waits just before writing forecasts
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 1
        last = stderr.strip().splitlines()[-1]
        assert last.startswith("error: the database stopped answering (") and "without leaving partial results" in last
        assert "Retry 3/3" in stderr or "Retries are exhausted" in stderr, stderr[-3000:]
        server.start_server()
        recovery = cli(path.parent, prefect_server, "run", "--model", "tiny", "--mode", "auto")
        _, stderr = recovery.communicate(timeout=300)
        assert recovery.returncode == 0, stderr[-2000:]
        with engine.connect() as connection:
            statuses = connection.execute(sa.text("SELECT status FROM runs ORDER BY started_at")).scalars().all()
            forecasts = connection.execute(sa.text("SELECT COUNT(*) FROM forecasts")).scalar_one()
        assert statuses == ["abandoned", "completed"] and forecasts == 48  # the stopped run wrote no forecasts
        assert len(read_forecasts(settings.storage_root, "tiny")) == 48
    finally:
        engine.dispose()
        server.stop()


def test_a_config_edited_during_a_run_changes_nothing_in_that_run(settings_for, prefect_server):
    # Settings are read once per flow run: a config edited while the model trains (here: the model renamed)
    # reaches only the next run, not the forecast and write tasks of this one.
    settings, path, engine = prepared(settings_for, "sqlite:///edited.db")
    paused = path.parent / "paused"
    pause = {"FORECASTING_PAUSE_AT": "training", "FORECASTING_PAUSE_FILE": str(paused), "FORECASTING_PAUSE_SECONDS": "5"}
    process = cli(path.parent, prefect_server, "run", "--model", "tiny", "--mode", "retrain", env=pause)
    deadline = time.time() + 180
    while not paused.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert paused.exists(), "the run never reached training"
    path.write_text(path.read_text().replace("[models.tiny]", "[models.renamed]"))
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-2000:]
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT status FROM runs")).scalars().all() == ["completed"]
        assert connection.execute(sa.text("SELECT COUNT(*) FROM forecasts")).scalar_one() == 48
