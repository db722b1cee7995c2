"""Issue 16: everything the job keeps on an object store (a real S3 API served locally by moto) with
PostgreSQL: the key flows, killed runs, and nothing left on the local disk."""

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
from forecasting.publishing.registry import load_version, promote, rollback
from forecasting.sources.schema import migrate
from forecasting.publishing.forecast_dataset import read_forecasts
from tests.support.s3 import s3_keys
from tests.support.data import synthetic_frame

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("prefect_server")]
ROOT = Path(__file__).parents[2]
RUN = (
    "from flows.forecast_pipeline import forecast_pipeline; import sys; "
    "forecast_pipeline(model='tiny', mode=sys.argv[2], config=sys.argv[1], full_refresh=sys.argv[3] == 'refresh')"
)


@pytest.fixture
def on_s3(postgres_admin_url, s3_root, settings_for, monkeypatch, tmp_path):
    """A project whose storage root is a fresh bucket (FORECASTING_STORAGE_ROOT) and whose database is a
    fresh PostgreSQL database, run from an empty working folder; observations loaded."""
    from tests.support.postgres_server import create_database

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FORECASTING_STORAGE_ROOT", s3_root)
    settings, path = settings_for(create_database(postgres_admin_url), model={"tuning": {"max_epochs": 2, "lookback": [12], "max_trials": 1}})
    assert str(settings.storage_root) == s3_root
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame())
    return settings, str(path), engine, s3_root


def local_files(tmp_path):
    """What the job left in the working folder (the config is ours)."""
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.name != "forecasting.toml")


def test_retrain_forecast_fine_tune_rollback_and_backtest_keep_everything_in_the_bucket(on_s3, tmp_path):
    from flows.backtest_model import backtest_model

    settings, config, engine, root = on_s3
    first = forecast_pipeline(model="tiny", mode="retrain", config=config)
    assert first["produced_version"] == 1 and first["rows_parquet"] == 48
    assert first["models"] == f"{root}/models/tiny" and first["parquet"] == f"{root}/forecasts"
    again = forecast_pipeline(model="tiny", mode="forecast", config=config)
    assert again["champion_version"] == 1 and again["rows_sql"] == again["rows_parquet"] == 48
    new = synthetic_frame(length=49)
    load_observations(engine, SourceConfig(), new[(new.ts == "2024-01-01") & new.series_id.isin(["S00", "S01"])])
    tuned = forecast_pipeline(model="tiny", mode="fine-tune", config=config)
    assert tuned["produced_version"] == 2 and tuned["training"]["parent_version"] == 1
    if tuned["champion_version"] != 2:  # the promotion gate kept v1: promote by hand to roll back below
        promote(engine, "tiny", 2)
    assert rollback(engine, "tiny") == (2, 1)
    after = forecast_pipeline(model="tiny", mode="forecast", config=config)
    assert after["champion_version"] == 1 and after["rows_sql"] == 48
    backtest = backtest_model(model="tiny", windows=1, config=config)
    assert backtest["rows"] > 0

    keys = s3_keys(root)
    for version in (1, 2):
        assert {f"models/tiny/{version}/{name}" for name in ("manifest.json", "model.keras", "series.parquet")} <= set(keys)
        assert load_version(engine, "tiny", version).version == version  # checksummed, from the bucket
    assert "history/observations/manifest.json" in keys and any(k.startswith("history/observations/g-") for k in keys)
    assert {k.split("/")[2] for k in keys if k.startswith("forecasts/")} == {"origin_date=2023-12-01", "origin_date=2024-01-01"}
    assert not [k for k in keys if k.startswith("staging/") or k.endswith(".tmp") or "/.probe-" in k]
    assert "reports/tiny/latest.html" in keys  # the run's HTML report is an object in the bucket too
    assert len(read_forecasts(settings.storage_root, "tiny")) == 48 + 2 * 6
    with engine.connect() as connection:
        paths = connection.execute(sa.text("SELECT artifact_path FROM model_versions ORDER BY version")).scalars().all()
    assert paths == [f"{root}/models/tiny/1", f"{root}/models/tiny/2"]
    assert local_files(tmp_path) == []


