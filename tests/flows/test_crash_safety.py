"""Kill the job (SIGKILL) at every documented kill point, on SQLite, PostgreSQL and (PostgreSQL with
an object store, a real S3 API served locally by moto) S3; the next run completes and leaves
everything consistent: no duplicate forecast keys, SQL rows = Parquet rows per origin, every
registered version complete, no unregistered version folder, no staged or temporary file, and no
process the killed run started still alive."""

import re
import signal
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
from tests.support.s3 import s3_keys
from tests.support.data import synthetic_frame
from tests.support.processes import assert_no_orphans, run_killed

ROOT = Path(__file__).parents[2]
# Every kill point of a run (forecasting/runtime/faults.py), in the order a run reaches them.
POINTS = ["pull", "training", "before-sql-write", "after-sql-write", "parquet-write", "artifact-registration"]
# Reached only with an object store: the first object of a version uploaded, the others not yet.
OBJECT_STORE_POINTS = [*POINTS, "artifact-upload"]
# Reached only by a `--full-refresh` (tested below, and on S3 in tests/flows/test_object_storage.py).
REFRESH_POINTS = ["pull", "rebuild-swap"]

# Each database and each storage once: SQLite with local storage, PostgreSQL with an object store.
# The database side and the storage side of a run do not depend on each other, so PostgreSQL with
# local storage adds nothing the two do not cover (its refresh points are killed below).
CASES = [pytest.param("sqlite", point, id=f"sqlite-{point}") for point in POINTS] + [
    pytest.param("s3", point, id=f"s3-{point}", marks=pytest.mark.postgres) for point in OBJECT_STORE_POINTS
]
REFRESH_CASES = [pytest.param("sqlite", point, id=f"sqlite-refresh-{point}") for point in REFRESH_POINTS] + [
    pytest.param("postgres", point, id=f"postgres-refresh-{point}", marks=pytest.mark.postgres) for point in REFRESH_POINTS
]


def documented_points() -> set[str]:
    """Every kill point the code reaches: `checkpoint("...")` and `kill_point="..."` in forecasting/."""
    found = set()
    for path in (ROOT / "forecasting").rglob("*.py"):
        text = path.read_text()
        found |= set(re.findall(r'checkpoint\("([a-z-]+)"\)', text)) | set(re.findall(r'kill_point="([a-z-]+)"', text))
    return found


def test_the_matrix_covers_every_kill_point():
    points = documented_points()
    assert points == set(OBJECT_STORE_POINTS) | set(REFRESH_POINTS) | {"tuning-trial"}
    doc = (ROOT / "forecasting" / "runtime" / "faults.py").read_text()
    data_safety = (ROOT / "docs" / "data-safety.md").read_text()
    for point in points:  # each is documented where a reader looks for it
        assert point in doc and f"`{point}`" in data_safety, point


def run_in_subprocess(config, api_url, kill_at, mode="retrain", full_refresh=False):
    killed, mark = run_killed(config, api_url, kill_at, mode, full_refresh)
    assert_no_orphans(mark)
    return killed


def project(backend, request, settings_for):
    tmp_path = Path(request.getfixturevalue("tmp_path"))
    url = f"sqlite:///{tmp_path / 'crash.db'}" if backend == "sqlite" else None
    if url is None:
        from tests.support.postgres_server import create_database

        url = create_database(request.getfixturevalue("postgres_admin_url"))
    settings, path = settings_for(url)  # clears FORECASTING_STORAGE_ROOT: set after
    if backend == "s3":
        monkeypatch = request.getfixturevalue("monkeypatch")
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("FORECASTING_STORAGE_ROOT", request.getfixturevalue("s3_root"))
        settings, path = settings_for(url)
        assert str(settings.storage_root).startswith("s3://")
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame())
    return settings, path, engine


def stored_files(settings) -> list[str]:
    """Every file (object) under the storage root, relative to it."""
    root = str(settings.storage_root)
    if root.startswith("s3://"):
        return s3_keys(root)
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())


