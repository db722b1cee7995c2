"""Per-series state lives in `series.parquet` beside a small manifest (artifact format 2)."""

import json

import numpy as np
import pandas as pd
import pytest

from forecasting.cli.main import main
from forecasting.config.settings import ModelConfig
from forecasting.sources.database import create_db_engine
from forecasting.errors import RunError
from forecasting.model.network import build_model
from forecasting.model.artifacts import FORMAT_VERSION, SERIES_FILE, read_series_state
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.model.inputs import InputSpec
from forecasting.publishing.registry import load_version, register_version
from forecasting.preparation.scaling import SeriesScaler
from forecasting.sources.schema import migrate
from forecasting.preparation.windows import to_series_arrays
from tests.support.data import TINY_MODEL, synthetic_frame, write_config


@pytest.fixture(scope="module")
def trained():
    config = ModelConfig(**TINY_MODEL)
    arrays = to_series_arrays(synthetic_frame(n_series=8, length=60), [], "MS")
    result = RecurrentForecaster.fit(arrays, config).forecaster
    assert result.scaler.factors, "the synthetic series are seasonal: the factors must round-trip too"
    return config, arrays, result


@pytest.mark.slow
def test_saved_and_loaded_versions_forecast_identically(trained, tmp_path):
    config, arrays, result = trained
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    register_version(engine, tmp_path, "tiny", result, "run")
    folder = tmp_path / "models" / "tiny" / "1"
    on_disk = json.loads((folder / "manifest.json").read_text())
    assert on_disk["format_version"] == FORMAT_VERSION == 2 and "series_train_end" not in on_disk
    assert on_disk["scaler"] == {
        "method": "standard", "target": "window_log", "seasonal": {"season": 12, "frequency": "MS"},
        "series_count": 8, "seasonal_series": len(result.scaler.factors),
    }
    assert on_disk["series_file"]["path"] == SERIES_FILE and on_disk["series_file"]["rows"] == 8
    stored = pd.read_parquet(folder / SERIES_FILE)
    assert list(stored.columns) == ["series_id", "loc", "scale", "factors", "train_end"] and len(stored) == 8

    loaded = load_version(engine, "tiny")
    assert loaded.train_end == result.train_end
    before = result.predict(arrays).forecasts
    after = loaded.predict(arrays).forecasts
    pd.testing.assert_frame_equal(before, after)  # exactly: float64 values round-trip through Parquet

    data = bytearray((folder / SERIES_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / SERIES_FILE).write_bytes(bytes(data))
    with pytest.raises(RunError, match=f"{SERIES_FILE}: checksum .* does not match the manifest's"):
        load_version(engine, "tiny")


def test_the_manifest_stays_small_for_many_series(tmp_path):
    rng = np.random.default_rng(0)
    scaler = SeriesScaler(target="window_log", season=12, frequency="MS")
    train_end = {}
    for index in range(10_000):
        key = f"series-{index:05d}"
        scaler.loc[key], scaler.scale[key] = rng.normal(size=3), rng.uniform(1, 2, size=3)
        if index % 2:
            scaler.factors[key] = rng.uniform(0.8, 1.2, size=12)
        train_end[key] = (pd.Timestamp("2024-01-01") + pd.DateOffset(months=index % 7)).isoformat()
    config = ModelConfig(**TINY_MODEL)
    forecaster = RecurrentForecaster(
        config, build_model(config, n_inputs=3), scaler, InputSpec.of(config, "MS"), interval_halfwidths={80: [1.0] * 6}, train_end=train_end,
        provenance={"data_watermark": "2024-12-01T00:00:00"},
    )
    folder = tmp_path / "artifact"
    folder.mkdir()
    written = forecaster.save(folder)
    size = (folder / "manifest.json").stat().st_size
    assert size < 8_000, size  # was several MB with the state inline
    restored, restored_end = read_series_state(folder, written)
    assert restored_end == train_end and set(restored.factors) == set(scaler.factors)
    for key in ("series-00000", "series-00001", "series-09999"):
        np.testing.assert_array_equal(restored.loc[key], scaler.loc[key])
        np.testing.assert_array_equal(restored.scale[key], scaler.scale[key])
    np.testing.assert_array_equal(restored.factors["series-09999"], scaler.factors["series-09999"])


def test_models_show_prints_a_summary_and_the_series_on_request(trained, tmp_path, capsys, monkeypatch):
    for name in ("FORECASTING_DATABASE_URL", "FORECASTING_STORAGE_ROOT", "FORECASTING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    config, _, result = trained
    path = write_config(tmp_path, "sqlite:///db.sqlite")
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    register_version(engine, tmp_path / "store", "tiny", result, "run")
    assert main(["--config", str(path), "models", "show", "tiny"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["scaler"]["series_count"] == 8 and "S00" not in json.dumps(shown)
    assert main(["--config", str(path), "models", "show", "tiny", "1", "--series"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["series_id", "train_end", "loc", "scale", "seasonal_factors"]
    assert len(table) == 9 and table[1].split()[0] == "S00"
