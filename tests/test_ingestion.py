"""Incremental pulls into the history store, screening with a quarantine, watermarks that move last."""

import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting import history, pipeline
from forecasting.config import SourceConfig
from forecasting.database import create_db_engine
from forecasting.errors import ConfigError, RunError
from forecasting.loading import load_observations
from forecasting.schema import migrate
from forecasting.validation import fill_gaps
from tests.conftest import synthetic_frame


@pytest.fixture
def project(database_url, settings_for):
    def build(**source):
        settings, _ = settings_for(database_url, source={"frequency": "MS", **source})
        engine = create_db_engine(settings.database.url)
        migrate(engine)
        return settings, engine

    return build


def watermark(engine):
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT watermark FROM ingestion_state")).scalar()


def store(settings):
    return history.read(history.history_root(settings.storage_root, "observations"))


def test_pulls_read_only_new_rows_and_the_watermark_moves_on_commit(project):
    settings, engine = project()
    frame = synthetic_frame()
    load_observations(engine, SourceConfig(), frame[frame.ts < "2023-12-01"])
    first = pipeline.pull_step(settings, "r1")
    assert first["full_refresh"] and (first["rows_pulled"], first["rows_new"], first["new_series"]) == (8 * 47, 8 * 47, 8)
    assert watermark(engine) is None  # nothing committed yet
    pipeline.commit_pull(settings, "r1", first)
    assert pd.Timestamp(watermark(engine)) == pd.Timestamp("2023-11-01")
    load_observations(engine, SourceConfig(), frame[frame.ts == "2023-12-01"])
    second = pipeline.pull_step(settings, "r2")
    assert not second["full_refresh"] and (second["rows_pulled"], second["rows_new"], second["rows_revised"]) == (8, 8, 0)
    # Not committed (say the run died): the next pull reads the same rows again and changes nothing.
    again = pipeline.pull_step(settings, "r3")
    assert (again["rows_pulled"], again["rows_new"], again["rows_revised"]) == (8, 0, 0)
    pipeline.commit_pull(settings, "r3", again)
    assert pd.Timestamp(watermark(engine)) == pd.Timestamp("2023-12-01")
    stored = store(settings)
    assert len(stored) == 8 * 48 and not stored.duplicated(["series_id", "ts"]).any()
    pd.testing.assert_series_equal(stored.value.reset_index(drop=True), frame.sort_values(["series_id", "ts"]).value.reset_index(drop=True))


def test_late_arrival_window_picks_up_corrections(project):
    settings, engine = project(late_arrival="40D")
    frame = synthetic_frame()
    load_observations(engine, SourceConfig(), frame)
    pipeline.commit_pull(settings, "r1", pipeline.pull_step(settings, "r1"))
    load_observations(engine, SourceConfig(), pd.DataFrame({"series_id": ["S03"], "ts": [pd.Timestamp("2023-11-01")], "value": [-1.0]}))
    pulled = pipeline.pull_step(settings, "r2")
    assert pulled["rows_pulled"] == 16 and pulled["rows_revised"] == 1 and pulled["rows_new"] == 0  # Nov and Dec re-read
    stored = store(settings)
    assert stored.loc[(stored.series_id == "S03") & (stored.ts == "2023-11-01"), "value"].item() == -1.0


def test_unusable_rows_go_to_quarantine_with_reasons(project):
    settings, engine = project()
    load_observations(engine, SourceConfig(), synthetic_frame())
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO observations (series_id, ts, value) VALUES ('S00', '2024-01-15 00:00:00', 1.0), ('S01', '2024-01-01 00:00:00', NULL)")
        )
    pulled = pipeline.pull_step(settings, "r1")
    assert pulled["quarantined"] == 2 and pulled["rows_new"] == 8 * 48
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT series_id, reason, run_id FROM quarantine ORDER BY series_id")).fetchall()
    assert [tuple(r) for r in rows] == [("S00", "timestamp not on the MS grid", "r1"), ("S01", "value missing or not finite", "r1")]


def test_a_series_mostly_unusable_fails_the_pull_and_stores_nothing(project):
    settings, engine = project()
    load_observations(engine, SourceConfig(), synthetic_frame())
    pipeline.commit_pull(settings, "r1", pipeline.pull_step(settings, "r1"))
    before = store(settings)
    with engine.begin() as connection:
        for month in range(1, 4):
            connection.execute(sa.text(f"INSERT INTO observations (series_id, ts, value) VALUES ('S05', '2024-0{month}-01 00:00:00', NULL)"))
        connection.execute(sa.text("INSERT INTO observations (series_id, ts, value) VALUES ('S05', '2024-04-01 00:00:00', 5.0)"))
    with pytest.raises(RunError, match=r"1 series have more than 20% of their pulled rows unusable: S05 \(75%\).*Nothing was stored"):
        pipeline.pull_step(settings, "r2")
    pd.testing.assert_frame_equal(store(settings), before)
    assert pd.Timestamp(watermark(engine)) == pd.Timestamp("2023-12-01")


def test_a_changed_column_type_is_a_clear_error(project):
    settings, engine = project()
    load_observations(engine, SourceConfig(), synthetic_frame())
    pulled = pipeline.pull_step(settings, "r1")
    pipeline.commit_pull(settings, "r1", {**pulled, "columns": {**pulled["columns"], "value": "INTEGER"}})
    with pytest.raises(ConfigError, match=r"source.table: column 'value' of 'observations' changed type from INTEGER to .* --full-refresh"):
        pipeline.pull_step(settings, "r2")


def test_gap_policies():
    frame = pd.DataFrame({"series_id": "a", "ts": pd.date_range("2024-01-01", periods=5, freq="MS"), "value": [1.0, np.nan, 3.0, np.nan, np.nan]})
    assert fill_gaps(frame, "leave").value.isna().sum() == 3
    assert fill_gaps(frame, "interpolate").value.tolist()[:3] == [1.0, 2.0, 3.0]
    assert fill_gaps(frame, "interpolate").value.isna().sum() == 2  # only inside gaps
    assert fill_gaps(frame, "ffill").value.tolist() == [1.0, 1.0, 3.0, 3.0, 3.0]
    assert fill_gaps(frame, "zero").value.tolist() == [1.0, 0.0, 3.0, 0.0, 0.0]
