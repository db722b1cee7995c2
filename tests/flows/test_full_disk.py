"""Issue 26: a full disk while a Parquet partition or a model version is written. The storage root
is a small size-limited folder (tmpfs, mounted as root; skipped where the machine does not allow
it); the run pauses at a kill point while the test fills the disk, then goes on into the write.
Expect one line naming the path and saying the disk is full (exit 1), nothing already stored lost,
and the next run after space is freed completes."""

import hashlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from flows.forecast_pipeline import forecast_pipeline
from forecasting.config.settings import SourceConfig
from forecasting.publishing.forecast_dataset import read_forecasts
from forecasting.publishing.registry import load_version
from forecasting.sources.database import create_db_engine
from forecasting.sources.loading import load_observations
from forecasting.sources.schema import migrate
from tests.support.data import synthetic_frame
from tests.support.processes import MARK_ENV, assert_no_orphans

pytestmark = [pytest.mark.slow, pytest.mark.prefect]
ROOT = Path(__file__).parents[2]
SIZE = "16m"


@pytest.fixture
def small_disk(tmp_path):
    """`tmp_path/store`: a tmpfs of SIZE (the project's storage root)."""
    store = tmp_path / "store"
    store.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited folder needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(store)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"this machine does not allow mounting a tmpfs: {mounted.stderr.strip()}")
    try:
        yield store
    finally:
        subprocess.run(["umount", "-l", str(store)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write a file into `folder` until its disk is full; returns it (remove it to free the space)."""
    filler = folder / "filler"
    block = b"\0" * 65536
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(block)
                handle.flush()
        except OSError:
            pass
    return filler


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path, small_disk, settings_for):
    settings, path = settings_for(f"sqlite:///{tmp_path / 'disk.db'}")
    assert Path(settings.storage_root) == small_disk
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame())
    first = forecast_pipeline(model="tiny", mode="retrain", config=str(path))
    assert first["produced_version"] == 1 and first["rows_parquet"] == 48
    return settings, path, engine


def run_filling_the_disk_at(path, api_url, pause_at, mode):
    """`forecasting run` paused at `pause_at` while the test fills the storage disk; returns the
    finished process and the filler file."""
    store, paused, mark = path.parent / "store", path.parent / f"paused-{uuid.uuid4().hex}", uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORECASTING_", "PREFECT_API_URL"))}
    env.update({
        "PYTHONPATH": str(ROOT), "PREFECT_API_URL": api_url, MARK_ENV: mark,
        "FORECASTING_PAUSE_AT": pause_at, "FORECASTING_PAUSE_FILE": str(paused), "FORECASTING_PAUSE_SECONDS": "3",
    })  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "forecasting", "run", "--model", "tiny", "--mode", mode], cwd=path.parent, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not paused.exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    filler = fill(store)
    stdout, stderr = process.communicate(timeout=300)
    assert_no_orphans(mark)
    return process.returncode, stdout, stderr, filler


def assert_disk_full_line(code, stderr, where):
    assert code == 1, stderr[-3000:]
    # TensorFlow's C++ start-up lines and Prefect's task-run lines aside, one error line, the last.
    lines = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0] == stderr.strip().splitlines()[-1], stderr[-3000:]
    assert "Traceback" not in stderr and "Retry" not in stderr  # a full disk is not retried as a transient failure
    assert where in lines[0] and "disk is full" in lines[0], lines[0]


def assert_next_run_completes(settings, path, engine, filler, mode):
    filler.unlink()
    summary = forecast_pipeline(model="tiny", mode=mode, config=str(path))
    assert summary["rows_sql"] == summary["rows_parquet"] == 48
    with engine.connect() as connection:
        forecasts = pd.read_sql(sa.text("SELECT series_id, forecast_origin, target_ts FROM forecasts"), connection)
        versions = connection.execute(sa.text("SELECT version FROM model_versions")).scalars().all()
    parquet = read_forecasts(settings.storage_root, "tiny")
    assert len(forecasts) == len(parquet) == 48 and not parquet.duplicated(["series_id", "forecast_origin", "target_ts"]).any()
    for version in versions:
        assert load_version(engine, "tiny", version).version == version
    models = Path(settings.storage_root) / "models" / "tiny"
    assert sorted(int(p.name) for p in models.iterdir() if p.name.isdigit()) == sorted(versions)
    leftovers = [str(p) for p in Path(settings.storage_root).rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".tmp-")]
    assert leftovers == [] and list((Path(settings.storage_root) / "staging").glob("*")) == []


def test_full_disk_during_the_parquet_write(project, prefect_server):
    settings, path, engine = project
    partitions = Path(settings.forecasts_root)
    before = digest(partitions)
    code, _, stderr, filler = run_filling_the_disk_at(path, prefect_server, "after-sql-write", "forecast")
    assert_disk_full_line(code, stderr, str(partitions))
    assert digest(partitions) == before  # the partition written by the first run is whole
    assert load_version(engine, "tiny", 1).version == 1
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT status FROM runs ORDER BY started_at")).scalars().all() == ["completed", "failed"]
    assert_next_run_completes(settings, path, engine, filler, "forecast")


def test_full_disk_during_the_artifact_write(project, prefect_server):
    settings, path, engine = project
    models = Path(settings.storage_root) / "models" / "tiny"
    before = digest(models / "1")
    code, _, stderr, filler = run_filling_the_disk_at(path, prefect_server, "training", "retrain")
    assert_disk_full_line(code, stderr, str(models))
    assert digest(models / "1") == before and load_version(engine, "tiny", 1).version == 1
    assert sorted(p.name for p in models.iterdir()) == ["1"]  # no half-written version left
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version FROM model_versions")).scalars().all() == [1]
    assert_next_run_completes(settings, path, engine, filler, "retrain")
