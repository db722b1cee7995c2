import pytest

from forecasting.config.settings import load_settings, parse_settings
from forecasting.errors import ConfigError
from tests.conftest import TINY_MODEL, write_config

BASE = {"models": {"m": dict(TINY_MODEL)}}


def settings_with(**model_changes):
    data = {"models": {"m": {**TINY_MODEL, **model_changes}}}
    return parse_settings(data, origin="test.toml")


def test_committed_example_config_is_valid():
    from pathlib import Path

    settings = load_settings(Path(__file__).parents[2] / "forecasting.toml")
    model = settings.model("monthly")
    assert model.cell == "gru" and model.horizon == 18 and model.layers[0].units == 64
    assert settings.source.frequency == "MS"
    assert model.tuning.tuner == "hyperband" and model.schedule.retrain == "0 4 * * 0"


@pytest.mark.parametrize(
    "changes, key, problem",
    [
        ({"cell": "transformer"}, "models.m.cell", "'rnn', 'lstm' or 'gru'"),
        ({"horizon": 0}, "models.m.horizon", "greater than 0"),
        ({"horizon": -3}, "models.m.horizon", "greater than 0"),
        ({"layers": [{"units": 8}, {"dropout": 0.2}]}, "models.m.layers[1].units", "Field required"),
        ({"layers": []}, "models.m.layers", "at least 1"),
        ({"layers": [{"units": 8, "dropout": 1.5}]}, "models.m.layers[0].dropout", "less than 1"),
        ({"learning_rate": 0}, "models.m.learning_rate", "greater than 0"),
        ({"intervals": [80, 120]}, "models.m.intervals", "between 1 and 99"),
        ({"colour": "red"}, "models.m.colour", "unknown key"),
        ({"min_epochs": 60, "epochs": 50}, "models.m", "min_epochs 60 is more than epochs 50"),
        ({"normalization": "boxcox"}, "models.m.normalization", "'series', 'window' or 'window_log'"),
        ({"ensemble": {"members": 0}}, "models.m.ensemble.members", "greater than 0"),
        ({"lookback": 12, "ensemble": {"members": 2, "lookbacks": [6, 24]}}, "models.m", "ensemble lookback 24 is longer than the model's lookback 12"),
    ],
)
def test_bad_model_config_names_key_and_problem(changes, key, problem):
    with pytest.raises(ConfigError) as caught:
        settings_with(**changes)
    message = str(caught.value)
    assert key in message and problem in message
    assert "\n" not in message


def test_bad_source_identifier_and_model_name():
    with pytest.raises(ConfigError, match=r"source.table: .*not a plain SQL identifier"):
        parse_settings({"source": {"table": "observations; DROP TABLE forecasts"}})
    with pytest.raises(ConfigError, match=r"models: .*model name '\.\./\.\./etc'"):
        parse_settings({"models": {"../../etc": dict(TINY_MODEL)}})
    with pytest.raises(ConfigError, match=r"source.frequency: .*not a pandas offset alias"):
        parse_settings({"source": {"frequency": "fortnightly"}})


def test_unknown_model_lists_configured_ones():
    with pytest.raises(ConfigError, match=r"models.nope: no such model in the config \(configured: m\)"):
        settings_with().model("nope")


def test_environment_overrides_database_url(tmp_path, monkeypatch):
    path = write_config(tmp_path, "sqlite:///from-file.db")
    monkeypatch.delenv("FORECASTING_DATABASE_URL", raising=False)
    assert load_settings(path).database.url == f"sqlite:///{tmp_path / 'from-file.db'}"
    monkeypatch.setenv("FORECASTING_DATABASE_URL", "postgresql+psycopg://u:secret@db.example/forecasts")
    assert load_settings(path).database.url == "postgresql+psycopg://u:secret@db.example/forecasts"


def test_relative_paths_resolve_against_config_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("FORECASTING_DATABASE_URL", raising=False)
    monkeypatch.delenv("FORECASTING_STORAGE_ROOT", raising=False)
    path = write_config(tmp_path, "sqlite:///sub/db.sqlite")
    monkeypatch.chdir("/")
    settings = load_settings(path)
    assert settings.database.url == f"sqlite:///{tmp_path / 'sub' / 'db.sqlite'}"
    assert settings.storage_root == tmp_path / "store"


def test_missing_config_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[models.m\ncell = 'gru'\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad)


def test_schedule_checks_cron_and_timezone():
    with pytest.raises(ConfigError, match=r"models.m.schedule.retrain: .*not a 5-field cron expression"):
        settings_with(schedule={"retrain": "weekly"})
    with pytest.raises(ConfigError, match=r"models.m.schedule.timezone: .*not an IANA time zone"):
        settings_with(schedule={"timezone": "Mars/Olympus"})


def test_a_password_in_the_config_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("FORECASTING_DATABASE_URL", raising=False)
    path = write_config(tmp_path, "postgresql+psycopg://job:hunter2@db/forecasts")
    with pytest.raises(ConfigError, match="database.url holds a password; .* set FORECASTING_DATABASE_URL") as caught:
        load_settings(path)
    assert "hunter2" not in str(caught.value)
    monkeypatch.setenv("FORECASTING_DATABASE_URL", "postgresql+psycopg://job:hunter2@db/forecasts")
    write_config(tmp_path, "postgresql+psycopg://job@db/forecasts")
    assert load_settings(path).database.url.endswith("job:hunter2@db/forecasts")  # from the environment: fine


def test_an_empty_storage_root_is_refused_and_a_tilde_is_the_home_folder(tmp_path, monkeypatch, capsys):
    """Issue 26.7: `root = ""` silently meant the config's folder; `"~/x"` made a folder named `~`."""
    from forecasting.cli.main import main

    for name in ("FORECASTING_DATABASE_URL", "FORECASTING_STORAGE_ROOT", "FORECASTING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    config = tmp_path / "project" / "forecasting.toml"
    config.parent.mkdir()
    for key in ("root", "forecasts"):
        for empty in ("", "  "):
            config.write_text(f'[database]\nurl = "sqlite:///db.sqlite"\n[storage]\n{key} = "{empty}"\n')
            with pytest.raises(ConfigError, match=f"storage.{key}: is empty; name a folder"):
                load_settings(config)
            assert main(["--config", str(config), "init"]) == 2
            lines = capsys.readouterr().err.strip().splitlines()
            assert len(lines) == 1 and f"storage.{key}: is empty" in lines[0], lines
    config.write_text('[database]\nurl = "sqlite:///db.sqlite"\n[storage]\nroot = "~/x"\nforecasts = "~/lake"\n')
    settings = load_settings(config)
    assert settings.storage_root == home / "x" and settings.forecasts_root == home / "lake"
    assert main(["--config", str(config), "init"]) == 0
    assert (home / "x" / "models").is_dir() and not (config.parent / "~").exists()
    monkeypatch.setenv("FORECASTING_STORAGE_ROOT", "~/from-env")
    assert load_settings(config).storage_root == home / "from-env"
