from datetime import datetime

import sqlalchemy as sa

from forecasting.errors import ConfigError
from forecasting.sources.database import create_db_engine
from forecasting.sources.schema import head_revision, migrate

TABLES = {"observations", "forecasts", "model_versions", "model_aliases", "runs"}


def test_init_creates_schema_idempotently(database_url):
    engine = create_db_engine(database_url)
    first = migrate(engine, [80, 95])
    assert first["from_revision"] is None and first["to_revision"] == head_revision()
    second = migrate(engine, [80, 95])
    assert second["from_revision"] == second["to_revision"] == head_revision()
    assert second["added_columns"] == []
    inspector = sa.inspect(engine)
    assert TABLES <= set(inspector.get_table_names())
    assert "forecast_latest" in inspector.get_view_names()
    primary = inspector.get_pk_constraint("forecasts")["constrained_columns"]
    assert primary == ["model_name", "series_id", "forecast_origin", "target_ts"]


def test_new_interval_level_adds_columns_and_view_shows_them(database_url):
    engine = create_db_engine(database_url)
    migrate(engine, [80, 95])
    result = migrate(engine, [80, 90, 95])
    assert result["added_columns"] == ["yhat_lower_90", "yhat_upper_90"]
    view_columns = {column["name"] for column in sa.inspect(engine).get_columns("forecast_latest")}
    assert {"yhat_lower_90", "yhat_upper_90", "yhat_lower_80"} <= view_columns


def test_forecast_latest_shows_newest_origin_per_series(database_url):
    engine = create_db_engine(database_url)
    migrate(engine)
    rows = [
        {
            "model_name": "m", "model_version": 1, "series_id": "a",
            "forecast_origin": datetime(2024, month, 1), "target_ts": datetime(2024, month + step, 1),
            "step": step, "yhat": 1.0, "run_id": "r", "created_at": datetime(2024, 3, 1),
        }
        for month in (1, 2)
        for step in (1, 2)
    ]
    forecasts = sa.Table("forecasts", sa.MetaData(), autoload_with=engine)
    with engine.begin() as connection:
        connection.execute(sa.insert(forecasts), rows)
        latest = connection.execute(sa.text("SELECT forecast_origin, step FROM forecast_latest ORDER BY step")).fetchall()
    assert len(latest) == 2
    assert all(str(row[0]).startswith("2024-02-01") for row in latest)


