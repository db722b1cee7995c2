"""The `tune-model` flow: keras-tuner search for one model; the winner becomes a tuning record."""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.forecast_pipeline import recorded_run
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
    result = recorded_run(
        config, model, "tune", run_search,
        lambda r: f"tune: {r['tuner']} search, {r['trials_run_now']} trials run now, {r['trials_completed']} in all",
        tuner, max_trials,
    )
    create_markdown_artifact(
        key=f"{model}-tuning".lower().replace("_", "-"),
        markdown=pipeline.format_tuning(result),
        description=f"Hyperparameter search for model {model}",
    )
    return result
