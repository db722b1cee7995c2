"""A source whose time column is text (ISO 8601 strings, offsets included) pulled incrementally, with a
`since` bound, on SQLite and PostgreSQL."""

import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting import steps
from forecasting.history import store as history
from forecasting.sources.database import create_db_engine
from forecasting.sources.schema import migrate

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


def test_the_text_bound_reads_at_most_14_hours_before_since_whatever_the_text_form(project):
    """The SQL bound on a text time column is `since` minus 14 hours (the largest UTC offset) as
    'YYYY-MM-DD HH:MM:SS': an hourly series re-reads 14 rows, not two days of them, and every row after
    `since` is read whatever its form ('T' or a space, unpadded fields, a date alone, an offset)."""
    from forecasting.sources.database import read_observations

    settings, engine = project
    since = pd.Timestamp("2024-03-10 12:00")
    hourly = [{"s": "A", "t": (since + pd.Timedelta(hours=h)).strftime("%Y-%m-%d %H:%M:%S"), "v": 1.0} for h in range(-72, 13)]
    later = {  # text -> the UTC instant, all after `since`
        "2024-03-10T13:00:00": "2024-03-10 13:00", "2024-3-10 14:00:00": "2024-03-10 14:00", "2024-03-11": "2024-03-11 00:00",
        "2024-03-10 01:30:00-12:00": "2024-03-10 13:30", "2024-03-11 02:30:00+14:00": "2024-03-10 12:30", "2024-3-9T23:00:00-14:00": "2024-03-10 13:00",
    }
    earlier = ["2024-03-09", "2024-03-09 21:59:59"]  # before since - 14 h, padded with a space: not read
    loose = ["2024-3-9 08:00:00", "2024-03-09T08:00:00"]  # before too, unpadded or with a 'T': read (more than needed, filtered once parsed)
    rows = hourly + [{"s": f"B{i}", "t": text, "v": 1.0} for i, text in enumerate([*later, *earlier, *loose])]
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO readings (series_id, ts, value) VALUES (:s, :t, :v)"), rows)
    with engine.connect() as connection:
        read = read_observations(connection, settings.source, since=since)
    got = read.loc[read["series_id"] == "A", "ts"]
    assert got.min() == since - pd.Timedelta(hours=14) and len(got) == 14 + 1 + 12  # 14 h before, since itself, 12 after
    others = read.loc[read["series_id"] != "A"]
    assert sorted(others["ts"]) == sorted([*(pd.Timestamp(t) for t in later.values()), pd.Timestamp("2024-03-09 08:00"), pd.Timestamp("2024-03-09 08:00")])
