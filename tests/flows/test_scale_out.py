"""Fan-out across models with prefect-dask: parallel training gives the same forecasts as sequential."""

import os

import pandas as pd
import pytest
import sqlalchemy as sa
from prefect_dask import DaskTaskRunner

from flows.forecast_pipeline import forecast_models, forecast_pipeline
from forecasting.config.settings import SourceConfig, load_settings
from forecasting.sources.database import create_db_engine
from forecasting.sources.loading import load_observations
from forecasting.sources.schema import migrate
from tests.support.data import TINY_MODEL, synthetic_frame, toml_value

pytestmark = pytest.mark.usefixtures("prefect_server")


def two_model_project(folder):
    folder.mkdir()
    models = {"tiny_gru": {**TINY_MODEL}, "tiny_lstm": {**TINY_MODEL, "cell": "lstm", "seed": 7}}
    lines = ['[database]', 'url = "sqlite:///db.sqlite"', '[storage]', 'root = "store"', '[source]', 'frequency = "MS"']
    for name, model in models.items():
        lines.append(f"[models.{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in model.items()]
    (folder / "forecasting.toml").write_text("\n".join(lines) + "\n")
    settings = load_settings(folder / "forecasting.toml")
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame())
    return str(folder / "forecasting.toml"), engine


def forecasts(engine):
    with engine.connect() as connection:
        frame = pd.read_sql(sa.text("SELECT model_name, series_id, target_ts, yhat FROM forecasts"), connection)
    return frame.sort_values(["model_name", "series_id", "target_ts"]).reset_index(drop=True)


def test_two_models_in_parallel_on_dask_match_sequential_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("FORECASTING_DATABASE_URL", raising=False)
    sequential_config, sequential_engine = two_model_project(tmp_path / "sequential")
    for model in ("tiny_gru", "tiny_lstm"):
        forecast_pipeline(model=model, mode="retrain", config=sequential_config)
    parallel_config, parallel_engine = two_model_project(tmp_path / "parallel")
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": None})
    summaries = forecast_models.with_options(task_runner=runner)(mode="retrain", config=parallel_config)
    assert sorted(summaries) == ["tiny_gru", "tiny_lstm"]
    processes = {summary["training"]["process"] for summary in summaries.values()}
    assert len(processes) == 2 and os.getpid() not in processes  # trained in two Dask worker processes
    assert all(summary["produced_version"] == 1 and summary["rows_sql"] == 48 for summary in summaries.values())
    expected, actual = forecasts(sequential_engine), forecasts(parallel_engine)
    assert len(actual) == 96
    pd.testing.assert_frame_equal(expected, actual)
