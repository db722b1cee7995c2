"""Issue 16: two Prefect process workers in separate temporary working folders, sharing only PostgreSQL
and an S3 server: a retrain runs on one, a forecast-only run on the other uses the first's artifact."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting.config.settings import SourceConfig, load_settings
from forecasting.sources.database import create_db_engine
from forecasting.config.deployments import render_prefect_yaml
from forecasting.sources.loading import load_observations
from forecasting.sources.schema import migrate
from forecasting.publishing.forecast_dataset import read_forecasts
from tests.support.s3 import s3_keys
from tests.support.data import synthetic_frame, write_config
from tests.support.processes import stop, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
BIN = Path(sys.executable).parent


def runs(engine):
    with engine.connect() as connection:
        return pd.read_sql(sa.text("SELECT * FROM runs ORDER BY started_at"), connection)


def start_worker(folder, env, name):
    log = open(folder / "worker.log", "w")
    process = subprocess.Popen(
        [str(BIN / "prefect"), "worker", "start", "--pool", "forecasting", "--name", name],
        cwd=folder, env={**env, "FORECASTING_CONFIG": str(folder / "forecasting.toml")},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    return process, log


def test_two_workers_share_only_postgresql_and_the_bucket(prefect_env, postgres_admin_url, s3_root, tmp_path, monkeypatch):  # noqa: F811
    from tests.support.postgres_server import create_database

    database = create_database(postgres_admin_url)
    env = {**prefect_env, "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_WORKER_PREFETCH_SECONDS": "2", "FORECASTING_STORAGE_ROOT": s3_root}
    env.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
    deployer, first, second = (tmp_path / name for name in ("deployer", "worker-1", "worker-2"))
    for folder in (deployer, first, second):
        folder.mkdir()
        write_config(folder, database)
    monkeypatch.setenv("FORECASTING_STORAGE_ROOT", s3_root)
    settings = load_settings(deployer / "forecasting.toml")
    engine = create_db_engine(database)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame())
    (deployer / "prefect.yaml").write_text(render_prefect_yaml(settings, deployer / "forecasting.toml"))
    for command in (["work-pool", "create", "forecasting", "--type", "process", "--overwrite"], ["--no-prompt", "deploy", "--all"]):
        done = subprocess.run([str(BIN / "prefect"), *command], cwd=deployer, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    def run_on(folder, name, deployment):
        worker, log = start_worker(folder, env, name)
        try:
            before = len(runs(engine))
            started = subprocess.run([str(BIN / "prefect"), "deployment", "run", deployment], env=env, capture_output=True, text=True, timeout=60)
            assert started.returncode == 0, started.stderr
            wait_for(lambda: (lambda r: len(r) > before and r.status.iloc[-1] != "running")(runs(engine)), 300, f"{deployment} on {name}")
        finally:
            stop(worker)
            log.close()
        row = runs(engine).iloc[-1]
        assert row.status == "completed", (row.error, (folder / "worker.log").read_text()[-3000:])
        return row

    retrained = run_on(first, "worker-1", "forecast-pipeline/tiny-retrain")
    assert retrained["mode"] == "retrain" and retrained.produced_version == 1 and retrained.deployment == "tiny-retrain"
    forecast = run_on(second, "worker-2", "forecast-pipeline/tiny-forecast")
    assert forecast["mode"] == "forecast" and forecast.champion_version == 1 and pd.isna(forecast.produced_version)
    assert "worker-2" in (second / "worker.log").read_text() and "tiny-forecast" not in (first / "worker.log").read_text()
    with engine.connect() as connection:
        by_run = dict(connection.execute(sa.text("SELECT run_id, count(*) FROM forecasts GROUP BY run_id")).all())
    assert by_run == {forecast.run_id: 48}  # the second run replaced the first's rows with its own
    assert len(read_forecasts(settings.storage_root, "tiny")) == 48
    keys = s3_keys(s3_root)
    assert "models/tiny/1/manifest.json" in keys and "history/observations/manifest.json" in keys
    for folder in (first, second):  # nothing of the job on either machine's disk
        left = sorted(p.name for p in folder.rglob("*") if p.name not in ("forecasting.toml", "worker.log"))
        assert left == [], left
