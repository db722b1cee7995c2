import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting.config.settings import SourceConfig
from forecasting.sources.database import create_db_engine, read_observations
from forecasting.errors import InputError
from forecasting.sources.loading import load_observations, read_observation_file
from forecasting.sources.schema import migrate


@pytest.fixture
def engine(database_url):
    engine = create_db_engine(database_url)
    migrate(engine)
    return engine


def count(engine):
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT COUNT(*) FROM observations")).scalar_one()


def test_load_csv_with_column_mapping_upserts(engine, tmp_path):
    path = tmp_path / "obs.csv"
    path.write_text("item,month,sales\nA,2024-01-01,10\nA,2024-02-01,11.5\nB,2024-01-01T00:00:00Z,3\n")
    frame = read_observation_file(path, series="item", time="month", value="sales")
    first = load_observations(engine, SourceConfig(), frame)
    assert (first.rows, first.inserted, first.updated, first.series) == (3, 3, 0, 2)
    path.write_text("item,month,sales\nA,2024-02-01,12\nA,2024-03-01,13\n")
    second = load_observations(engine, SourceConfig(), read_observation_file(path, series="item", time="month", value="sales"))
    assert (second.inserted, second.updated) == (1, 1)
    with engine.connect() as connection:
        stored = read_observations(connection, SourceConfig())
    assert len(stored) == 4
    assert stored.loc[(stored.series_id == "A") & (stored.ts == "2024-02-01"), "value"].item() == 12


def test_load_parquet_with_timezone_aware_timestamps(engine, tmp_path):
    path = tmp_path / "obs.parquet"
    pd.DataFrame(
        {"series_id": ["x", "x"], "ts": pd.to_datetime(["2024-01-01 01:00", "2024-01-01 02:00"]).tz_localize("Europe/Paris"), "value": [1.0, 2.0]}
    ).to_parquet(path)
    load_observations(engine, SourceConfig(), read_observation_file(path))
    with engine.connect() as connection:
        stored = read_observations(connection, SourceConfig())
    assert list(stored.ts.dt.hour) == [0, 1]  # stored as UTC


