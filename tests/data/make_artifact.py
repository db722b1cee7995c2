"""Write tests/data/artifact-v<FORMAT_VERSION>: a small artifact saved by this code, committed so
that tests prove later versions still load it. Run only when the artifact format version changes
(it writes a new folder; never overwrite the folder of an older format, which must keep loading):

    .venv/bin/python -m tests.data.make_artifact
"""

import json
from pathlib import Path

import numpy as np

from forecasting.config import ModelConfig
from forecasting.registry import FORMAT_VERSION, build_manifest, write_artifact
from forecasting.training import train
from forecasting.windowing import to_series_arrays
from tests.conftest import TINY_MODEL, synthetic_frame

FOLDER = Path(__file__).parent / f"artifact-v{FORMAT_VERSION}"


def main() -> None:
    config = ModelConfig(**{**TINY_MODEL, "epochs": 3})
    arrays = to_series_arrays(synthetic_frame(n_series=3, length=40), [])
    result = train(arrays, config, season=12)
    FOLDER.mkdir(exist_ok=False)  # an older format's folder must never be overwritten
    manifest = build_manifest(
        config, result.scaler, [], "MS", result.interval_halfwidths, result.metrics, result.data_watermark,
        result.train_start, result.train_end, {"epochs_run": result.epochs_run}, series_train_end=result.series_train_end,
    )
    write_artifact(FOLDER, result.model, dict(manifest, model_name="tiny", version=1, run_id="committed-test-artifact"))
    inputs = np.stack([result.scaler.transform(sid, values[-config.lookback :]) for sid, values in arrays.values.items()])
    outputs = result.model.predict(inputs.astype("float32"), verbose=0)
    (FOLDER / "expected.json").write_text(json.dumps({"inputs": inputs.tolist(), "outputs": outputs.tolist()}))


if __name__ == "__main__":
    main()
