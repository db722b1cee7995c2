"""The `backtest-model` flow: a rolling-origin backtest of one model's config, scores stored in `backtests`."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.forecast_pipeline import recorded_run
from forecasting import pipeline
from forecasting.config import load_settings


@task(cache_policy=NO_CACHE, persist_result=False)
def run_backtest(config: str | None, model: str, run_id: str, windows: int, step: int | None) -> dict[str, Any]:
    """Train and forecast at each origin, score, and store the scores."""
    return pipeline.backtest_step(load_settings(config), model, run_id, windows, step)


@flow(name="backtest-model", log_prints=True)
def backtest_model(model: str, windows: int = 3, step: int | None = None, config: str | None = None) -> dict[str, Any]:
    """Backtest one configured model over `windows` rolling origins `step` periods apart (default: its horizon)."""
    result = recorded_run(
        config, model, "backtest", run_backtest,
        lambda r: f"backtest: {windows} windows, sMAPE {r['smape']:.2f} (seasonal naive {r['seasonal_naive_smape']:.2f}), MASE {r['mase']:.3f}",
        windows, step,
    )
    create_markdown_artifact(
        key=f"{model}-backtest".lower().replace("_", "-"),
        markdown=f"```\n{result['table']}\n```",
        description=f"Rolling-origin backtest of model {model}",
    )
    return result
