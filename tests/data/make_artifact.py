"""Write tests/data/artifact-v<FORMAT_VERSION>: a small artifact saved by this code, committed so
that tests prove later versions still load it. Run only when the artifact format version changes
(it writes a new folder; never overwrite the folder of an older format, which must keep loading):

    .venv/bin/python -m tests.data.make_artifact
"""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from forecasting.config.settings import ModelConfig
from forecasting.model.artifacts import FORMAT_VERSION
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.preparation.windows import to_series_arrays
from tests.support.data import TINY_MODEL, synthetic_frame

FOLDER = Path(__file__).parent / f"artifact-v{FORMAT_VERSION}"


def main() -> None:
    config = ModelConfig(**{**TINY_MODEL, "epochs": 3})
    arrays = to_series_arrays(synthetic_frame(n_series=3, length=40), [])
    result = RecurrentForecaster.fit(arrays, config).forecaster
    FOLDER.mkdir(exist_ok=False)  # an older format's folder must never be overwritten
    provenance = {**result.provenance, "model_name": "tiny", "version": 1, "run_id": "committed-test-artifact"}
    replace(result, provenance=provenance).save(FOLDER)
    inputs = np.stack([result.scaler.transform(sid, values[-config.lookback :]) for sid, values in arrays.values.items()])
    outputs = result.network.predict(inputs.astype("float32"), verbose=0)
    (FOLDER / "expected.json").write_text(json.dumps({"inputs": inputs.tolist(), "outputs": outputs.tolist()}))


if __name__ == "__main__":
    main()
