"""Deployment definitions come from the config; the committed prefect.yaml never drifts from it."""

from pathlib import Path

import yaml

from forecasting.config.settings import load_settings, parse_settings
from forecasting.config.deployments import deployment_specs, render_prefect_yaml
from tests.support.data import TINY_MODEL

ROOT = Path(__file__).parents[2]


def test_committed_prefect_yaml_matches_the_committed_config():
    settings = load_settings(ROOT / "forecasting.toml")
    assert (ROOT / "deployments" / "prefect.yaml").read_text() == render_prefect_yaml(settings), (
        "deployments/prefect.yaml is stale: run `forecasting deployments`"
    )


def test_each_model_gets_five_deployments_with_schedules_only_where_configured():
    settings = parse_settings(
        {"models": {"a": {**TINY_MODEL, "schedule": {"timezone": "Europe/Berlin", "retrain": "0 4 * * 0", "auto": "0 6 * * *"}}, "b": TINY_MODEL}}
    )
    specs = {spec["name"]: spec for spec in deployment_specs(settings)}
    assert sorted(specs) == sorted(f"{m}-{k}" for m in "ab" for k in ("forecast", "fine-tune", "retrain", "auto", "tune"))
    assert specs["a-retrain"]["schedules"] == [{"cron": "0 4 * * 0", "timezone": "Europe/Berlin", "slug": "a-retrain-schedule"}]
    assert specs["a-retrain"]["parameters"] == {"model": "a", "mode": "retrain"}
    assert specs["a-auto"]["schedules"][0]["cron"] == "0 6 * * *" and specs["a-forecast"]["schedules"] == []
    assert specs["b-tune"]["flow_name"] == "tune-model" and specs["b-tune"]["entrypoint"] == "flows.tune_model.tune_model"
    document = yaml.safe_load(render_prefect_yaml(settings))
    for deployment in document["deployments"]:
        assert deployment["enforce_parameter_schema"] is True
        assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
        assert deployment["work_pool"] == {"name": "forecasting"} and ":" not in deployment["entrypoint"]


def test_only_our_own_errors_are_not_retried():
    from prefect.states import Failed

    from flows.tasks import transient_failure
    from forecasting.errors import ConfigError

    import sqlalchemy as sa

    dropped = sa.exc.OperationalError("SELECT 1", {}, ConnectionResetError("connection reset by peer"))
    assert transient_failure(None, None, Failed(data=dropped)) is True
    assert transient_failure(None, None, Failed(data=ConfigError("source.table: missing"))) is False
