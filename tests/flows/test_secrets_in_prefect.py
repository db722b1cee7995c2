"""Issue 26: no part of a database password reaches a Prefect server's records (logs, flow-run and
task-run state messages, artifacts, parameters) or `runs.error`, for a run that completes, a run
whose database does not answer, and a URL that cannot be parsed. Everything is read back from the
session's Prefect server through the client API, as an operator's UI would show it."""

import asyncio
import json
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from flows.forecast_pipeline import forecast_pipeline
from forecasting.config.settings import SourceConfig, load_settings
from forecasting.sources.database import create_db_engine
from forecasting.sources.loading import load_observations
from forecasting.sources.schema import migrate
from tests.support.data import synthetic_frame
from tests.support.postgres_server import create_database, free_port

pytestmark = [pytest.mark.slow, pytest.mark.prefect, pytest.mark.postgres]
PASSWORD = "Zq7@Secr3t:w/rd#Kx9"
FRAGMENTS = [PASSWORD, quote(PASSWORD, safe=""), "Zq7", "Secr3t", "w/rd", "w%2Frd", "Kx9"]
UNENCODED = "x@y:SECRET6w"  # not percent-encoded: the example of a password that leaked in part


async def prefect_texts(flow_run_ids):
    """Every text the Prefect server keeps of these flow runs: logs, flow and task run states and
    their messages, parameters, artifacts."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId

    texts = []
    async with get_client() as client:
        for flow_run_id in flow_run_ids:
            run = await client.read_flow_run(flow_run_id)
            texts.append(json.dumps(run.model_dump(mode="json"), default=str))
            for state in await client.read_flow_run_states(flow_run_id):
                texts.append(f"{state.name} {state.message}")
            logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200)
            offset = len(logs)
            while len(logs) == offset and offset:
                more = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200, offset=offset)
                if not more:
                    break
                logs += more
                offset = len(logs)
            texts += [log.message for log in logs]
            for task_run in await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))):
                texts.append(json.dumps(task_run.model_dump(mode="json"), default=str))
                texts += [f"{state.name} {state.message}" for state in await client.read_task_run_states(task_run.id)]
            artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
            texts += [json.dumps(artifact.model_dump(mode="json"), default=str) for artifact in artifacts]
    return texts, sum(1 for text in texts if text)


def flow_run_ids_after(started_after):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

    async def read():
        async with get_client() as client:
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=started_after)))
            return [run.id for run in runs]

    return asyncio.run(read())


def assert_no_fragment(texts, fragments):
    for text in texts:
        for fragment in fragments:
            assert fragment not in text, f"{fragment!r} in {text[:500]!r}"


def with_password(url, password):
    """`url` (postgresql+psycopg://user@host:port/db) with `password` written in as given."""
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{password}@{host}"


def test_no_part_of_the_password_reaches_prefect_or_runs_error(postgres_admin_url, settings_for, prefect_server, monkeypatch, tmp_path):
    import pendulum  # lazy: prefect's clock

    started = pendulum.now("UTC").subtract(seconds=5)
    # The test server trusts local connections, so the password is not checked; it is in every URL the job holds.
    url = with_password(create_database(postgres_admin_url), quote(PASSWORD, safe=""))
    # A password belongs in the environment (a config file with one is refused).
    _, path = settings_for(f"sqlite:///{tmp_path / 'unused.db'}")
    monkeypatch.setenv("FORECASTING_DATABASE_URL", url)
    settings = load_settings(path)
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame())
    summary = forecast_pipeline(model="tiny", mode="retrain", config=str(path))
    assert summary["rows_sql"] == 48
    # A run that fails after it started keeps its error in runs.error: the champion's files are gone.
    shutil.rmtree(Path(settings.storage_root) / "models" / "tiny" / "1")
    with pytest.raises(Exception):
        forecast_pipeline(model="tiny", mode="forecast", config=str(path))
    with engine.connect() as connection:
        errors = connection.execute(sa.text("SELECT error FROM runs WHERE error IS NOT NULL")).scalars().all()
    assert errors  # the failed run is recorded
    assert_no_fragment(errors, FRAGMENTS)

    # Nothing answers on this port: every connection fails (the steps retry, then the run fails).
    down = with_password(f"postgresql+psycopg://job@127.0.0.1:{free_port()}/forecasts", quote(PASSWORD, safe=""))
    monkeypatch.setenv("FORECASTING_DATABASE_URL", down)
    with pytest.raises(Exception) as failed:
        forecast_pipeline(model="tiny", mode="forecast", config=str(path))
    assert_no_fragment([str(failed.value)], FRAGMENTS)

    # Not percent-encoded: `x@y:SECRET6w` is read whole as the password; nothing answers, and no part of it shows.
    unparseable = f"postgresql+psycopg://job:{UNENCODED}@127.0.0.1:{free_port()}/forecasts"
    monkeypatch.setenv("FORECASTING_DATABASE_URL", unparseable)
    with pytest.raises(Exception) as refused:
        forecast_pipeline(model="tiny", mode="forecast", config=str(path))
    assert_no_fragment([str(refused.value)], ["SECRET6", UNENCODED])

    ids = flow_run_ids_after(started)
    assert len(ids) >= 4
    texts, count = asyncio.run(prefect_texts(ids))
    assert count > 20 and any("rows" in text for text in texts)  # the records were read, not an empty answer
    assert_no_fragment(texts, [*FRAGMENTS, "SECRET6", UNENCODED])
