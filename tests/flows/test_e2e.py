"""End to end against a real Prefect server: scheduled and manual runs, no overlap, deploy from YAML."""

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
from tests.support.data import synthetic_frame, write_config
from tests.support.processes import stop, wait_for

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


@pytest.fixture
def project(tmp_path):
    """A config with model `tiny` retraining every minute, its schema and 8 series loaded."""
    write_config(tmp_path, "sqlite:///e2e.db", model={"schedule": {"timezone": "UTC", "retrain": "* * * * *"}})
    settings = load_settings(tmp_path / "forecasting.toml")
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame())
    return tmp_path, settings, engine


def runs(engine):
    with engine.connect() as connection:
        return pd.read_sql(sa.text("SELECT * FROM runs ORDER BY started_at"), connection, parse_dates=["started_at", "finished_at"])


def test_serve_runs_scheduled_and_manual_runs_one_at_a_time(prefect_env, project):
    folder, settings, engine = project
    serve_log = open(folder / "serve.log", "w")
    serving = subprocess.Popen(
        [str(BIN / "forecasting"), "serve"], cwd=folder, env=prefect_env, stdout=serve_log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        done = lambda trigger: lambda: (lambda r: r[(r.trigger == trigger) & (r.status == "completed")])(runs(engine)).shape[0]  # noqa: E731
        wait_for(done("scheduled"), 180, "a scheduled run to complete")
        scheduled = runs(engine).query("trigger == 'scheduled'").iloc[0]
        assert scheduled.deployment == "tiny-retrain" and scheduled["mode"] == "retrain" and scheduled.flow_run_id
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT COUNT(*) FROM forecasts")).scalar_one() == 48
        assert len(read_forecasts(settings.storage_root, "tiny")) == 48

        manual = subprocess.run(
            [str(BIN / "prefect"), "deployment", "run", "forecast-pipeline/tiny-forecast", "--param", "model=tiny"],
            env=prefect_env, capture_output=True, text=True, timeout=60,
        )
        assert manual.returncode == 0, manual.stderr
        wait_for(done("manual"), 120, "the manual run to complete")
        assert runs(engine).query("trigger == 'manual'").iloc[0].deployment == "tiny-forecast"

        before = len(runs(engine))
        both = [
            subprocess.Popen([str(BIN / "prefect"), "deployment", "run", name], env=prefect_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name in ("forecast-pipeline/tiny-auto", "forecast-pipeline/tiny-fine-tune")
        ]
        for process in both:
            assert process.wait(60) == 0
        wait_for(lambda: runs(engine).query("trigger == 'manual' and status != 'running'").shape[0] >= 3, 180, "both manual runs to finish")
        assert len(runs(engine)) >= before + 2
        # Runs finished while serving; one the every-minute schedule starts later is cut off by the stop below.
        all_runs = runs(engine)
    finally:
        stop(serving)
        serve_log.close()
    finished = all_runs[all_runs.status != "running"].sort_values("started_at")
    assert set(finished.status) == {"completed"}, finished[["deployment", "status", "error"]].to_string()
    for earlier, later in zip(finished.itertuples(), finished.iloc[1:].itertuples()):
        assert earlier.finished_at <= later.started_at, "two runs of one model overlapped"
    with engine.connect() as connection:
        total, distinct = connection.execute(
            sa.text("SELECT COUNT(*), COUNT(DISTINCT model_name || series_id || forecast_origin || target_ts) FROM forecasts")
        ).one()
    assert total == distinct
    parquet = read_forecasts(settings.storage_root, "tiny")
    assert len(parquet) == total and not parquet.duplicated(["series_id", "forecast_origin", "target_ts"]).any()


def test_generated_prefect_yaml_deploys_and_redeploying_keeps_one_schedule(prefect_env, project):
    # Issue 27.5: the config in its own folder outside the clone, `prefect deploy` run from yet another folder.
    folder, settings, _ = project
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    prefect_file = folder / "deployments" / "prefect.yaml"
    prefect_file.parent.mkdir()
    prefect_file.write_text(render_prefect_yaml(settings, folder / "forecasting.toml", prefect_file))
    pool = subprocess.run(
        [str(BIN / "prefect"), "work-pool", "create", "forecasting", "--type", "process", "--overwrite"],
        env=prefect_env, capture_output=True, text=True, timeout=60,
    )
    assert pool.returncode == 0, pool.stderr
    for _ in range(2):
        deploy = subprocess.run(
            [str(BIN / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file", str(prefect_file)],
            cwd=elsewhere, env=prefect_env, capture_output=True, text=True, timeout=180,
        )
        assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
        assert "FutureWarning" not in deploy.stdout + deploy.stderr  # none about `schedules: []`
    script = """
import asyncio
from prefect.client.orchestration import get_client
async def main():
    async with get_client() as client:
        for name in ("tiny-retrain", "tiny-forecast", "tiny-tune"):
            d = await client.read_deployment_by_name(("tune-model" if name.endswith("tune") else "forecast-pipeline") + "/" + name)
            print(name, len(d.schedules), [s.slug for s in d.schedules], d.enforce_parameter_schema,
                  d.global_concurrency_limit.limit, d.concurrency_options.collision_strategy.value, d.work_pool_name, d.entrypoint, d.parameters.get("mode"))
        print("pull", d.pull_steps[0]["prefect.deployments.steps.set_working_directory"]["directory"], d.parameters["config"])
asyncio.run(main())
"""
    listing = subprocess.run([sys.executable, "-c", script], env=prefect_env, capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    lines = dict(line.split(" ", 1) for line in listing.stdout.strip().splitlines())
    assert lines["pull"] == f"{folder} {folder / 'forecasting.toml'}"  # the config's folder, not where deploy ran
    assert lines["tiny-retrain"].startswith("1 ['tiny-retrain-schedule'] True 1 ENQUEUE forecasting flows.forecast_pipeline.forecast_pipeline retrain")
    assert lines["tiny-forecast"].startswith("0 [] True 1 ENQUEUE forecasting flows.forecast_pipeline.forecast_pipeline forecast")
    assert lines["tiny-tune"].startswith("0 [] True 1 ENQUEUE forecasting flows.tune_model.tune_model")
