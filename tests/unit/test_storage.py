"""Issue 16: storage URLs and options (no store is reached here)."""

from pathlib import Path

import pytest

from forecasting.config.settings import load_settings, parse_settings
from forecasting.errors import ConfigError
from forecasting.storage.locations import is_remote, location, secret_option_keys, url_problem
from forecasting.publishing.forecast_dataset import read_forecasts, write_forecasts
from tests.support.data import forecast_rows


@pytest.mark.parametrize("url", ["s3://bucket/prefix", "gs://bucket", "az://container/prefix", "abfs://container/x", "file:///srv/store"])
def test_supported_urls_pass(url):
    assert url_problem(url) is None


def test_local_paths_and_file_urls_stay_plain_paths(tmp_path):
    assert location(str(tmp_path)) == tmp_path and type(location(str(tmp_path))) is type(tmp_path)
    assert location(f"file://{tmp_path}") == tmp_path and not is_remote(location(f"file://{tmp_path}"))
    assert is_remote(location("s3://bucket/prefix"))


def test_credential_looking_options_are_found_nested():
    options = {"endpoint_url": "http://x", "client_kwargs": {"region_name": "eu", "aws_secret_access_key": "s"}, "account_key": "k", "sas_token": "t"}
    assert secret_option_keys(options) == ["client_kwargs.aws_secret_access_key", "account_key", "sas_token"]


def test_credentials_in_options_are_refused_without_echoing_them():
    with pytest.raises(ConfigError, match=r"storage.options: account_key look like credentials") as caught:
        parse_settings({"storage": {"root": "az://container/x", "options": {"account_key": "VERYSECRET"}}, "database": {"url": "postgresql+psycopg://u@h/db"}})
    assert "VERYSECRET" not in str(caught.value)


def test_storage_forecasts_moves_the_dataset_and_is_relative_to_the_config(tmp_path, monkeypatch):
    monkeypatch.delenv("FORECASTING_STORAGE_ROOT", raising=False)
    (tmp_path / "forecasting.toml").write_text('[storage]\nroot = "store"\nforecasts = "lake/forecasts"\n')
    settings = load_settings(tmp_path / "forecasting.toml")
    assert settings.storage_root == tmp_path / "store" and settings.forecasts_root == tmp_path / "lake" / "forecasts"
    assert load_settings_default_forecasts(tmp_path) == tmp_path / "other" / "forecasts"
    write_forecasts(settings.storage_root, forecast_rows("a", "2025-12-01", "r1"), settings.forecasts_root)
    assert (settings.forecasts_root / "model_name=m" / "origin_date=2025-12-01" / "part-0.parquet").is_file()
    assert not (settings.storage_root / "forecasts").exists()
    assert len(read_forecasts(settings.storage_root, "m", settings.forecasts_root)) == 3


def load_settings_default_forecasts(folder: Path) -> Path:
    (folder / "other.toml").write_text('[storage]\nroot = "other"\n')
    return load_settings(folder / "other.toml").forecasts_root


def test_a_store_without_its_filesystem_package_names_the_extra():
    import importlib.util

    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here")
    with pytest.raises(ConfigError, match=r"gs:// needs the gcsfs package: pip install 'rnn-forecasting\[gcs\]'"):
        location("gs://bucket/prefix")
