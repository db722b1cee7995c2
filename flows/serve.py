"""`forecasting serve`: every configured deployment with its schedules, served from one process."""

from __future__ import annotations

from typing import Any

from prefect import Flow, serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.schedules import Cron

from flows.forecast_pipeline import forecast_pipeline
from flows.tune_model import tune_model
from forecasting.config.settings import load_settings
from forecasting.config.deployments import deployment_specs

FLOWS: dict[str, Flow[..., Any]] = {"forecast-pipeline": forecast_pipeline, "tune-model": tune_model}


def runner_deployments(config_path: str) -> list[Any]:
    """The deployments of `deployment_specs`, bound to this config file."""
    deployments = []
    for spec in deployment_specs(load_settings(config_path)):
        deployments.append(
            FLOWS[spec["flow_name"]].to_deployment(
                name=spec["name"],
                description=spec["description"],
                parameters={**spec["parameters"], "config": config_path},
                schedules=[Cron(s["cron"], timezone=s["timezone"], slug=s["slug"]) for s in spec["schedules"]],
                concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
                enforce_parameter_schema=True,
                tags=spec["tags"],
            )
        )
    return deployments


def serve_all(config_path: str, limit: int | None = None) -> None:
    """Serve until stopped; stopping leaves the schedules active (`pause_on_shutdown=False`)."""
    serve(*runner_deployments(config_path), pause_on_shutdown=False, limit=limit)