def test_interrupted_search_state_lives_in_the_bucket_and_resumes(on_s3, tmp_path):
    from flows.tune_model import tune_model

    settings, config, engine, root = on_s3
    first = tune_model(model="tiny", tuner="random", max_trials=1, config=config)
    assert first["trials_completed"] == 1 and first["directory"].startswith(f"{root}/tuning/tiny/random-")
    prefix = first["directory"][len(root) + 1:]
    assert f"{prefix}/oracle.json" in s3_keys(root)
    # The next search starts in a new local scratch folder: only the bucket can tell it what ran.
    second = tune_model(model="tiny", tuner="random", max_trials=2, config=config)
    assert second["directory"] == first["directory"]
    assert (second["trials_completed"], second["trials_run_now"]) == (2, 1)
    assert len({k.split("/")[3] for k in s3_keys(root) if k.startswith(prefix + "/trial_")}) == 2
    assert local_files(tmp_path) == []


def run_killed(config, api_url, point, mode="retrain", full_refresh=False):
    env = {**os.environ, "PREFECT_API_URL": api_url, "FORECASTING_KILL_AT": point, "PYTHONPATH": str(ROOT)}
    arguments = [sys.executable, "-c", RUN, config, mode, "refresh" if full_refresh else "incremental"]
    return subprocess.run(arguments, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("point", ["pull", "artifact-upload", "artifact-registration", "parquet-write"])
def test_killed_run_leaves_no_half_object_and_no_row_without_its_artifact(on_s3, point, prefect_server):
    settings, config, engine, root = on_s3
    killed = run_killed(config, prefect_server, point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    keys = s3_keys(root)
    with engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT version FROM model_versions")).scalars().all()
    for version in versions:  # a registry row only once its artifact is complete
        assert load_version(engine, "tiny", version).version == version
    if point in ("pull", "artifact-upload"):
        assert versions == []
    if point == "artifact-upload":  # a half-uploaded version has no manifest, so no reader takes it
        assert any(k.startswith("models/tiny/1/") for k in keys) and "models/tiny/1/manifest.json" not in keys
    assert read_forecasts(settings.storage_root, "tiny").empty  # no partition was put before the kill
    summary = forecast_pipeline(model="tiny", mode="auto", config=config)
    assert summary["rows_sql"] == summary["rows_parquet"] == 48
    parquet = read_forecasts(settings.storage_root, "tiny")
    assert len(parquet) == 48 and not parquet.duplicated(["series_id", "forecast_origin", "target_ts"]).any()
    with engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT version FROM model_versions")).scalars().all()
        statuses = connection.execute(sa.text("SELECT status FROM runs ORDER BY started_at")).scalars().all()
    assert statuses == ["abandoned", "completed"]
    for version in versions:
        assert load_version(engine, "tiny", version).version == version
    keys = s3_keys(root)
    version_folders = {k.split("/")[2] for k in keys if k.startswith("models/tiny/")}
    assert all(f"models/tiny/{v}/manifest.json" in keys for v in version_folders)  # the half upload was removed
    assert not [k for k in keys if k.startswith("staging/")]
    assert history.status(history.history_root(settings.storage_root, "observations")) == "complete"


def test_killed_full_refresh_keeps_the_history_store_in_the_bucket(on_s3, prefect_server):
    settings, config, engine, root = on_s3
    forecast_pipeline(model="tiny", mode="retrain", config=config)
    store = history.history_root(settings.storage_root, "observations")
    before, generation = history.read(store), history.manifest(store)["generation"]
    killed = run_killed(config, prefect_server, "rebuild-swap", mode="forecast", full_refresh=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert history.status(store) == "complete" and history.manifest(store)["generation"] == generation
    pd.testing.assert_frame_equal(history.read(store), before)  # the rebuild was written aside; the manifest never moved
    summary = forecast_pipeline(model="tiny", mode="forecast", config=config)
    assert (summary["series_read"], summary["rows_sql"]) == (8, 48)
    generations = {k.split("/")[2] for k in s3_keys(root) if k.startswith("history/observations/g-")}
    assert generations == {history.manifest(store)["generation"]}  # the killed rebuild's objects were removed
