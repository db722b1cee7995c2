"""Quarantined source rows are stored once however often pulls re-read them, and stop being current when fixed."""

from datetime import datetime
from importlib.resources import as_file, files

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command

from forecasting import steps
from forecasting.config.settings import SourceConfig
from forecasting.sources.database import create_db_engine
from forecasting.errors import ConfigError
from forecasting.sources.loading import load_observations
from forecasting.history.quarantine import row_key
from forecasting.report.contents import quarantine_counts
from forecasting.sources.schema import alembic_config, head_revision, migrate
from forecasting.sources.tables import quarantine
from tests.support.data import insert_promotion_rows, promotion_frame, synthetic_frame

COLUMNS = ("series_id", "ts", "reason", "run_id", "last_run_id", "seen_count", "resolved_run_id")


def execute(engine, sql, **params):
    with engine.begin() as connection:
        connection.execute(sa.text(sql), params)


def quarantined(engine):
    with engine.connect() as connection:
        q = quarantine.c
        return [tuple(row) for row in connection.execute(sa.select(*[q[c] for c in COLUMNS]).order_by(q.series_id, q.ts))]


def pulled(settings, run_id):
    result = steps.pull_step(settings, run_id)
    steps.commit_pull(settings, run_id, result)
    return result


def counts(settings, engine):
    """The report's quarantine table: (reason, rows now, resolved), by reason."""
    with engine.connect() as connection:
        frame = quarantine_counts(connection, settings.source.table)
    return sorted((row.reason, int(row.rows), int(row.resolved)) for row in frame.itertuples())


NULL = "value missing or not finite"
LATE = "timestamp later than the run's time plus source.max_future"


def last_row(series):
    """SQL selecting a series' newest source row (text timestamps compare differently on each backend)."""
    return f"series_id = '{series}' AND ts = (SELECT MAX(ts) FROM observations WHERE series_id = '{series}')"


def test_a_bad_row_in_the_late_arrival_window_is_stored_once_and_resolved_when_fixed(project):
    settings, engine = project(late_arrival="40D")
    load_observations(engine, SourceConfig(), synthetic_frame())
    execute(engine, "INSERT INTO observations (series_id, ts, value) VALUES ('S01', '2023-12-15 00:00:00', 1.0)")  # off the grid
    execute(engine, "UPDATE observations SET value = NULL WHERE " + last_row("S02"))
    for run_id in ("r1", "r2", "r3"):  # every pull re-reads both rows (late_arrival)
        assert pulled(settings, run_id).quarantined == 2
    stamp = datetime(2023, 12, 15)
    assert quarantined(engine) == [
        ("S01", stamp, "timestamp not on the MS grid", "r1", "r3", 3, None),
        ("S02", datetime(2023, 12, 1), NULL, "r1", "r3", 3, None),
    ]
    assert counts(settings, engine) == [("timestamp not on the MS grid", 1, 0), (NULL, 1, 0)]

    # Fixed in the source: the next pull re-reads the row, finds it usable and marks it resolved (kept as history).
    execute(engine, "UPDATE observations SET value = 7.0 WHERE " + last_row("S02"))
    assert pulled(settings, "r4").quarantined == 1
    rows = quarantined(engine)
    assert rows[1] == ("S02", datetime(2023, 12, 1), NULL, "r1", "r3", 3, "r4") and rows[0][5:] == (4, None)
    assert counts(settings, engine) == [("timestamp not on the MS grid", 1, 0), (NULL, 0, 1)]
    # Deleted from the source: resolved too.
    execute(engine, "DELETE FROM observations WHERE " + last_row("S01"))
    assert pulled(settings, "r5").quarantined == 0
    assert [row[6] for row in quarantined(engine)] == ["r5", "r4"]
    # Bad again: the same row is current again, not a new one.
    execute(engine, "UPDATE observations SET value = NULL WHERE " + last_row("S02"))
    assert pulled(settings, "r6").quarantined == 1
    assert quarantined(engine)[1] == ("S02", datetime(2023, 12, 1), NULL, "r1", "r6", 4, None)
    assert counts(settings, engine) == [("timestamp not on the MS grid", 0, 1), (NULL, 1, 0)]


