"""The `forecast-pipeline` flow: pull observations, train if needed, forecast, write SQL and Parquet."""

from __future__ import annotations

import contextlib
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment, flow_run
from prefect.tasks import exponential_backoff

from forecasting import pipeline
from forecasting.config import Settings, load_settings
from forecasting.errors import ForecastingError
from forecasting.locking import model_lock
from forecasting.pipeline import Mode



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
def pull(config: str | None, run_id: str, full_refresh: bool, allow_series_drop: bool = False) -> dict[str, Any]:
    """Pull new source rows into the history store (quarantining unusable ones)."""
    return pipeline.pull_step(load_settings(config), run_id, full_refresh, allow_series_drop)


@db_task
def commit_pull(config: str | None, run_id: str, pulled: dict[str, Any]) -> None:
    """Advance the source watermark once the run's outputs are committed."""
    pipeline.commit_pull(load_settings(config), run_id, pulled)


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
def repair_parquet(config: str | None, model: str) -> dict[str, Any]:
    """Rebuild from SQL the model's Parquet partitions that are missing, unreadable or short."""
    return pipeline.repair_parquet_step(load_settings(config), model)


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


def recorded_run(config: str | None, model: str, mode: str, step: Any, reason: Any, *args: Any) -> dict[str, Any]:
    """One run of a single-step flow (tune, backtest): the model's lock, a `runs` row, a pull, the
    step task, then the run finished and the pull committed; failed on any error. The training time
    limit is enforced inside training and tuning (forecasting.training.Deadline), not by a task timeout,
    which cannot interrupt a thread."""
    settings = load_settings(config)
    with lock_for(settings, model):
        run_id = start_run(config, model, mode, *run_context())
        try:
            pulled = pull(config, run_id, False)
            result = step(config, model, run_id, *args)
            finish_run(config, run_id, {"mode": mode, "reason": reason(result), "pull": pulled}, None)
            commit_pull(config, run_id, pulled)
        except BaseException as error:
            pipeline.fail_run(settings, run_id, error)
            raise
    return result


def publish(model: str, summary: dict[str, Any]) -> None:
    """Markdown summary and a table of scores as Prefect artifacts."""
    key = model.lower().replace("_", "-")
    create_markdown_artifact(
        key=f"{key}-run-summary", markdown="```\n" + pipeline.format_summary(summary) + "\n```", description=f"Forecast pipeline run for model {model}"
    )
    scores = pipeline.scores_table(summary)
    if scores:
        create_table_artifact(key=f"{key}-scores", table=scores, description=f"Scores of the version trained for model {model}")


def run_models(
    models: list[str], mode: str, config: str | None, full_refresh: bool = False, allow_series_drop: bool = False
) -> dict[str, dict[str, Any]]:
    """The pipeline for each model while holding every model's lock. Training and forecasting are
    submitted to the flow's task runner, so on a parallel runner (Dask) the models train in parallel."""
    logger = get_run_logger()
    settings = load_settings(config)
    models = sorted(dict.fromkeys(models))
    for model in models:
        settings.model(model)
    context = run_context()
    summaries: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as locks:
        for model in models:  # always in sorted order, so two runs over several models cannot deadlock
            waited = locks.enter_context(lock_for(settings, model))
            if waited > 1:
                logger.info(f"waited {waited:.0f} s for another run of model {model} to finish")
        run_ids = {model: start_run(config, model, mode, *context) for model in models}
        try:
            pulled = pull(config, run_ids[models[0]], full_refresh, allow_series_drop)
            decisions = {model: decide_mode(config, model, mode) for model in models}
            for model, decision in decisions.items():
                logger.info(f"{model}: {decision['reason']}")
            training = {
                model: train.submit(config, model, run_ids[model], decision["mode"])
                for model, decision in decisions.items()
                if decision["mode"] in ("retrain", "fine-tune")
            }
            trained = {model: future.result() for model, future in training.items()}
            forecasting = {model: forecast.submit(config, model, run_ids[model]) for model in models}
            staged = {model: future.result() for model, future in forecasting.items()}
            for model in models:
                rows_sql = write_sql(config, staged[model]["staged"])
                rows_parquet = write_parquet(config, staged[model]["staged"])
                repaired = repair_parquet(config, model)
                summary = pipeline.summary_from_steps(
                    settings, model, run_ids[model], decisions[model], trained.get(model), staged[model], rows_sql, rows_parquet, pulled,
                    repaired,
                )
                finish_run(config, run_ids[model], summary, staged[model]["staged"])
                summaries[model] = summary
            commit_pull(config, run_ids[models[0]], pulled)
        except BaseException as error:
            for model in models:
                if model not in summaries:
                    pipeline.fail_run(settings, run_ids[model], error)
            raise
    for model, summary in summaries.items():
        publish(model, summary)
    return summaries


@flow(name="forecast-pipeline", log_prints=True)
def forecast_pipeline(
    model: str, mode: Mode = "auto", config: str | None = None, full_refresh: bool = False, allow_series_drop: bool = False
) -> dict[str, Any]:
    """Run the forecasting job once for one configured model."""
    return run_models([model], mode, config, full_refresh, allow_series_drop)[model]


@flow(name="forecast-models", log_prints=True)
def forecast_models(
    models: list[str] | None = None, mode: Mode = "auto", config: str | None = None, full_refresh: bool = False
) -> dict[str, dict[str, Any]]:
    """Run the forecasting job once for several models (default: all configured), fanned out on the task runner."""
    return run_models(models or sorted(load_settings(config).models), mode, config, full_refresh)
