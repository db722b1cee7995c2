"""Issue 15: on PostgreSQL the pull reads observations into Arrow with ADBC (libpq's binary COPY); every type comes out as the
row-by-row driver read gave it (timestamps with and without a time zone or as text, NULLs, numeric,
double precision to the last bit)."""

import datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting.sources import arrow_reads as pg_copy
from forecasting.sources import database
from forecasting.config.settings import SourceConfig
from forecasting.sources.database import create_db_engine, read_observations, records
from tests.support.postgres_server import create_database

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("time_type", ["TIMESTAMP", "TIMESTAMPTZ", "TEXT"])
def test_copy_read_gives_what_the_row_read_gave(postgres_admin_url, monkeypatch, time_type):
    if not pg_copy.adbc_available():
        pytest.skip("the adbc extra is not installed")
    engine = create_db_engine(create_database(postgres_admin_url))
    times = {
        "TIMESTAMP": [datetime.datetime(2024, 1, 1), datetime.datetime(2024, 2, 1, 3, 4, 5, 123456)],
        "TIMESTAMPTZ": [datetime.datetime(2024, 1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=1))), datetime.datetime(2024, 2, 1, tzinfo=datetime.timezone.utc)],
        "TEXT": ["2024-01-01T01:00:00+01:00", "2024-02-01"],
    }[time_type]
    with engine.begin() as connection:
        connection.exec_driver_sql("SET TIME ZONE 'Asia/Tokyo'")  # the session's zone must not matter
        connection.exec_driver_sql(f"CREATE TABLE obs (item TEXT, at {time_type}, amount NUMERIC(30, 15), price DOUBLE PRECISION, note TEXT)")
        rows = [
            ("a,b \"q\"", times[0], Decimal("0.100000000000001"), 0.1 + 0.2, ""),
            ("a,b \"q\"", times[1], None, None, None),
            ("7", times[0], Decimal("-123456789.123456789012345"), 2.2250738585072014e-308, "x"),
            ("7", times[1], Decimal("1e-15"), float("nan"), "line\nbreak"),
        ]
        connection.exec_driver_sql("INSERT INTO obs VALUES (%s, %s, %s, %s, %s)", rows)
    source = SourceConfig(table="obs", series="item", time="at", target="amount", features=["price"])
    with engine.connect() as connection:
        copied = read_observations(connection, source)
        # (a text time column cannot be compared with a bound on PostgreSQL, by either read)
        since = read_observations(connection, source, since=pd.Timestamp("2024-01-15"), series=["7"]) if time_type != "TEXT" else None
    monkeypatch.setattr(database, "copy_records", lambda connection, query, names, numeric=None: records(connection.execute(query), names))
    with engine.connect() as connection:
        fetched = read_observations(connection, source)
        fetched_since = read_observations(connection, source, since=pd.Timestamp("2024-01-15"), series=["7"]) if time_type != "TEXT" else None
    pd.testing.assert_frame_equal(copied, fetched)
    if since is not None:
        pd.testing.assert_frame_equal(since, fetched_since)
        assert since["series_id"].tolist() == ["7"] and len(since) == 1
    assert copied["ts"].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp(times[1] if time_type == "TIMESTAMP" else "2024-02-01")] * 2
    # Ordered by series then time: "7" first.
    assert copied["value"][0] == float(Decimal("-123456789.123456789012345")) and copied["value"][1] == 1e-15 and np.isnan(copied["value"][3])
    assert copied["price"][0] == 2.2250738585072014e-308 and np.isnan(copied["price"][1]) and copied["price"][2] == 0.1 + 0.2
    assert copied["series_id"].tolist() == ["7", "7", 'a,b "q"', 'a,b "q"']


def test_copy_read_is_used_on_postgresql(postgres_admin_url, monkeypatch):
    if not pg_copy.adbc_available():
        pytest.skip("the adbc extra is not installed")
    engine = create_db_engine(create_database(postgres_admin_url))
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE obs (series_id TEXT, ts TIMESTAMP, value DOUBLE PRECISION)")
        connection.exec_driver_sql("INSERT INTO obs VALUES ('s', '2024-01-01', 1.5)")
    used = []
    copy_records = pg_copy.copy_records
    monkeypatch.setattr(database, "copy_records", lambda *a, **k: used.append(1) or copy_records(*a, **k))
    with engine.connect() as connection:
        frame = read_observations(connection, SourceConfig(table="obs"))
    assert used == [1] and frame["value"].tolist() == [1.5]


@pytest.mark.parametrize("staged", ["timestamps", "text"])
def test_bulk_upsert_into_timestamptz_keeps_utc_on_a_server_in_another_zone(postgres_admin_url, staged):
    """`load` into a TIMESTAMPTZ source on a database whose TimeZone is Europe/Berlin: naive times are UTC."""
    from forecasting.sources.loading import load_observations

    url = create_database(postgres_admin_url)
    engine = create_db_engine(url)
    with engine.begin() as connection:
        name = connection.execute(sa.text("SELECT current_database()")).scalar_one()
        connection.execute(sa.text(f'ALTER DATABASE "{name}" SET timezone = \'Europe/Berlin\''))
        connection.execute(sa.text("CREATE TABLE observations (series_id TEXT, ts TIMESTAMPTZ, value DOUBLE PRECISION, PRIMARY KEY (series_id, ts))"))
    engine.dispose()
    engine = create_db_engine(url)  # new sessions take the database's zone
    times = pd.Series(pd.to_datetime(["2024-01-01 00:00", "2024-07-01 12:30"]))
    frame = pd.DataFrame({"series_id": ["A", "A"], "ts": times if staged == "timestamps" else times.astype(object), "value": [1.0, 2.0]})
    load_observations(engine, SourceConfig(), frame)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SHOW TimeZone")).scalar_one() == "Europe/Berlin"
        stored = connection.execute(sa.text("SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM observations ORDER BY ts")).scalars().all()
    assert stored == ["2024-01-01 00:00", "2024-07-01 12:30"]