def test_a_bad_plan_row_re_read_on_every_pull_is_stored_once(project):
    """With future_features every row after a series' last observation is re-read on every pull."""
    settings, engine = project(future_features=["promo"])
    execute(engine, "ALTER TABLE observations ADD COLUMN promo DOUBLE PRECISION")
    frame = promotion_frame(n_series=2, length=24, ahead=4)
    insert_promotion_rows(engine, frame)
    last = frame.loc[frame["value"].isna(), "ts"].max()
    execute(engine, "UPDATE observations SET promo = NULL WHERE ts = :t", t=last.to_pydatetime())  # each series' last plan row
    for run_id in ("r1", "r2", "r3"):
        assert pulled(settings, run_id).quarantined == 2
    stored = quarantined(engine)
    assert len(stored) == 2 and {row[3:6] for row in stored} == {("r1", "r3", 3)}
    execute(engine, "UPDATE observations SET promo = 1.0 WHERE ts = :t", t=last.to_pydatetime())
    assert pulled(settings, "r4").quarantined == 0
    assert {row[6] for row in quarantined(engine)} == {"r4"}
    assert [count[1:] for count in counts(settings, engine)] == [(0, 2)]


def test_row_keys_tell_a_missing_series_or_time_from_text():
    assert row_key(None, None, "r") == row_key(None, pd.NaT, "r") != row_key("None", None, "r")
    assert row_key("a", pd.Timestamp("2024-01-01"), "r") == row_key("a", datetime(2024, 1, 1), "r") != row_key("a", None, "r")


def test_migration_0008_collapses_duplicates_keeping_the_first_seen(database_url, settings_for):
    settings, _ = settings_for(database_url, source={"frequency": "MS", "late_arrival": "40D"})
    engine = create_db_engine(database_url)
    with engine.begin() as connection, as_file(files("forecasting.sql").joinpath("migrations")) as location:
        command.upgrade(alembic_config(connection, str(location)), "0007")
    old = sa.text("INSERT INTO quarantine (run_id, source, series_id, ts, value, reason, created_at) VALUES (:r, :src, :s, :t, :v, :reason, :c)")
    december = datetime(2023, 12, 1)
    rows = [  # what pulls under 0007 left: one NULL row thrice (not inserted in time order), a row without series and time twice
        ("r2", "observations", "S02", december, "null", NULL, datetime(2026, 1, 2)),
        ("r1", "observations", "S02", december, "null", NULL, datetime(2026, 1, 1)),
        ("r3", "observations", "S02", december, "nan", NULL, datetime(2026, 1, 3)),
        ("r1", "observations", None, None, "1.0", "no key", datetime(2026, 1, 1)),
        ("r2", "observations", None, None, "2.0", "no key", datetime(2026, 1, 2)),
        ("r1", "other", "S02", december, "null", NULL, datetime(2026, 1, 1)),
        ("r1", "observations", "S03", None, "1.0", "no time", datetime(2026, 1, 1)),
        ("r2", "observations", "S03", None, "2.0", "no time", datetime(2026, 1, 2)),
        ("r1", "observations", None, december, "1.0", "no series", datetime(2026, 1, 1)),
        ("r2", "observations", None, december, "2.0", "no series", datetime(2026, 1, 2)),
    ] + [  # a far-future row met by 150 nightly runs: under 0007 each run's reason held its own time
        (f"n{day}", "observations", "S04", datetime(2099, 1, 1), "1.0",
         f"timestamp later than {pd.Timestamp(2026, 1, 1, 3, 4, 5, 123456) + pd.Timedelta(days=day + 92)} (source.max_future after the run's time)",
         datetime(2026, 1, 1) + pd.Timedelta(days=day))
        for day in range(150)
    ]
    with engine.begin() as connection:
        for r, src, s, t, v, reason, c in rows:
            connection.execute(old, {"r": r, "src": src, "s": s, "t": t, "v": v, "reason": reason, "c": c})
    with pytest.raises(ConfigError, match=r"older version \(quarantine without row_key\); run `forecasting init` to migrate it"):
        steps.check_schema(engine, settings, "tiny")
    assert migrate(engine)["to_revision"] == head_revision() == "0011"
    with engine.connect() as connection:
        q = quarantine.c
        names = ("source", "series_id", "run_id", "created_at", "last_run_id", "last_seen_at", "seen_count", "value", "resolved_at")
        after = [tuple(row) for row in connection.execute(sa.select(*[q[c] for c in names]))]
    assert sorted(after, key=str) == sorted([
        ("observations", "S02", "r1", datetime(2026, 1, 1), "r3", datetime(2026, 1, 3), 3, "nan", None),
        ("observations", None, "r1", datetime(2026, 1, 1), "r2", datetime(2026, 1, 2), 2, "2.0", None),
        ("other", "S02", "r1", datetime(2026, 1, 1), "r1", datetime(2026, 1, 1), 1, "null", None),
        ("observations", "S03", "r1", datetime(2026, 1, 1), "r2", datetime(2026, 1, 2), 2, "2.0", None),
        ("observations", None, "r1", datetime(2026, 1, 1), "r2", datetime(2026, 1, 2), 2, "2.0", None),
        ("observations", "S04", "n0", datetime(2026, 1, 1), "n149", datetime(2026, 5, 30), 150, "1.0", None),
    ], key=str)
    with engine.connect() as connection:
        reasons = connection.execute(sa.text("SELECT reason, row_key FROM quarantine WHERE series_id = 'S04'")).fetchall()
    assert [tuple(row) for row in reasons] == [
        (LATE, row_key("S04", datetime(2099, 1, 1), LATE))
    ]
    # A pull after the migration finds the collapsed row by its key: still one row.
    load_observations(engine, SourceConfig(), synthetic_frame())
    execute(engine, "UPDATE observations SET value = NULL WHERE " + last_row("S02"))
    pulled(settings, "r4")
    with engine.connect() as connection:
        mine = connection.execute(sa.text(
            "SELECT run_id, last_run_id, seen_count FROM quarantine WHERE source = 'observations' AND series_id = 'S02'"
        )).fetchall()
    assert [tuple(row) for row in mine] == [("r1", "r4", 4)]


