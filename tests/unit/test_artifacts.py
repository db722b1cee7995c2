"""Artifacts that survive upgrades, refuse tampering, and reproduce across processes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from forecasting.model.artifacts import FORMAT_VERSION, SERIES_FILE, read_manifest, upgrade_manifest
from forecasting.model.inputs import InputSpec
from forecasting.errors import RunError
from forecasting.model.forecaster import RecurrentForecaster

COMMITTED = Path(__file__).parents[1] / "data" / "artifact-v1"
COMMITTED_V2 = Path(__file__).parents[1] / "data" / "artifact-v2"


def test_committed_artifact_loads_and_predicts_as_when_saved():
    forecaster = RecurrentForecaster.load(COMMITTED)
    expected = json.loads((COMMITTED / "expected.json").read_text())
    outputs = forecaster.network.predict(np.asarray(expected["inputs"], dtype="float32"), verbose=0)
    np.testing.assert_allclose(outputs, expected["outputs"], rtol=1e-5, atol=1e-6)
    assert read_manifest(COMMITTED)["format_version"] == 1 and forecaster.horizon == outputs.shape[1]
    assert set(forecaster.scaler.loc) == {"S00", "S01", "S02"}
    assert forecaster.holdout_forecaster() is None  # saved before holdout networks were kept


def test_committed_format_2_artifact_loads_and_predicts_as_when_saved():
    forecaster = RecurrentForecaster.load(COMMITTED_V2)
    expected = json.loads((COMMITTED_V2 / "expected.json").read_text())
    outputs = forecaster.network.predict(np.asarray(expected["inputs"], dtype="float32"), verbose=0)
    np.testing.assert_allclose(outputs, expected["outputs"], rtol=1e-5, atol=1e-6)
    manifest = read_manifest(COMMITTED_V2)
    assert manifest["format_version"] == 2 and manifest["series_file"]["path"] == SERIES_FILE
    assert set(forecaster.scaler.loc) == {"S00", "S01", "S02"}
    assert set(forecaster.train_end) == {"S00", "S01", "S02"}


@pytest.mark.parametrize("folder", [COMMITTED, COMMITTED_V2], ids=["format-1", "format-2"])
def test_committed_artifacts_carry_their_inputs(folder):
    manifest = read_manifest(folder)
    assert "future_features" not in manifest and manifest["config"].get("season") is None  # saved before both
    upgraded = upgrade_manifest(manifest)
    assert upgrade_manifest(upgraded) == upgraded and read_manifest(folder) == manifest  # idempotent, the manifest left as it is
    forecaster = RecurrentForecaster.load(folder)
    # Season from the frequency, as then; no future features, no calendar.
    assert forecaster.inputs == InputSpec("MS", (), (), False, 12, 6, 12)


def test_unknown_format_version_names_both_versions(tmp_path):
    folder = shutil.copytree(COMMITTED, tmp_path / "artifact")
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps(dict(manifest, format_version=FORMAT_VERSION + 1)))
    with pytest.raises(RunError, match=f"format version {FORMAT_VERSION + 1} is not supported by this code \\(it reads format version {FORMAT_VERSION}\\)"):
        RecurrentForecaster.load(folder)


def test_checksum_mismatch_is_refused(tmp_path):
    folder = shutil.copytree(COMMITTED, tmp_path / "artifact")
    data = bytearray((folder / "model.keras").read_bytes())
    data[-100] ^= 0xFF
    (folder / "model.keras").write_bytes(bytes(data))
    with pytest.raises(RunError, match="does not match the registered .*refusing to load"):
        RecurrentForecaster.load(folder)


TRAIN_AND_DIGEST = """
import hashlib, json
import numpy as np
from forecasting.config.settings import ModelConfig
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.preparation.windows import to_series_arrays
from tests.support.data import TINY_MODEL, synthetic_frame
arrays = to_series_arrays(synthetic_frame(), [])
result = RecurrentForecaster.fit(arrays, ModelConfig(**TINY_MODEL)).forecaster
weights = hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in result.network.get_weights())).hexdigest()
forecasts = result.predict(arrays).forecasts
print(json.dumps({"weights": weights, "yhat": forecasts.yhat.round(10).tolist()}))
"""


@pytest.mark.slow
def test_same_data_config_and_seed_give_the_same_weights_in_new_processes():
    root = Path(__file__).parents[2]
    runs = [
        subprocess.run(
            [sys.executable, "-c", TRAIN_AND_DIGEST], cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
            capture_output=True, text=True, check=True,
        )
        for _ in range(2)
    ]
    first, second = (json.loads(run.stdout.strip().splitlines()[-1]) for run in runs)
    assert first["weights"] == second["weights"]
    assert first["yhat"] == second["yhat"]
