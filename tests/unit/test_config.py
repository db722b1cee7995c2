import pytest

from forecasting.config.settings import load_settings, parse_settings
from forecasting.errors import ConfigError
from tests.support.data import TINY_MODEL, write_config

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


@pytest.mark.parametrize(
    "data, key, problem",
    [
        ({"models": {"m": {**TINY_MODEL, "learning_rate": float("inf")}}}, "models.m.learning_rate", "finite number"),
        ({"models": {"m": {**TINY_MODEL, "learning_rate": float("nan")}}}, "models.m.learning_rate", "finite number"),
        ({"models": {"m": {**TINY_MODEL, "learning_rate": 5.0}}}, "models.m.learning_rate", "less than or equal to 1"),
        ({"models": {"m": {**TINY_MODEL, "seed": 99999999999999999999}}}, "models.m.seed", "less than or equal to 4294967295"),
        ({"models": {"m": {**TINY_MODEL, "seed": -1}}}, "models.m.seed", "greater than or equal to 0"),
        ({"models": {"m": {**TINY_MODEL, "horizon": "6"}}}, "models.m.horizon", "valid integer"),
        ({"models": {"m": {**TINY_MODEL, "horizon": True}}}, "models.m.horizon", "valid integer"),
        ({"models": {"m": {**TINY_MODEL, "horizon": 6.0}}}, "models.m.horizon", "valid integer"),
        ({"models": {"m": {**TINY_MODEL, "horizon": 100000}}}, "models.m.horizon", "less than or equal to 10000"),
        ({"models": {"m": {**TINY_MODEL, "epochs": "4"}}}, "models.m.epochs", "valid integer"),
        ({"models": {"m": {**TINY_MODEL, "refit": "yes"}}}, "models.m.refit", "valid boolean"),
        ({"models": {"m": {**TINY_MODEL, "refit": 1}}}, "models.m.refit", "valid boolean"),
        ({"models": {"m": {**TINY_MODEL, "intervals": ["80"]}}}, "models.m.intervals[0]", "valid integer"),
        ({"models": {"m": {**TINY_MODEL, "layers": [{"units": 1000000}]}}}, "models.m.layers[0].units", "less than or equal to 4096"),
        ({"models": {"m": {**TINY_MODEL, "layers": [{"units": 4}] * 17}}}, "models.m.layers", "at most 16"),
        ({"models": {"m": {**TINY_MODEL, "ensemble": {"members": 100000}}}}, "models.m.ensemble.members", "less than or equal to 64"),
        ({"models": {"m": {**TINY_MODEL, "fine_tune": {"replay": float("inf")}}}}, "models.m.fine_tune.replay", "finite number"),
        ({"models": {"m": {**TINY_MODEL, "fine_tune": {"replay": 1000.0}}}}, "models.m.fine_tune.replay", "less than or equal to 100"),
        ({"models": {"m": {**TINY_MODEL, "training_timeout_minutes": float("inf")}}}, "models.m.training_timeout_minutes", "finite number"),
        ({"models": {"m": {**TINY_MODEL, "promotion": {"drift_tolerance": float("inf")}}}}, "models.m.promotion.drift_tolerance", "finite number"),
        ({"models": {"m": {**TINY_MODEL, "promotion": {"retrain_every_days": 1e9}}}}, "models.m.promotion.retrain_every_days", "less than or equal to"),
        ({"models": {"m": {**TINY_MODEL, "tuning": {"max_trials": 10**9}}}}, "models.m.tuning.max_trials", "less than or equal to"),
        ({"models": {"m": {**TINY_MODEL, "tuning": {"units": {"min": -5, "max": 8}}}}}, "models.m.tuning.units", "between 1 and 4096"),
        ({"models": {"m": {**TINY_MODEL, "tuning": {"dropout": {"min": 0.0, "max": float("inf")}}}}}, "models.m.tuning.dropout.max", "finite number"),
        ({"models": {"m": {**TINY_MODEL, "tuning": {"learning_rate": [0.01, 50.0]}}}}, "models.m.tuning.learning_rate", "between 0 (exclusive) and 1"),
        ({"source": {"stale_after": 10**12}}, "source.stale_after", "less than or equal to"),
        ({"source": {"max_series_drop": float("nan")}}, "source.max_series_drop", "finite number"),
        ({"source": {"max_future_periods": "12"}}, "source.max_future_periods", "valid integer"),
        ({"source": {"late_arrival": "100000D"}}, "source.late_arrival", "at most 36500 days"),
    ],
)
def test_config_values_are_strict_finite_and_bounded(data, key, problem):
    """Values that used to pass validation and fail the run later (or were converted silently) are refused
    at config time, naming the key."""
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, origin="test.toml")
    message = str(caught.value)
    assert message.startswith("test.toml: ") and key in message and problem in message, message
    assert "\n" not in message


def test_strict_config_keeps_numbers_written_as_integers_for_floats(tmp_path, monkeypatch):
    """A float key written as an integer (`learning_rate = 1`, `retrain_every_days = 7`) stays valid."""
    for name in ("FORECASTING_DATABASE_URL", "FORECASTING_STORAGE_ROOT", "FORECASTING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    path = write_config(
        tmp_path, "sqlite:///x.db",
        model={"learning_rate": 1, "training_timeout_minutes": 30, "promotion": {"retrain_every_days": 7, "drift_tolerance": 1}},
    )
    model = load_settings(path).model("tiny")
    assert model.learning_rate == 1.0 and isinstance(model.learning_rate, float)
    assert model.promotion.retrain_every_days == 7.0 and model.training_timeout_minutes == 30.0


def test_config_from_a_toml_file_refuses_a_quoted_horizon_with_exit_2(tmp_path, monkeypatch, capsys):
    """`horizon = "6"` in the file: `forecasting init` says which key, in one line, exit 2."""
    from forecasting.cli.main import main

    for name in ("FORECASTING_DATABASE_URL", "FORECASTING_STORAGE_ROOT", "FORECASTING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", model={"horizon": "6"})
    assert main(["--config", str(path), "init"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "models.tiny.horizon: Input should be a valid integer (got '6')" in err
    assert not (tmp_path / "x.db").exists()


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