def test_a_row_without_series_id_stays_quarantined_once_over_pulls(database_url, settings_for):
    """A NULL series id is quarantined; the next pull must not trip over it (it crashed the history cache)."""
    settings, _ = settings_for(database_url, source={"table": "readings", "frequency": "MS"})
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    execute(engine, "CREATE TABLE readings (series_id VARCHAR(50), ts TIMESTAMP, value DOUBLE PRECISION)")
    frame = synthetic_frame()
    rows = [{"s": r.series_id, "t": r.ts.to_pydatetime(), "v": float(r.value)} for r in frame.itertuples()]
    rows.append({"s": None, "t": datetime(2023, 12, 1), "v": 1.0})
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO readings (series_id, ts, value) VALUES (:s, :t, :v)"), rows)
    for run_id in ("r1", "r2", "r3"):
        assert pulled(settings, run_id).quarantined == 1
    assert [row[:1] + row[3:] for row in quarantined(engine)] == [(None, "r1", "r3", 3, None)]
    execute(engine, "DELETE FROM readings WHERE series_id IS NULL")  # gone from the source: resolved
    assert pulled(settings, "r4").quarantined == 0
    assert [row[:1] + row[3:] for row in quarantined(engine)] == [(None, "r1", "r3", 3, "r4")]


def test_migration_0008_downgrades_to_the_0007_table(database_url):
    engine = create_db_engine(database_url)
    migrate(engine)
    execute(engine, "INSERT INTO quarantine (run_id, source, series_id, ts, value, reason, created_at, row_key, last_run_id, "
            "last_seen_at, seen_count) VALUES ('r1', 'observations', NULL, NULL, '1.0', 'no key', :c, 'k', 'r2', :c, 2)", c=datetime(2026, 1, 1))
    with engine.begin() as connection, as_file(files("forecasting.sql").joinpath("migrations")) as location:
        command.downgrade(alembic_config(connection, str(location)), "0007")
    with engine.connect() as connection:
        names = {column["name"] for column in sa.inspect(connection).get_columns("quarantine")}
        rows = connection.execute(sa.text("SELECT run_id, series_id, ts, reason FROM quarantine")).fetchall()
    assert names == {"id", "run_id", "source", "series_id", "ts", "value", "reason", "created_at"}
    assert [tuple(row) for row in rows] == [("r1", None, None, "no key")]
    assert migrate(engine)["to_revision"] == "0011"


