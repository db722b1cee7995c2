"""The CLI as a person meets it, end to end in subprocesses (its error paths: tests/integration/test_cli_errors.py)."""



from tests.support.data import synthetic_frame, write_config
from tests.support.cli import assert_one_line_error, forecasting


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
