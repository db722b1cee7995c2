"""The CLI as a person meets it: subprocesses, exit codes, one-line errors."""


import pytest

from tests.support.data import synthetic_frame, write_config
from tests.support.cli import assert_one_line_error, forecasting


@pytest.mark.parametrize(
    "model, fragments",
    [
        ({"cell": "transformer"}, ["models.tiny.cell", "'rnn', 'lstm' or 'gru'"]),
        ({"horizon": 0}, ["models.tiny.horizon", "greater than 0"]),
        ({"layers": [{"dropout": 0.1}]}, ["models.tiny.layers[0].units", "Field required"]),
    ],
)
def test_bad_config_exits_2_with_one_line(tmp_path, model, fragments):
    write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", model=model)
    assert_one_line_error(forecasting("init", cwd=tmp_path), 2, *fragments)


def test_unreachable_database_exits_2_without_the_password(tmp_path):
    write_config(tmp_path, "sqlite:///unused.db")
    result = forecasting("init", cwd=tmp_path, env={"FORECASTING_DATABASE_URL": "postgresql+psycopg://job:s3cret-pw@127.0.0.1:1/forecasts"})
    assert_one_line_error(result, 2, "FORECASTING_DATABASE_URL: cannot connect to postgresql+psycopg://job:***@127.0.0.1:1/forecasts")
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_missing_source_table_or_column_exits_2(tmp_path):
    write_config(tmp_path, "sqlite:///db.sqlite", source={"table": "sales", "frequency": "MS"})
    assert forecasting("init", cwd=tmp_path).returncode == 0
    assert_one_line_error(forecasting("run", "--model", "tiny", cwd=tmp_path), 2, "source.table: table 'sales' not found")
    write_config(tmp_path, "sqlite:///db.sqlite", source={"target": "amount", "frequency": "MS"})
    assert_one_line_error(forecasting("run", "--model", "tiny", cwd=tmp_path), 2, "source.target: column 'amount' not found in table 'observations'")
    assert_one_line_error(forecasting("run", "--model", "nope", cwd=tmp_path), 2, "models.nope: no such model")


def test_missing_config_and_bad_file(tmp_path):
    assert_one_line_error(forecasting("init", cwd=tmp_path), 2, "forecasting.toml (default location) not found")
    write_config(tmp_path, "sqlite:///db.sqlite")
    assert forecasting("init", cwd=tmp_path).returncode == 0
    (tmp_path / "bad.csv").write_text("series_id,ts,value\nA,2024-01-01,1\nA,yesterday,2\n")
    assert_one_line_error(forecasting("load", "bad.csv", cwd=tmp_path), 2, "1 of 2 rows are invalid, nothing was loaded", "row 2")


def test_init_load_run_list_and_forecast_again(tmp_path, prefect_server):
    write_config(tmp_path, "sqlite:///db.sqlite")
    first = forecasting("init", cwd=tmp_path)
    assert first.returncode == 0 and "tables at migration" in first.stdout
    again = forecasting("init", cwd=tmp_path)
    assert again.returncode == 0 and "already current" in again.stdout
    synthetic_frame().rename(columns={"series_id": "sku", "ts": "month", "value": "units"}).to_csv(tmp_path / "obs.csv", index=False)
    loaded = forecasting("load", "obs.csv", "--series-column", "sku", "--time-column", "month", "--value-column", "units", cwd=tmp_path)
    assert loaded.returncode == 0 and "loaded 384 observations of 8 series" in loaded.stdout
    run = forecasting("run", "--model", "tiny", "--mode", "retrain", cwd=tmp_path, api_url=prefect_server)
    assert run.returncode == 0, run.stderr[-3000:]
    for text in ("series read: 8", "GRU [8 units dropout 0.1 tanh, 4 units tanh]", "version registered: 1", "rows written: 48 to table forecasts", "rows written: 48 to Parquet"):
        assert text in run.stdout
    listing = forecasting("models", "list", cwd=tmp_path)
    assert listing.returncode == 0 and "tiny" in listing.stdout and "v1" in listing.stdout and "champion" in listing.stdout
    show = forecasting("models", "show", "tiny", cwd=tmp_path)
    assert show.returncode == 0 and '"format_version": 2' in show.stdout and '"series_count": 8' in show.stdout
    forecast = forecasting("run", "--model", "tiny", "--mode", "forecast", cwd=tmp_path, api_url=prefect_server)
    assert forecast.returncode == 0, forecast.stderr[-3000:]
    assert "rows written: 48 to table forecasts" in forecast.stdout and "no training in this run" in forecast.stdout
    assert_one_line_error(forecasting("models", "rollback", "tiny", cwd=tmp_path), 1, "no previous champion to roll back to")
    again = forecasting("models", "promote", "tiny", "1", cwd=tmp_path)
    assert again.returncode == 0 and "v1 is already the champion" in again.stdout and "nothing changed" in again.stdout
    assert_one_line_error(forecasting("tune", "--model", "tiny", "--max-trials", "0", cwd=tmp_path), 2, "--max-trials: must be a positive number")