def version_folders(settings) -> list[int]:
    """The version folders of model tiny (on an object store: the version prefixes holding any object)."""
    root = str(settings.storage_root)
    if root.startswith("s3://"):
        return sorted({int(k.split("/")[2]) for k in s3_keys(root) if k.startswith("models/tiny/") and k.split("/")[2].isdigit()})
    models = Path(root) / "models" / "tiny"
    return sorted(int(p.name) for p in models.iterdir() if p.name.isdigit()) if models.exists() else []


def assert_registered_versions_complete(engine) -> list[int]:
    with engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT version FROM model_versions WHERE model_name = 'tiny'")).scalars().all()
    for version in versions:  # every registry row has a complete, checksummed artifact
        assert load_version(engine, "tiny", version).version == version
    return sorted(versions)


def assert_consistent(settings, engine, rows=48):
    with engine.connect() as connection:
        forecasts = pd.read_sql(sa.text("SELECT series_id, forecast_origin, target_ts, yhat FROM forecasts"), connection)
        champion = connection.execute(sa.text("SELECT version FROM model_aliases WHERE model_name = 'tiny' AND alias = 'champion'")).scalar()
        runs = pd.read_sql(sa.text("SELECT status FROM runs"), connection)
        watermark = connection.execute(sa.text("SELECT watermark FROM ingestion_state")).scalar()
    keys = ["series_id", "forecast_origin", "target_ts"]
    assert len(forecasts) == rows and not forecasts.duplicated(keys).any()
    forecasts = forecasts.assign(forecast_origin=pd.to_datetime(forecasts.forecast_origin), target_ts=pd.to_datetime(forecasts.target_ts))
    parquet = read_forecasts(settings.storage_root, "tiny")
    assert len(parquet) == rows and not parquet.duplicated(keys).any()
    parquet = parquet.assign(forecast_origin=pd.to_datetime(parquet.forecast_origin))
    per_origin_sql = forecasts.groupby("forecast_origin").size().sort_index()
    per_origin_parquet = parquet.groupby("forecast_origin").size().sort_index()
    pd.testing.assert_series_equal(per_origin_sql, per_origin_parquet, check_names=False, check_index_type=False)
    merged = forecasts.merge(parquet[[*keys, "yhat"]], on=keys, suffixes=("", "_parquet"))
    assert len(merged) == rows and (merged.yhat == merged.yhat_parquet).all()
    versions = assert_registered_versions_complete(engine)
    assert champion in versions
    assert version_folders(settings) == versions  # no version folder without its registry row
    files = stored_files(settings)
    leftovers = [f for f in files if f.startswith("staging/") or f.endswith(".tmp") or "/.tmp-" in f or f.startswith(".tmp-") or "/.probe-" in f]
    assert leftovers == []  # the killed run's staged file and temporaries are gone
    stored = history.read(history.history_root(settings.storage_root, "observations"))
    assert pd.Timestamp(watermark) == stored.ts.max() == pd.Timestamp("2023-12-01")  # never ahead of the data
    assert set(runs.status) <= {"completed", "abandoned"} and (runs.status == "completed").sum() >= 1


@pytest.mark.slow
@pytest.mark.prefect
@pytest.mark.parametrize("backend, point", CASES)
def test_killed_run_then_next_run_leaves_everything_consistent(backend, point, request, settings_for, prefect_server):
    settings, path, engine = project(backend, request, settings_for)
    killed, mark = run_killed(str(path), prefect_server, point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert_no_orphans(mark)
    assert_registered_versions_complete(engine)  # already at the kill: a registry row only for a complete version
    summary = forecast_pipeline(model="tiny", mode="auto", config=str(path))
    assert summary["rows_sql"] == summary["rows_parquet"] == 48
    assert_consistent(settings, engine)
    with engine.connect() as connection:
        statuses = connection.execute(sa.text("SELECT status FROM runs ORDER BY started_at")).scalars().all()
    assert statuses == ["abandoned", "completed"]


@pytest.mark.slow
@pytest.mark.prefect
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
