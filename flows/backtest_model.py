"""The `backtest-model` flow: a rolling-origin backtest of one model's config, scores stored in `backtests`."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.tasks import plain_task, single_step_run
from forecasting import steps
from forecasting.config.settings import Settings, load_settings


@plain_task
def run_backtest(settings: Settings, model: str, run_id: str, windows: int, step: int | None) -> steps.BacktestSummary:
    """Train and forecast at each origin, score, and store the scores."""
    return steps.backtest_step(settings, model, run_id, windows, step)


@flow(name="backtest-model", log_prints=True)
def backtest_model(model: str, windows: int = 3, step: int | None = None, config: str | None = None) -> dict[str, Any]:
    """Backtest one configured model over `windows` rolling origins `step` periods apart (default: its horizon)."""
    result = single_step_run(load_settings(config), model, "backtest", run_backtest, windows, step).as_dict()
    create_markdown_artifact(
        key=f"{model}-backtest".lower().replace("_", "-"),
        markdown=f"```\n{result['table']}\n```",
        description=f"Rolling-origin backtest of model {model}",
    )
    return result
