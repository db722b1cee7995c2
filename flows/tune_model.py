"""The `tune-model` flow: keras-tuner search for one model; the winner becomes a tuning record."""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.forecast_pipeline import commit_pull, finish_run, lock_for, pull, run_context, start_run
from forecasting import pipeline
from forecasting.config import load_settings


@task(cache_policy=NO_CACHE, persist_result=False)
def run_search(config: str | None, model: str, run_id: str, tuner: str | None, max_trials: int | None) -> dict[str, Any]:
    """Run or resume the search and store the best hyperparameters."""
    return pipeline.tune_step(load_settings(config), model, run_id, tuner, max_trials, verbose=1)


@flow(name="tune-model", log_prints=True)
def tune_model(
    model: str,
    tuner: Literal["hyperband", "random", "bayesian"] | None = None,
    max_trials: int | None = None,
    config: str | None = None,
) -> dict[str, Any]:
    """Search hyperparameters for one configured model; later retrains use the winner."""
    settings = load_settings(config)
    with lock_for(settings, model):
        run_id = start_run(config, model, "tune", *run_context())
        try:
            pulled = pull(config, run_id, False)
            timeout = settings.model(model).training_timeout_minutes * 60
            result = run_search.with_options(timeout_seconds=timeout)(config, model, run_id, tuner, max_trials)
            reason = f"tune: {result['tuner']} search, {result['trials_run_now']} trials run now, {result['trials_completed']} in all"
            finish_run(config, run_id, {"mode": "tune", "reason": reason, "pull": pulled}, None)
            commit_pull(config, run_id, pulled)
        except BaseException as error:
            pipeline.fail_run(settings, run_id, error)
            raise
    create_markdown_artifact(
        key=f"{model}-tuning".lower().replace("_", "-"),
        markdown=pipeline.format_tuning(result),
        description=f"Hyperparameter search for model {model}",
    )
    return result
