"""The `forecast-pipeline` flow: pull observations, train if needed, forecast, write SQL and Parquet."""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment, flow_run
from prefect.tasks import exponential_backoff

from forecasting import pipeline
from forecasting.config import Settings, load_settings
from forecasting.errors import ForecastingError
from forecasting.locking import model_lock

Mode = Literal["auto", "retrain", "fine-tune", "forecast"]


def transient_failure(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry unexpected errors (a dropped connection); never our own clear errors (bad config, bad data)."""
    try:
        error = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001
        return True
    return not isinstance(error, ForecastingError)


db_task = task(
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=transient_failure,
)


@db_task
def start_run(config: str | None, model: str, mode: str, flow_run_id: str | None, deployment_name: str | None, trigger: str) -> str:
    """Record a running row in `runs` after checking config and schema."""
    return pipeline.start_run(load_settings(config), model, mode, flow_run_id, deployment_name, trigger)


@db_task
def decide_mode(config: str | None, model: str, mode: str) -> dict[str, str]:
    """Pick the mode to run and say why."""
    return pipeline.decide_mode(load_settings(config), model, mode)


@task(cache_policy=NO_CACHE, persist_result=False)
def train(config: str | None, model: str, run_id: str, mode: str) -> dict[str, Any]:
    """Retrain or fine-tune, score against the champion, register and maybe promote."""
    return pipeline.train_step(load_settings(config), model, run_id, mode=mode, verbose=2)


@db_task
def forecast(config: str | None, model: str, run_id: str) -> dict[str, Any]:
    """Forecast every series with the champion; stage the rows as a file."""
    return pipeline.forecast_step(load_settings(config), model, run_id)


@db_task
def write_sql(config: str | None, staged: str) -> int:
    """Upsert staged forecasts into the SQL table."""
    return pipeline.write_sql_step(load_settings(config), staged)


@db_task
def write_parquet(config: str | None, staged: str) -> int:
    """Upsert staged forecasts into the Parquet dataset."""
    return pipeline.write_parquet_step(load_settings(config), staged)


@db_task
def finish_run(config: str | None, run_id: str, summary: dict[str, Any], staged: str | None) -> None:
    """Mark the run completed with its counts."""
    pipeline.finish_run(load_settings(config), run_id, summary, staged)


def run_context() -> tuple[str | None, str | None, str]:
    """(flow run id, deployment name, trigger): `scheduled` for runs the scheduler created, else `manual`."""
    run_id = flow_run.id
    if not run_id:
        return None, None, "manual"
    trigger = "manual"
    if deployment.id:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            if client.read_flow_run(run_id).auto_scheduled:
                trigger = "scheduled"
    return str(run_id), deployment.name, trigger


def lock_for(settings: Settings, model: str) -> Any:
    """The model's run lock (see forecasting.locking)."""
    return model_lock(
        pipeline.open_engine(settings), settings.storage_root, model, settings.model(model).lock_timeout_minutes * 60
    )


def publish(model: str, summary: dict[str, Any]) -> None:
    """Markdown summary and a table of scores as Prefect artifacts."""
    key = model.lower().replace("_", "-")
    create_markdown_artifact(
        key=f"{key}-run-summary", markdown="```\n" + pipeline.format_summary(summary) + "\n```", description=f"Forecast pipeline run for model {model}"
    )
    scores = pipeline.scores_table(summary)
    if scores:
        create_table_artifact(key=f"{key}-scores", table=scores, description=f"Scores of the version trained for model {model}")


@flow(name="forecast-pipeline", log_prints=True)
def forecast_pipeline(model: str, mode: Mode = "auto", config: str | None = None) -> dict[str, Any]:
    """Run the forecasting job once for one configured model."""
    logger = get_run_logger()
    settings = load_settings(config)
    with lock_for(settings, model) as waited:
        if waited > 1:
            logger.info(f"waited {waited:.0f} s for another run of model {model} to finish")
        run_id = start_run(config, model, mode, *run_context())
        try:
            decision = decide_mode(config, model, mode)
            logger.info(decision["reason"])
            trained = None
            if decision["mode"] in ("retrain", "fine-tune"):
                timeout = settings.model(model).training_timeout_minutes * 60
                trained = train.with_options(timeout_seconds=timeout)(config, model, run_id, decision["mode"])
            staged = forecast(config, model, run_id)
            rows_sql = write_sql(config, staged["staged"])
            rows_parquet = write_parquet(config, staged["staged"])
            summary = pipeline.summary_from_steps(settings, model, run_id, decision, trained, staged, rows_sql, rows_parquet)
            finish_run(config, run_id, summary, staged["staged"])
        except BaseException as error:
            pipeline.fail_run(settings, run_id, error)
            raise
    publish(model, summary)
    return summary