def test_bad_file_is_rejected_whole_with_rows_named(engine, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("series_id,ts,value\nA,2024-01-01,1\n")
    load_observations(engine, SourceConfig(), read_observation_file(good))
    bad = tmp_path / "bad.csv"
    bad.write_text("series_id,ts,value\nA,2024-02-01,2\nA,not-a-date,3\nB,2024-01-01,abc\nB,2024-02-01,inf\nC,2024-01-01,\n")
    with pytest.raises(InputError) as caught:
        read_observation_file(bad)
    message = str(caught.value)
    assert "4 of 5 rows are invalid, nothing was loaded" in message
    assert "row 2: timestamp 'not-a-date' is not a valid timestamp" in message
    assert "row 3: value 'abc' is not a finite number" in message
    assert "row 4: value 'inf'" in message and "row 5: value ''" in message
    assert count(engine) == 1


def test_duplicate_keys_and_missing_columns_are_rejected(tmp_path):
    duplicated = tmp_path / "dup.csv"
    duplicated.write_text("series_id,ts,value\nA,2024-01-01,1\nA,2024-01-01,2\n")
    with pytest.raises(InputError, match="row 1: the same series and timestamp appear in more than one row"):
        read_observation_file(duplicated)
    with pytest.raises(InputError, match=r"missing column value \(--value-column\); the file has: series_id, ts, amount"):
        (tmp_path / "cols.csv").write_text("series_id,ts,amount\nA,2024-01-01,1\n")
        read_observation_file(tmp_path / "cols.csv")
    with pytest.raises(InputError, match="no such file"):
        read_observation_file(tmp_path / "absent.csv")
    (tmp_path / "obs.json").write_text("{}")
    with pytest.raises(InputError, match="unknown file type '.json'"):
        read_observation_file(tmp_path / "obs.json")


def test_load_writes_in_bulk_and_stores_values_exactly(engine, tmp_path):
    """Issue 15: `load` writes with COPY on PostgreSQL and large executemany chunks on SQLite (not
    5,000-row batches of per-row dicts), storing exactly what the file holds; a reload updates."""
    rows = 12_000
    frame = pd.DataFrame(
        {
            "series_id": [f"S{i % 40:02d}" for i in range(rows)],
            "ts": pd.Timestamp("2000-01-01") + pd.to_timedelta(pd.Series(range(rows)) // 40, unit="D") + pd.Timedelta(microseconds=123456),
            "value": [0.1 + 0.2, 1e-300, 123456789.123456789, -0.0, 2.5] * (rows // 5),
        }
    )
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.strip().split()[0].upper() + (" VALUES" if " VALUES " in statement.upper() else ""))

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        first = load_observations(engine, SourceConfig(), frame)
        frame_again = frame.assign(value=frame["value"] + 1)
        second = load_observations(engine, SourceConfig(), frame_again)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert (first.inserted, first.updated, second.inserted, second.updated) == (rows, 0, 0, rows)
    inserts = [s for s in statements if s.startswith("INSERT")]
    if engine.dialect.name == "sqlite":
        assert inserts == ["INSERT VALUES"] * 2  # one executemany per load
    else:
        assert inserts == ["INSERT"] * 2  # INSERT ... SELECT from the COPY's staging table, no row VALUES
    with engine.connect() as connection:
        stored = read_observations(connection, SourceConfig()).sort_values(["ts", "series_id"]).reset_index(drop=True)
    expected = frame_again.sort_values(["ts", "series_id"]).reset_index(drop=True)
    assert stored["series_id"].astype(str).tolist() == expected["series_id"].tolist()
    assert (pd.to_datetime(stored["ts"]).to_numpy() == expected["ts"].to_numpy()).all()
    assert stored["value"].astype("float64").tolist() == expected["value"].tolist()


@pytest.mark.postgres
def test_load_into_integer_boolean_and_text_time_columns_on_postgresql(postgres_admin_url, tmp_path):
    """A user's source table with an integer target, a boolean flag feature and the time as text: `load`
    stores what the row-by-row upsert stored (integers, true/false, "2024-01-01 00:00:00"), and a reload
    of the same file replaces those rows instead of adding new ones."""
    from tests.support.postgres_server import create_database

    engine = create_db_engine(create_database(postgres_admin_url))
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE sales (item TEXT, day TEXT, units INTEGER, promo BOOLEAN, PRIMARY KEY (item, day))"
        )
    source = SourceConfig(table="sales", series="item", time="day", target="units", features=["promo"])
    path = tmp_path / "sales.csv"
    path.write_text("item,day,units,promo\nA,2024-01-01,3,1\nA,2024-01-02,4,0\nB,2024-01-01,7,1\n")
    frame = read_observation_file(path, series="item", time="day", value="units", features=["promo"])
    first = load_observations(engine, source, frame)
    again = load_observations(engine, source, frame)
    assert (first.inserted, again.inserted, again.updated) == (3, 0, 3)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT item, day, units, promo FROM sales ORDER BY item, day")).fetchall()
    assert [tuple(r) for r in rows] == [
        ("A", "2024-01-01 00:00:00", 3, True), ("A", "2024-01-02 00:00:00", 4, False), ("B", "2024-01-01 00:00:00", 7, True)
    ]


def test_load_refuses_padded_and_overlong_series_ids_naming_the_rows(database_url, tmp_path, monkeypatch, capsys):
    """The series id rule, the same on SQLite and PostgreSQL: at most 200 characters (the series_id columns'
    VARCHAR(200)), no leading or trailing whitespace. `load` refuses the file (exit 2, one line naming the
    rows; no raw StringDataRightTruncation, no SQL), and padded ids are not merged into the plain one."""
    from forecasting.cli.main import main
    from tests.support.data import write_config

    for name in ("FORECASTING_DATABASE_URL", "FORECASTING_STORAGE_ROOT", "FORECASTING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    path = str(write_config(tmp_path, database_url))
    assert main(["--config", path, "init"]) == 0
    engine = create_db_engine(database_url)
    good = tmp_path / "good.csv"
    good.write_text("series_id,ts,value\nP,2024-01-01,1\n" + "L" * 200 + ",2024-01-01,2\n")
    assert main(["--config", path, "load", str(good)]) == 0  # 200 characters: allowed
    for rows, expected in [
        ([" P ,2024-02-01,5"], "row 1: series id ' P ' has leading or trailing whitespace"),
        (["P,2024-02-01,5", "P\t,2024-03-01,6"], "row 2: series id 'P\\t' has leading or trailing whitespace"),
        (["P,2024-02-01,5", "x" * 500 + ",2024-01-01,3"], "row 2: series id 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…' has 500 characters, more than the 200 allowed"),
    ]:
        bad = tmp_path / "bad.csv"
        bad.write_text("series_id,ts,value\n" + "\n".join(rows) + "\n")
        capsys.readouterr()
        assert main(["--config", path, "load", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and expected in err and "nothing was loaded" in err, err
        assert "StringDataRightTruncation" not in err and "INSERT" not in err and "x" * 41 not in err
        assert count(engine) == 2  # nothing loaded, nothing merged into P
    with engine.connect() as connection:
        assert sorted(connection.execute(sa.text("SELECT series_id FROM observations")).scalars()) == ["L" * 200, "P"]
