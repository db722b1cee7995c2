"""A source whose time column is text (ISO 8601 strings, offsets included) pulled incrementally, with a
`since` bound, on SQLite and PostgreSQL."""

import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting import history, steps
from forecasting.database import create_db_engine
from forecasting.schema import migrate

START = pd.Timestamp("2024-01-01 00:00")  # UTC


def local_text(instant: pd.Timestamp) -> str:
    """The instant as ISO text at UTC-02:00 with a space, as some exporters write it: its text sorts
    before an earlier UTC instant of the same day."""
    return (instant - pd.Timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S") + "-02:00"


@pytest.fixture
def project(database_url, settings_for):
    settings, _ = settings_for(database_url, source={"table": "readings", "frequency": "h"})
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE readings (series_id VARCHAR(50), ts TEXT, value DOUBLE PRECISION, PRIMARY KEY (series_id, ts))"))
    return settings, engine


def add(engine, hours):
    rows = [{"s": series, "t": local_text(START + pd.Timedelta(hours=h)), "v": float(h)} for series in ("A", "B") for h in hours]
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO readings (series_id, ts, value) VALUES (:s, :t, :v)"), rows)


def test_an_incremental_pull_of_a_text_time_column_reads_the_new_rows_after_each_series_last_one(project):
    settings, engine = project
    add(engine, range(48))
    first = steps.pull_step(settings, "r1")
    steps.commit_pull(settings, "r1", first)
    assert first.rows_new == 96 and first.quarantined == 0
    add(engine, [48, 49])  # 2024-01-03 00:00 and 01:00 UTC, written as 2024-01-02 22:00-02:00 and 23:00-02:00
    second = steps.pull_step(settings, "r2")
    steps.commit_pull(settings, "r2", second)
    # Read after each series' last observation (a `since` bound in SQL), not read whole again.
    assert (second.series_read_window, second.series_read_whole) == (2, 0)
    assert (second.rows_new, second.rows_revised, second.quarantined) == (4, 0, 0)
    assert pd.Timestamp(second.watermark) == START + pd.Timedelta(hours=49)
    stored = history.read(history.history_root(settings.storage_root, "readings"))
    assert len(stored) == 100 and stored.loc[stored["series_id"] == "A", "ts"].max() == START + pd.Timedelta(hours=49)
    third = steps.pull_step(settings, "r3")  # nothing new: nothing read
    assert (third.rows_new, third.rows_revised, third.rows_removed, third.series_unchanged) == (0, 0, 0, 2)