def test_a_slower_pull_does_not_resolve_a_row_another_pull_just_quarantined_again(database_url):
    """Two runs pulling one source at once, interleaved by hand: A reads the open rows (its pull found
    the row usable), B quarantines the row again, then A marks what it read as resolved."""
    from forecasting.history import quarantine as module

    engine = create_db_engine(database_url)
    migrate(engine)
    bad = pd.DataFrame({"series_id": ["S01", "S02"], "ts": [datetime(2024, 1, 1)] * 2, "value": ["null"] * 2, "reason": [NULL] * 2})
    module.record(engine, "src", "r1", bad, module.Examined(False), datetime(2026, 1, 1))
    with engine.begin() as connection:
        read_by_a = module.open_rows(connection, "src")  # A: both rows open, both usable in its pull
    module.record(engine, "src", "r2", bad.iloc[:1], module.Examined(False), datetime(2026, 1, 2))  # B: S01 bad again
    with engine.begin() as connection:
        module.mark_resolved(connection, "r3", read_by_a, datetime(2026, 1, 3))
    rows = quarantined(engine)
    assert [(row[0], row[4], row[6]) for row in rows] == [("S01", "r2", None), ("S02", "r1", "r3")]


def test_a_history_store_holding_a_row_without_series_id_is_still_pulled_into(database_url, settings_for):
    """Older versions stored a source row without a series id in the history store; pulls into such a store go on."""
    from forecasting.history import store as history

    settings, _ = settings_for(database_url, source={"frequency": "MS"})
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame())
    pulled(settings, "r1")
    root = history.history_root(settings.storage_root, settings.source.table)
    stray = pd.DataFrame({"series_id": pd.Series([None], dtype="str"), "ts": pd.Series([pd.Timestamp("2023-12-01")], dtype="datetime64[us]"), "value": [1.0]})
    history.merge(root, stray, {})
    assert history.read(root)["series_id"].isna().sum() == 1
    execute(engine, "UPDATE observations SET value = 7.0 WHERE " + last_row("S02"))
    for run_id in ("r2", "r3"):
        assert pulled(settings, run_id).rows_revised in (0, 1)
    assert history.read(root).loc[lambda f: f["series_id"] == "S02", "value"].iloc[-1] == 7.0


def test_series_ids_breaking_the_id_rule_are_quarantined_not_stored(project):
    """A pull meets ids that are padded or longer than 200 characters in the source table: their rows are
    quarantined with the reason (a long id's row keeps its start in the reason, the id column holds at most
    200 characters), never stored, never merged with the plain id, never failing the run or a neighbour;
    the same on SQLite and PostgreSQL. Re-read on each pull without duplicates; resolved once fixed."""
    from forecasting.history import store as history

    settings, engine = project(max_quarantined_fraction=0.0, on_bad_series="fail")
    load_observations(engine, SourceConfig(), synthetic_frame(n_series=2, length=30))
    if engine.dialect.name == "postgresql":  # room for ids the job refuses (its own table holds 200)
        execute(engine, "ALTER TABLE observations ALTER COLUMN series_id TYPE TEXT")
    long_id = "z" * 500
    for sid in (" S00", "S01 ", long_id):
        execute(engine, "INSERT INTO observations (series_id, ts, value) VALUES (:sid, '2020-01-01 00:00:00', 7.0)", sid=sid)
    first = pulled(settings, "r1")
    assert first.series_in_store == 2 and first.quarantined == 3
    stored = history.read(history.history_root(settings.storage_root, "observations"))
    assert sorted(stored["series_id"].unique()) == ["S00", "S01"] and len(stored) == 60
    rows = quarantined(engine)
    reasons = sorted(row[2] for row in rows)
    assert reasons == [
        "series id has 500 characters, more than the 200 allowed ('zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz…')",
        "series id has leading or trailing whitespace", "series id has leading or trailing whitespace",
    ]
    assert sorted(str(row[0]) for row in rows) == [" S00", "None", "S01 "]  # a long id is not cut to fit the column
    pulled(settings, "r2")
    assert len(quarantined(engine)) == 3 and {row[5] for row in quarantined(engine)} == {2}  # re-read, not duplicated
    execute(engine, "DELETE FROM observations WHERE series_id IN (' S00', 'S01 ') OR length(series_id) > 200")
    pulled(settings, "r3")
    assert {row[6] for row in quarantined(engine)} == {"r3"}  # all resolved by the pull that no longer found them
