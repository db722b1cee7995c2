"""The `tune-model` flow: keras-tuner search for one model; the winner becomes a tuning record."""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.forecast_pipeline import TRAINING_TIMEOUT_SECONDS, finish_run, start_run
from forecasting import pipeline
from forecasting.config import load_settings


@task(cache_policy=NO_CACHE, persist_result=False, timeout_seconds=TRAINING_TIMEOUT_SECONDS)
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
    run_id = start_run(config, model, "tune")
    try:
        result = run_search(config, model, run_id, tuner, max_trials)
        reason = f"tune: {result['tuner']} search, {result['trials_run_now']} trials run now, {result['trials_completed']} in all"
        finish_run(config, run_id, {"mode": "tune", "reason": reason}, None)
    except BaseException as error:
        pipeline.fail_run(load_settings(config), run_id, error)
        raise
    create_markdown_artifact(
        key=f"{model}-tuning".lower().replace("_", "-"),
        markdown=pipeline.format_tuning(result),
        description=f"Hyperparameter search for model {model}",
    )
    return result
