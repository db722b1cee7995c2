"""Issue 26: `tune`, `backtest` and `serve` killed mid-way (SIGKILL during training or between
tuning trials): the next `tune`/`backtest` completes once, without duplicate rows; a killed `serve`
leaves no process behind and the next `serve` starts."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from flows.backtest_model import backtest_model
from flows.tune_model import tune_model
from forecasting.config.settings import SourceConfig
from forecasting.sources.database import create_db_engine
from forecasting.sources.loading import load_observations
from forecasting.sources.schema import migrate
from tests.support.data import synthetic_frame
from tests.support.postgres_server import create_database
from tests.support.processes import MARK_ENV, assert_no_orphans, processes_marked, run_killed

pytestmark = [pytest.mark.slow, pytest.mark.prefect]
ROOT = Path(__file__).parents[2]
TUNE = (
    "from flows.tune_model import tune_model; import sys; "
    "tune_model(model='tiny', tuner='random', max_trials=int(sys.argv[2]), config=sys.argv[1])"
)
BACKTEST = "from flows.backtest_model import backtest_model; import sys; backtest_model(model='tiny', windows=2, config=sys.argv[1])"
TUNING = {"tuning": {"max_epochs": 2, "lookback": [12], "max_trials": 2}}


def _project(url, settings_for):
    settings, path = settings_for(url, model=TUNING)
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame())
    return settings, str(path), engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def tiny_project(request, tmp_path, settings_for):
    """The tiny model's project on SQLite and on PostgreSQL: tune and backtest are killed on both."""
    if request.param == "sqlite":
        return _project(f"sqlite:///{tmp_path / 'killed.db'}", settings_for)
    return _project(create_database(request.getfixturevalue("postgres_admin_url")), settings_for)


@pytest.fixture
def sqlite_project(tmp_path, settings_for):
    """`serve`'s processes do not depend on the database: SQLite only."""
    return _project(f"sqlite:///{tmp_path / 'killed.db'}", settings_for)


def statuses(engine, mode):
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT status FROM runs WHERE mode = :m ORDER BY started_at"), {"m": mode}).scalars().all()


@pytest.mark.parametrize("point", ["training", "tuning-trial"])
def test_killed_tune_resumes_and_stores_one_tuning_record(tiny_project, point, prefect_server):
    settings, config, engine = tiny_project
    killed, mark = run_killed(config, prefect_server, point, code=TUNE, arguments=[config, "2"])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert_no_orphans(mark)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT COUNT(*) FROM tuning_records")).scalar() == 0
    result = tune_model(model="tiny", tuner="random", max_trials=2, config=config)
    assert result["trials_completed"] == 2
    if point == "tuning-trial":  # the first trial's state was saved before the kill: only the second runs now
        assert result["trials_run_now"] == 1
    with engine.connect() as connection:
        records = pd.read_sql(sa.text("SELECT model_name, version, trials FROM tuning_records"), connection)
    assert len(records) == 1 and records.iloc[0].trials == 2 and not records.duplicated(["model_name", "version"]).any()
    assert statuses(engine, "tune") == ["abandoned", "completed"]


def test_killed_backtest_then_next_backtest_stores_its_scores_once(tiny_project, prefect_server):
    settings, config, engine = tiny_project
    killed, mark = run_killed(config, prefect_server, "training", code=BACKTEST, arguments=[config])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert_no_orphans(mark)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT COUNT(*) FROM backtests")).scalar() == 0
    result = backtest_model(model="tiny", windows=2, config=config)
    again = backtest_model(model="tiny", windows=2, config=config)  # the same backtest replaces its rows
    assert again["backtest_id"] == result["backtest_id"]
    with engine.connect() as connection:
        rows = pd.read_sql(sa.text("SELECT backtest_id, window_number, method, step FROM backtests"), connection)
    assert len(rows) == result["rows"] and not rows.duplicated().any()
    assert statuses(engine, "backtest") == ["abandoned", "completed", "completed"]


def start_serve(folder, mark, api_url=None, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORECASTING_", "PREFECT_API_URL"))}
    env.update({"PYTHONPATH": str(ROOT), MARK_ENV: mark, "PREFECT_RUNNER_POLL_FREQUENCY": "1", **extra})
    if api_url:
        env["PREFECT_API_URL"] = api_url
    log = open(folder / f"serve-{mark}.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "forecasting", "serve"], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return process, folder / f"serve-{mark}.log"


def wait_serving(process, log, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        if "being served" in text or "Runner" in text and "started" in text:
            return text
        assert process.poll() is None, text[-3000:]
        time.sleep(1)
    raise AssertionError(f"serve did not start within {timeout} s: {log.read_text()[-3000:]}")


def test_killed_serve_leaves_no_process_and_the_next_serve_starts(sqlite_project, tmp_path):
    """Killed while its own temporary Prefect server runs: neither stays; then killed while a
    deployment's flow run (a child process) trains: the run does not go on without it."""
    settings, config, engine = sqlite_project
    mark = uuid.uuid4().hex
    serving, log = start_serve(tmp_path, mark)  # no PREFECT_API_URL: serve starts its own server
    try:
        wait_serving(serving, log)
        assert len(processes_marked(mark)) >= 2, processes_marked(mark)  # serve and its temporary server
    finally:
        os.kill(serving.pid, signal.SIGKILL)
        serving.wait()
    assert_no_orphans(mark)
    again = uuid.uuid4().hex
    serving, log = start_serve(tmp_path, again)
    try:
        wait_serving(serving, log)
    finally:
        serving.send_signal(signal.SIGTERM)
        serving.wait(60)
    assert_no_orphans(again)


def test_serve_killed_during_a_flow_run_leaves_no_process(sqlite_project, tmp_path, prefect_server):
    """The flow run a deployment started is a child of `serve`: killed with it, not left training alone."""
    settings, config, engine = sqlite_project
    mark, paused = uuid.uuid4().hex, tmp_path / "paused"
    serving, log = start_serve(
        tmp_path, mark, api_url=prefect_server,
        FORECASTING_PAUSE_AT="training", FORECASTING_PAUSE_FILE=str(paused), FORECASTING_PAUSE_SECONDS="300",
    )  # fmt: skip
    try:
        wait_serving(serving, log)
        env = {**os.environ, "PREFECT_API_URL": prefect_server}
        started = subprocess.run(
            [str(Path(sys.executable).parent / "prefect"), "deployment", "run", "forecast-pipeline/tiny-retrain"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert started.returncode == 0, started.stdout + started.stderr
        deadline = time.monotonic() + 300
        while not paused.exists():
            assert time.monotonic() < deadline and serving.poll() is None, log.read_text()[-3000:]
            time.sleep(1)
        assert len(processes_marked(mark)) >= 2  # serve and the flow run it started
    finally:
        os.kill(serving.pid, signal.SIGKILL)
        serving.wait()
    assert_no_orphans(mark)
    assert statuses(engine, "retrain") == ["running"]  # marked abandoned by the next run of the model
    again = uuid.uuid4().hex
    serving, log = start_serve(tmp_path, again, api_url=prefect_server)
    try:
        wait_serving(serving, log)
    finally:
        serving.send_signal(signal.SIGTERM)
        serving.wait(60)
    assert_no_orphans(again)
