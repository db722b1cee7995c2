"""The `tune-model` flow: keras-tuner search for one model; the winner becomes a tuning record."""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.tasks import plain_task, single_step_run
from forecasting import steps
from forecasting.config.settings import Settings, load_settings


@plain_task
def run_search(settings: Settings, model: str, run_id: str, tuner: str | None, max_trials: int | None) -> steps.TuneSummary:
    """Run or resume the search and store the best hyperparameters."""
    return steps.tune_step(settings, model, run_id, tuner, max_trials, verbose=1)


@flow(name="tune-model", log_prints=True)
def tune_model(
    model: str,
    tuner: Literal["hyperband", "random", "bayesian"] | None = None,
    max_trials: int | None = None,
    config: str | None = None,
) -> dict[str, Any]:
    """Search hyperparameters for one configured model; later retrains use the winner."""
    result = single_step_run(load_settings(config), model, "tune", run_search, tuner, max_trials).as_dict()
    create_markdown_artifact(
        key=f"{model}-tuning".lower().replace("_", "-"),
        markdown=steps.format_tuning(result),
        description=f"Hyperparameter search for model {model}",
    )
    return result
