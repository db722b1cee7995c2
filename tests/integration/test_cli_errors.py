"""The CLI's error paths, run in this process: exit codes and one-line errors without a password."""

import pytest

from tests.support.cli import assert_one_line_error, in_process
from tests.support.data import write_config


@pytest.fixture
def run(monkeypatch, capsys, tmp_path):
    """`run("init", ...)`: the `forecasting` command in this process, from tmp_path."""
    return lambda *args, env=None: in_process(monkeypatch, capsys, tmp_path, *args, env=env)


@pytest.mark.parametrize(
    "model, fragments",
    [
        ({"cell": "transformer"}, ["models.tiny.cell", "'rnn', 'lstm' or 'gru'"]),
        ({"horizon": 0}, ["models.tiny.horizon", "greater than 0"]),
        ({"layers": [{"dropout": 0.1}]}, ["models.tiny.layers[0].units", "Field required"]),
    ],
)
def test_bad_config_exits_2_with_one_line(run, tmp_path, model, fragments):
    write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", model=model)
    assert_one_line_error(run("init"), 2, *fragments)


def test_unreachable_database_exits_2_without_the_password(run, tmp_path):
    write_config(tmp_path, "sqlite:///unused.db")
    result = run("init", env={"FORECASTING_DATABASE_URL": "postgresql+psycopg://job:s3cret-pw@127.0.0.1:1/forecasts"})
    assert_one_line_error(result, 2, "FORECASTING_DATABASE_URL: cannot connect to postgresql+psycopg://job:***@127.0.0.1:1/forecasts")
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_missing_source_table_or_column_exits_2(run, tmp_path):
    write_config(tmp_path, "sqlite:///db.sqlite", source={"table": "sales", "frequency": "MS"})
    assert run("init").returncode == 0
    assert_one_line_error(run("run", "--model", "tiny"), 2, "source.table: table 'sales' not found")
    write_config(tmp_path, "sqlite:///db.sqlite", source={"target": "amount", "frequency": "MS"})
    assert run("init").returncode == 0  # the default source table, made only when it is the source
    assert_one_line_error(run("run", "--model", "tiny"), 2, "source.target: column 'amount' not found in table 'observations'")
    assert_one_line_error(run("run", "--model", "nope"), 2, "models.nope: no such model")


def test_missing_config_and_bad_file(run, tmp_path):
    assert_one_line_error(run("init"), 2, "forecasting.toml (default location) not found")
    write_config(tmp_path, "sqlite:///db.sqlite")
    assert run("init").returncode == 0
    (tmp_path / "bad.csv").write_text("series_id,ts,value\nA,2024-01-01,1\nA,yesterday,2\n")
    assert_one_line_error(run("load", "bad.csv"), 2, "1 of 2 rows are invalid, nothing was loaded", "row 2")
