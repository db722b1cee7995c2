"""Issue 15: a run reads the history store once. The pull, the scoring, the mode decision, each data
preparation and the report all used to read the whole store from the disk again."""

from pathlib import Path

import pandas as pd
import pytest

from flows.forecast_pipeline import forecast_pipeline
from forecasting.history import store as history
from forecasting.sources.database import create_db_engine
from forecasting.sources.loading import load_observations
from forecasting.sources.schema import migrate
from tests.support.data import synthetic_frame

pytestmark = pytest.mark.usefixtures("prefect_server")


def count_disk_reads(monkeypatch) -> dict[str, int]:
    """Bucket file -> times read from the disk, whichever way the history module reads it."""
    reads: dict[str, int] = {}

    def seen(path) -> None:
        reads[str(path)] = reads.get(str(path), 0) + 1

    dataset = history.ds.dataset

    def counted_dataset(*args, **kwargs):  # a whole-store read: every bucket file under the folder
        for path in Path(kwargs.get("source", args[0] if args else "")).glob("bucket=*/*.parquet"):
            seen(path)
        return dataset(*args, **kwargs)

    monkeypatch.setattr(history.ds, "dataset", counted_dataset)
    if hasattr(history, "read_parquet"):
        read_parquet = history.read_parquet
        monkeypatch.setattr(history, "read_parquet", lambda path, *a, **k: seen(path) or read_parquet(path, *a, **k))
    try:
        from forecasting.history import cache as history_cache
    except ImportError:
        return reads
    read_file = history_cache.read_file
    monkeypatch.setattr(history_cache, "read_file", lambda path: seen(path) or read_file(path))
    return reads


def test_a_forecast_run_reads_each_history_file_once(database_url, settings_for, monkeypatch):
    settings, path = settings_for(database_url)
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    frame = synthetic_frame()
    last = frame.ts.max()
    load_observations(engine, settings.source, frame[frame.ts < last])
    forecast_pipeline(model="tiny", mode="retrain", config=str(path))
    load_observations(engine, settings.source, frame[frame.ts == last])  # a new month: the pull merges, scoring scores
    try:
        from forecasting.history import cache as history_cache

        history_cache.forget()  # as a fresh process would start
    except ImportError:
        pass
    reads = count_disk_reads(monkeypatch)
    summary = forecast_pipeline(model="tiny", mode="forecast", config=str(path))
    assert summary["accuracy"]["scoring"]["scored"] > 0 and summary["series_forecast"] == 8
    assert reads and max(reads.values()) == 1, reads
    assert pd.Timestamp(history.read(history.history_root(settings.storage_root, "observations"))["ts"].max()) == last
