"""A flow run's logs in Prefect (read back from its API) hold the progress lines of the long phases:
training epochs, forecasting, the SQL and Parquet writes, with counts and an estimate of the time left."""

import asyncio
import re

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogWorker

from flows.forecast_pipeline import forecast_pipeline
from forecasting.config.settings import SourceConfig
from forecasting.sources.database import create_db_engine
from forecasting.sources.loading import load_observations
from forecasting.sources.schema import migrate
from tests.support.data import synthetic_frame

pytestmark = pytest.mark.usefixtures("prefect_server")


async def flow_run_logs(flow_run_id) -> list[str]:
    async with get_client() as client:
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200)
    return [log.message for log in logs]


def test_a_run_logs_progress_of_epochs_forecasting_and_writes_with_time_left(database_url, settings_for, monkeypatch):
    settings, path = settings_for(database_url)
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame())
    monkeypatch.setenv("FORECASTING_PROGRESS_SECONDS", "0")  # a line at every update: the tiny run is over in seconds
    state = forecast_pipeline(model="tiny", mode="retrain", config=str(path), return_state=True)
    assert state.is_completed()
    APILogWorker.drain_all()
    messages = asyncio.run(flow_run_logs(state.state_details.flow_run_id))

    def matching(pattern: str) -> list[str]:
        return [message for message in messages if re.search(pattern, message)]

    assert matching(r"^train epochs: started, \d+ batches to go$")
    # Where early stopping likely ends the training first (issue 27), the bound after it; once that is passed, the bound alone.
    likely = matching(r"^train epochs: \d+/\d+ batches \(\d+%\), .*, about .* left \(early stopping likely ends it near epoch 3 of 4; at most .*\); epoch \d+/4, loss ")
    epochs = likely + matching(r"^train epochs: \d+/\d+ batches \(\d+%\), .*, at most .* left \(early stopping may end it sooner\); epoch \d+/4, loss ")
    assert likely
    assert epochs and any("val_loss" in line for line in epochs)
    assert matching(r"^train epochs: done, \d+/\d+ batches in .*; (stopped early after \d/4|4/4) epochs, last val_loss ")
    assert matching(r"^forecast: 8/8 series \(100%\), .*, about 0\.0 s left$") and matching(r"^forecast: done, 8/8 series in ")
    assert matching(r"^sql write forecasts: started, 48 rows to go$")
    assert matching(r"^sql write forecasts: 48/48 rows \(100%\), .*, about 0\.0 s left")
    assert matching(r"^parquet write: 48/48 rows \(100%\), .*, about 0\.0 s left; partition tiny/2023-12-01$")
    assert matching(r"^pull: history store merge: done, \d+/\d+ buckets in ")
    assert matching(r"^phase sql write: [0-9.]+ s$") and matching(r"^phase train epochs: .*\(epochs \d, windows \d+\)$")  # phase lines too
