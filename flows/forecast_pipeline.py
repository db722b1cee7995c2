"""The `forecast-pipeline` flow: pull observations, train if needed, forecast, write SQL and Parquet.

Settings are read and validated once per flow run and handed to every task, so editing the config
file during a long training cannot change the later tasks of the same run."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from flows.logs import forward_library_logs
from flows.tasks import commit_source_pull, db_task, plain_task, pull_source, recorded_runs, transient_failure
from forecasting import steps
from forecasting.config.settings import Settings, load_settings
from forecasting.errors import RunError
from forecasting.steps import Mode
from forecasting.steps.mode import TRAINING_MODES

__all__ = ["forecast_models", "forecast_pipeline", "transient_failure"]


@db_task
def score_forecast_errors(settings: Settings, model: str, run_id: str) -> steps.ScoringSummary:
    """Score the model's stored forecasts whose actuals arrived with the pull into forecast_errors."""
    return steps.score_step(settings, model, run_id)


@plain_task
def write_report(settings: Settings, model: str) -> str:
    """Write the model's HTML report (latest and dated copy); its path, or why it was not written."""
    return steps.report_step(settings, model)


@db_task
def choose_run_mode(settings: Settings, model: str, mode: str) -> steps.ModeDecision:
    """Pick the mode to run and say why."""
    return steps.decide_mode(settings, model, mode)


@plain_task
def train_version(settings: Settings, model: str, run_id: str, mode: str) -> steps.TrainSummary:
    """Retrain or fine-tune, score against the champion, register and maybe promote."""
    forward_library_logs()  # again here: run on a Dask task runner, this task is in a worker process
    return steps.train_step(settings, model, run_id, mode=mode, verbose=2)


@db_task
def forecast_series(settings: Settings, model: str, run_id: str) -> steps.ForecastSummary:
    """Forecast every series with the champion; stage the rows as a file."""
    forward_library_logs()  # again here: run on a Dask task runner, this task is in a worker process
    return steps.forecast_step(settings, model, run_id)


@db_task
def write_sql_table(settings: Settings, staged: str) -> int:
    """Upsert staged forecasts into the SQL table."""
    return steps.write_sql_step(settings, staged)


@db_task
def write_parquet_dataset(settings: Settings, staged: str) -> int:
    """Upsert staged forecasts into the Parquet dataset."""
    return steps.write_parquet_step(settings, staged)


@db_task
def repair_parquet_dataset(settings: Settings, model: str) -> dict[str, Any]:
    """Rebuild from SQL the model's Parquet partitions that are missing, unreadable or short."""
    return steps.repair_parquet_step(settings, model)


def publish(settings: Settings, model: str, summary: dict[str, Any]) -> None:
    """Markdown summary, live accuracy with a link to the report (a presigned URL on an object store),
    and a table of scores as Prefect artifacts."""
    key = model.lower().replace("_", "-")
    create_markdown_artifact(
        key=f"{key}-run-summary", markdown="```\n" + steps.format_summary(summary) + "\n```", description=f"Forecast pipeline run for model {model}"
    )
    try:
        link = steps.report_link(settings, (summary.get("accuracy") or {}).get("report"))
    except RunError as error:
        get_run_logger().warning(f"{model}: no link to the report: {error}")
        link = None
    if link:
        create_link_artifact(key=f"{key}-report", link=link, link_text=f"Report of model {model}", description=f"The HTML report of model {model}")
    live = steps.live_markdown(summary, link)
    if live:
        create_markdown_artifact(key=f"{key}-live-accuracy", markdown=live, description=f"Live accuracy of model {model} and its report")
    scores = steps.scores_table(summary)
    if scores:
        create_table_artifact(key=f"{key}-scores", table=scores, description=f"Scores of the version trained for model {model}")


def run_models(
    settings: Settings, models: list[str], mode: str, full_refresh: bool = False, allow_series_drop: bool = False
) -> dict[str, dict[str, Any]]:
    """The pipeline for each model while holding every model's lock. Training and forecasting are
    submitted to the flow's task runner, so on a parallel runner (Dask) the models train in parallel.
    Returns each model's summary as plain data (`RunSummary.as_dict()`)."""
    logger = get_run_logger()
    models = sorted(dict.fromkeys(models))
    for model in models:
        settings.model(model)
    summaries: dict[str, dict[str, Any]] = {}
    with recorded_runs(settings, models, mode) as records:
        run_ids = records.run_ids
        pulled = pull_source(settings, run_ids[models[0]], full_refresh, allow_series_drop)
        scoring = {model: score_forecast_errors(settings, model, run_ids[model]) for model in models}
        decisions = {model: choose_run_mode(settings, model, mode) for model in models}
        for model, decision in decisions.items():
            logger.info(f"{model}: {decision.reason}")
        training = {
            model: train_version.submit(settings, model, run_ids[model], decision.mode)
            for model, decision in decisions.items()
            if decision.mode in TRAINING_MODES
        }
        trained = {model: future.result() for model, future in training.items()}
        forecasting = {model: forecast_series.submit(settings, model, run_ids[model]) for model in models}
        staged = {model: future.result() for model, future in forecasting.items()}
        for model in models:
            writes = steps.Writes(
                rows_sql=write_sql_table(settings, staged[model].staged),
                rows_parquet=write_parquet_dataset(settings, staged[model].staged),
                repaired=repair_parquet_dataset(settings, model),
            )
            summary = steps.summarise(settings, model, run_ids[model], decisions[model], staged[model], writes, trained.get(model), pulled)
            summary = steps.with_accuracy(settings, summary, scoring[model], write_report(settings, model))
            summaries[model] = summary.as_dict()
            records.finish(model, summaries[model], staged[model].staged)
        commit_source_pull(settings, run_ids[models[0]], pulled)
    for model, summary in summaries.items():
        publish(settings, model, summary)
    return summaries


@flow(name="forecast-pipeline", log_prints=True)
def forecast_pipeline(
    model: str, mode: Mode = "auto", config: str | None = None, full_refresh: bool = False, allow_series_drop: bool = False
) -> dict[str, Any]:
    """Run the forecasting job once for one configured model."""
    return run_models(load_settings(config), [model], mode, full_refresh, allow_series_drop)[model]


@flow(name="forecast-models", log_prints=True)
def forecast_models(
    models: list[str] | None = None, mode: Mode = "auto", config: str | None = None, full_refresh: bool = False
) -> dict[str, dict[str, Any]]:
    """Run the forecasting job once for several models (default: all configured), fanned out on the task runner."""
    settings = load_settings(config)
    return run_models(settings, models or sorted(settings.models), mode, full_refresh)
