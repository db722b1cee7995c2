"""Deployment definitions come from the config; the committed prefect.yaml never drifts from it."""

from pathlib import Path

import yaml

from forecasting.config.settings import load_settings, parse_settings
from forecasting.config.deployments import deployment_specs, render_prefect_yaml
from tests.support.data import TINY_MODEL, write_config

ROOT = Path(__file__).parents[2]


def test_generated_prefect_yaml_works_from_the_configs_own_folder_outside_the_clone(tmp_path, monkeypatch, capsys):
    """Issue 27.5: a config in its own folder, the command run from elsewhere: the file's paths are absolute
    and resolve (the run's working folder and its config), and no deployment says `schedules: []`."""
    from forecasting.cli.main import main

    folder, elsewhere = tmp_path / "shop", tmp_path / "elsewhere"
    folder.mkdir(), elsewhere.mkdir()
    assert not folder.is_relative_to(ROOT)
    schedule = {"timezone": "UTC", "retrain": "0 4 * * 0"}
    config = write_config(folder, "sqlite:///shop.db", model={"schedule": schedule})
    monkeypatch.chdir(elsewhere)
    assert main(["--config", str(config), "deployments"]) == 0
    written = folder / "deployments" / "prefect.yaml"
    text = written.read_text()
    document = yaml.safe_load(text)
    (step,) = document["pull"]
    directory = Path(step["prefect.deployments.steps.set_working_directory"]["directory"])
    assert directory.is_absolute() and directory == folder.resolve()
    for deployment in document["deployments"]:
        named = Path(deployment["parameters"]["config"])
        assert named.is_absolute() and named.is_file() and load_settings(named).models.keys() == {"tiny"}
    assert f"--prefect-file {written}" in text and "schedules: []" not in text
    by_name = {d["name"]: d for d in document["deployments"]}
    assert by_name["tiny-retrain"]["schedules"][0]["cron"] == "0 4 * * 0" and by_name["tiny-forecast"]["schedules"] is None
    monkeypatch.chdir(folder)  # the same file whichever folder the command runs from
    assert main(["--config", "forecasting.toml", "deployments", "--check"]) == 0
    assert written.read_text() == render_prefect_yaml(load_settings(config), config, written)


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
    document = yaml.safe_load(render_prefect_yaml(settings, ROOT / "forecasting.toml"))
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