def _init_config(tmp_path, monkeypatch, database_url, source=None):
    from tests.support.data import write_config

    for name in ("FORECASTING_DATABASE_URL", "FORECASTING_STORAGE_ROOT", "FORECASTING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return str(write_config(tmp_path, database_url, source=source))


def test_init_uses_a_source_table_the_user_made_under_the_default_name_as_it_is(database_url, tmp_path, monkeypatch, capsys):
    """The user's own `observations` table, made before `init`: `init` keeps it as it is (rows, columns, no
    job columns added) and the job reads it; it is not reported as a database outage."""
    from forecasting.cli.main import main
    from forecasting.config.settings import load_settings
    from tests.support.data import pull

    engine = create_db_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE observations (series_id VARCHAR(50) NOT NULL, ts TIMESTAMP NOT NULL, value FLOAT, note TEXT)"))
        connection.execute(sa.text("INSERT INTO observations VALUES ('A', '2024-01-01 00:00:00', 1.5, 'mine'), ('A', '2024-02-01 00:00:00', 2.5, 'mine')"))
    path = _init_config(tmp_path, monkeypatch, database_url)
    assert main(["--config", path, "init"]) == 0, capsys.readouterr().err
    assert main(["--config", path, "init"]) == 0  # repeatable
    capsys.readouterr()
    inspector = sa.inspect(engine)
    assert [column["name"] for column in inspector.get_columns("observations")] == ["series_id", "ts", "value", "note"]
    assert TABLES <= set(inspector.get_table_names()) and "forecast_latest" in inspector.get_view_names()
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM observations WHERE note = 'mine'")).scalar() == 2
    pulled = pull(load_settings(path))
    assert pulled.rows_pulled == 2 and pulled.series_in_store == 1  # the job reads the table as the source


def test_init_names_the_table_and_its_columns_when_an_existing_source_table_does_not_fit(database_url, tmp_path, monkeypatch, capsys):
    """An existing `observations` without the configured columns: one line naming the table, the missing
    column and the columns it has, exit 2; nothing is created and the table is left as it was."""
    from forecasting.cli.main import main

    engine = create_db_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE observations (id INTEGER, day DATE, amount FLOAT)"))
        connection.execute(sa.text("INSERT INTO observations VALUES (1, '2024-01-01', 3.0)"))
    path = _init_config(tmp_path, monkeypatch, database_url)
    assert main(["--config", path, "init"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "table 'observations' already exists" in err and "column 'series_id' not found" in err and "(columns: id, day, amount)" in err
    assert "stopped answering" not in err
    inspector = sa.inspect(engine)
    assert set(inspector.get_table_names()) == {"observations"} and inspector.get_view_names() == []
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM observations")).scalar() == 1


def test_only_a_lost_connection_is_reported_as_the_database_stopping(tmp_path):
    """A statement SQLite refuses (an OperationalError too) is not called an outage to be waited out; a
    database that cannot be reached still is."""
    import socket

    import pytest

    from forecasting.runtime.console import error_line

    engine = create_db_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (a INTEGER)"))
    for statement in ("CREATE TABLE t (a INTEGER)", "SELECT b FROM t", "SELECT * FROM missing"):
        with pytest.raises(sa.exc.OperationalError) as caught, engine.connect() as connection:
            connection.execute(sa.text(statement))
        line, code = error_line(caught.value)
        assert code == 1 and "stopped answering" not in line and line.startswith("the database refused a statement ("), line
        assert "SELECT" not in line and "CREATE" not in line
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = create_db_engine(f"postgresql+psycopg://nobody@127.0.0.1:{port}/db")
    with pytest.raises(sa.exc.OperationalError) as caught:
        unreachable.connect()
    line, code = error_line(caught.value)
    assert code == 1 and line.startswith("the database stopped answering (")
    (tmp_path / "folder.db").mkdir()  # a folder where the file should be: a config error, not an outage
    with pytest.raises(ConfigError, match="the SQLite database .*folder.db is a directory, not a regular file"):
        create_db_engine(f"sqlite:///{tmp_path / 'folder.db'}")


def test_forecast_latest_leaves_out_series_the_source_no_longer_holds(project):
    """Series deleted or renamed in the source drop out of forecast_latest once a committed pull has seen
    them gone (their rows stay in `forecasts`); a series forecast after the last committed pull (a new one,
    its run killed before the commit) still shows."""
    from forecasting.runtime.clock import utc_now
    from forecasting.config.settings import SourceConfig
    from forecasting.sources.loading import load_observations
    from tests.support.data import pull, synthetic_frame

    settings, engine = project(max_series_drop=1.0)
    frame = synthetic_frame(n_series=3, length=24)  # S00, S01, S02
    load_observations(engine, SourceConfig(), frame)
    pull(settings)
    forecasts = sa.Table("forecasts", sa.MetaData(), autoload_with=engine)

    def forecast(*series):
        now = utc_now()
        rows = [
            {"model_name": "m", "model_version": 1, "series_id": sid, "forecast_origin": datetime(2022, 1, 1),
             "target_ts": datetime(2022, 1 + step, 1), "step": step, "yhat": 1.0, "run_id": "r", "created_at": now}
            for sid in series for step in (1, 2)
        ]
        with engine.begin() as connection:
            connection.execute(sa.insert(forecasts), rows)

    def latest():
        with engine.connect() as connection:
            return sorted(set(connection.execute(sa.text("SELECT series_id FROM forecast_latest WHERE model_name = 'm'")).scalars()))

    forecast("S00", "S01", "S02")
    assert latest() == ["S00", "S01", "S02"]
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM observations WHERE series_id = 'S02'"))
        connection.execute(sa.text("UPDATE observations SET series_id = 'S01-renamed' WHERE series_id = 'S01'"))
    assert latest() == ["S00", "S01", "S02"]  # no pull has seen the change yet
    pull(settings)
    assert latest() == ["S00"]  # the same origin as the live series, yet gone from the source
    forecast("S09")  # a series forecast by a run whose pull was not committed (killed after the SQL write)
    assert latest() == ["S00", "S09"]
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM forecasts")).scalar() == 8  # nothing deleted
