import json
import subprocess
import sys

import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting.config.settings import ModelConfig
from forecasting.sources.database import create_db_engine
from forecasting.errors import RunError
from forecasting.model.artifacts import FORMAT_VERSION
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.publishing.registry import list_versions, load_version, register_version
from forecasting.sources.schema import migrate
from forecasting.preparation.windows import to_series_arrays
from tests.support.data import TINY_MODEL, synthetic_frame


@pytest.fixture(scope="module")
def trained():
    config = ModelConfig(**TINY_MODEL)
    arrays = to_series_arrays(synthetic_frame(), [])
    return config, arrays, RecurrentForecaster.fit(arrays, config).forecaster


def register(engine, tmp_path, config, result, run_id="run"):
    return register_version(engine, tmp_path, "tiny", result, run_id)


@pytest.mark.slow
def test_registered_version_forecasts_the_same_in_a_new_process(trained, tmp_path):
    config, arrays, result = trained
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    version = register(engine, tmp_path, config, result)
    assert version == 1 and register(engine, tmp_path, config, result) == 2
    before = result.predict(arrays).forecasts
    frame_path = tmp_path / "frame.parquet"
    synthetic_frame().to_parquet(frame_path)
    script = f"""
import pandas as pd
from forecasting.sources.database import create_db_engine
from forecasting.publishing.registry import load_version
from forecasting.preparation.windows import to_series_arrays
loaded = load_version(create_db_engine({str(engine.url)!r}), "tiny", 1)
arrays = to_series_arrays(pd.read_parquet({str(frame_path)!r}), [])
out = loaded.predict(arrays).forecasts
out.to_parquet({str(tmp_path / 'after.parquet')!r})
"""
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    after = pd.read_parquet(tmp_path / "after.parquet")
    pd.testing.assert_frame_equal(before, after, check_dtype=False)
    versions = list_versions(engine, "tiny")
    assert list(versions.version) == [2, 1] and list(versions.status) == ["champion", "previous"]
    manifest = json.loads((tmp_path / "models" / "tiny" / "1" / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION and manifest["lookback"] == 12 and manifest["horizon"] == 6
    assert {"tensorflow", "keras", "python"} <= set(manifest["libraries"])
    assert manifest["data_watermark"].startswith("2023-12-01") and len(manifest["sha256"]) == 64
    # Per-series state sits in series.parquet beside the manifest (format 2).
    assert manifest["scaler"]["series_count"] == len(arrays.ids)
    assert set(pd.read_parquet(tmp_path / "models" / "tiny" / "1" / "series.parquet").series_id) == set(arrays.ids)


def test_tampered_or_unknown_artifacts_are_refused(trained, tmp_path):
    config, _, result = trained
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    register(engine, tmp_path, config, result)
    folder = tmp_path / "models" / "tiny" / "1"
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps(dict(manifest, format_version=99)))
    with pytest.raises(RunError, match=f"format version 99 is not supported by this code \\(it reads format version {FORMAT_VERSION}\\)"):
        load_version(engine, "tiny")
    manifest_path.write_text(json.dumps(manifest))
    with open(folder / "model.keras", "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(RunError, match="does not match the registered"):
        load_version(engine, "tiny")


def test_no_champion_is_a_clear_error(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    with pytest.raises(RunError, match="has no champion version yet; run with --mode retrain first"):
        load_version(engine, "tiny")


def _migrated_config(tmp_path, database_url, monkeypatch):
    from tests.support.data import write_config

    for name in ("FORECASTING_DATABASE_URL", "FORECASTING_STORAGE_ROOT", "FORECASTING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    path = write_config(tmp_path, database_url)
    migrate(create_db_engine(database_url))
    return path


def test_models_promote_and_show_refuse_a_missing_or_huge_version_with_exit_2(database_url, tmp_path, monkeypatch, capsys):
    """`models promote` with a version that does not exist exits 2 like `models show`; a version number past
    what the table holds is one clear line (no raw OverflowError or SQL error), on SQLite and PostgreSQL."""
    from forecasting.cli.main import main

    path = _migrated_config(tmp_path, database_url, monkeypatch)
    engine = create_db_engine(database_url)
    with engine.begin() as connection:  # a registered version (its files are not needed to refuse another number)
        connection.execute(sa.text(
            "INSERT INTO model_versions (model_name, version, created_at, status, cell, artifact_path, sha256, format_version) "
            "VALUES ('tiny', 1, '2024-01-01 00:00:00', 'candidate', 'gru', '/nowhere', 'x', 2)"
        ))
    for args, expected in [
        (["models", "promote", "tiny", "7"], "model 'tiny' has no version 7"),
        (["models", "promote", "tiny", "99999999999999999999"], "model 'tiny' has no version 99999999999999999999"),
        (["models", "promote", "tiny", "-3"], "model 'tiny' has no version -3"),
        (["models", "show", "tiny", "99999999999999999999"], "model 'tiny' has no version 99999999999999999999"),
    ]:
        capsys.readouterr()
        assert main(["--config", str(path), *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {expected}") and err.count("\n") == 0, err
        assert "Overflow" not in err and "SELECT" not in err
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM model_events")).scalar() == 0
        assert connection.execute(sa.text("SELECT count(*) FROM model_aliases")).scalar() == 0


def test_a_version_folder_never_registered_is_removed_by_the_next_run(database_url, tmp_path, monkeypatch):
    """A kill between placing (or uploading) a version's folder and its registry row leaves `models/<m>/<n>`
    with no model_versions row: the next run of the model removes it (under the model's lock); registered
    versions, other models and files that are not version folders stay."""
    from forecasting import steps
    from forecasting.config.settings import load_settings

    path = _migrated_config(tmp_path, database_url, monkeypatch)
    settings = load_settings(path)
    engine = create_db_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO model_versions (model_name, version, created_at, status, cell, artifact_path, sha256, format_version) "
            "VALUES ('tiny', 1, '2024-01-01 00:00:00', 'champion', 'gru', 'x', 'x', 2)"
        ))
    models = settings.storage_root / "models"
    for folder in ("tiny/1", "tiny/2", "other/2"):
        (models / folder).mkdir(parents=True)
        (models / folder / "manifest.json").write_text("{}")
    (models / "tiny" / "notes").mkdir()
    steps.start_run(settings, "tiny", "forecast")
    assert sorted(p.name for p in (models / "tiny").iterdir()) == ["1", "notes"]
    assert (models / "other" / "2" / "manifest.json").exists()  # another model's folder: its own runs judge it
