"""The files of a saved forecaster: format versions, checksums, the manifest and the per-series table.

Format 2 keeps per-series state (scaler levels, seasonal factors, training ends) in `series.parquet`
beside a small `manifest.json`; format 1 artifacts (state inside the manifest) still load.
`forecasting.model.forecaster` decides what goes into these files; this module only reads and writes them,
and `upgrade_manifest` is the one place that knows what older artifacts lack.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import numpy
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from forecasting import __version__
from forecasting.errors import RunError
from forecasting.preparation.scaling import SeriesScaler

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
MODEL_FILE = "model.keras"
MANIFEST_FILE = "manifest.json"
SERIES_FILE = "series.parquet"
HOLDOUT_MODEL_FILE = "holdout.keras"
HOLDOUT_SCALER_FILE = "holdout-series.parquet"

# What these config keys defaulted to before the derived defaults: a version saved then without the
# key was trained (and is fine-tuned) with these values.
PREVIOUS_DEFAULTS: dict[str, Any] = {
    "learning_rate": 1e-3, "loss": "mse", "epochs": 50, "batch_size": 256, "patience": 5, "min_epochs": 0, "series_weighting": 0.0,
}


def upgrade_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """A readable manifest (`read_manifest`) in the current layout, whatever its format and age: the
    one place that knows what older artifacts lack. Idempotent; the manifest given is not changed.

    - format 1 keeps the per-series state inline (`scaler` with every series, `series_train_end`):
      `series_file` None;
    - saved before the derived defaults: the config keys it lacks take `PREVIOUS_DEFAULTS` (a config
      without `season` trains and scores with its frequency's, see `defaults.effective_season`);
    - saved before source features, future features, holidays or intervals: none (`features`, `future_features`,
      `holidays`, `intervals`);
    - saved before holdout networks were kept: `holdout` None (its deployed network may have seen its holdout).
    """
    upgraded = {**manifest, "config": {**PREVIOUS_DEFAULTS, **manifest["config"]}}
    for key, empty in (("features", []), ("future_features", []), ("holidays", []), ("intervals", {}), ("holdout", None)):
        upgraded.setdefault(key, empty)
    if "series_file" not in manifest or manifest["series_file"] is None:
        upgraded.update(series_file=None, series_train_end=manifest.get("series_train_end", {}))
    return upgraded


def manifest_for_people(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as `models show` prints it: as stored, per-series state summarised (format 1
    holds it inline) and the training history left out."""
    shown = dict(manifest)
    if upgrade_manifest(manifest)["series_file"] is None:
        scaler = manifest["scaler"]
        shown["scaler"] = {
            "method": scaler["method"], "target": scaler.get("target", "series"), "series_count": len(scaler["series"]),
            "seasonal_series": len((scaler.get("seasonal") or {}).get("factors", {})),
        }
        shown["series_train_end"] = f"{len(manifest.get('series_train_end', {}))} series (see --series)"
    if isinstance(shown.get("training"), dict):
        shown["training"] = {key: value for key, value in shown["training"].items() if key != "history"}
    return shown


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_checksum(path: Path, expected: str | None, what: str = "manifest's") -> None:
    """Raise `RunError` when `path` is missing or its sha256 differs from `expected` (None: not checked)."""
    if not path.is_file():
        raise RunError(f"{path.parent}: artifact has no {path.name}")
    if expected is None:
        return
    actual = sha256_file(path)
    if actual != expected:
        raise RunError(f"{path}: checksum {actual[:12]}… does not match the {what} {expected[:12]}…; refusing to load")


def timestamp_text(value: Any) -> str | None:
    """An ISO timestamp for the manifest (None for a missing value)."""
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()


def library_versions() -> dict[str, str]:
    """The versions of the libraries that wrote an artifact, for its manifest."""
    import keras  # lazy: keras
    import tensorflow  # lazy: tensorflow

    return {
        "forecasting": __version__,
        "python": platform.python_version(),
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "pandas": pd.__version__,
    }


def write_series_table(path: Path, scaler: SeriesScaler, train_end: dict[str, str] | None = None) -> str:
    """Write a scaler's per-series state (and training ends) as one Parquet table; returns its sha256."""
    columns = scaler.series_columns()
    train_end = train_end or {}
    for series_id in train_end:
        if series_id not in scaler:
            for name in ("loc", "scale", "factors"):
                columns[name].append(None)
            columns["series_id"].append(series_id)
    columns["train_end"] = [train_end.get(series_id) for series_id in columns["series_id"]]
    floats = pa.list_(pa.float64())
    schema = pa.schema([("series_id", pa.string()), ("loc", floats), ("scale", floats), ("factors", floats), ("train_end", pa.string())])
    pq.write_table(pa.table(columns, schema=schema), path)
    return sha256_file(path)


def read_series_table(path: Path, header: dict[str, Any], expected_sha256: str) -> tuple[SeriesScaler, dict[str, str]]:
    """The scaler and training ends written by `write_series_table`, checksum checked."""
    check_checksum(path, expected_sha256)
    columns = pq.read_table(path).to_pydict()
    with_state = [i for i, loc in enumerate(columns["loc"]) if loc is not None]
    scaler = SeriesScaler.from_columns(
        {key: value for key, value in header.items() if key in ("method", "target", "seasonal")},
        {name: [columns[name][i] for i in with_state] for name in ("series_id", "loc", "scale", "factors")},
    )
    train_end = {key: end for key, end in zip(columns["series_id"], columns["train_end"]) if end is not None}
    return scaler, train_end


def read_series_state(folder: Path, manifest: dict[str, Any]) -> tuple[SeriesScaler, dict[str, str]]:
    """The scaler and per-series training ends of an artifact (either format), checksum checked."""
    manifest = upgrade_manifest(manifest)
    if manifest["series_file"] is None:  # in the manifest
        return SeriesScaler.from_dict(manifest["scaler"]), dict(manifest["series_train_end"])
    return read_series_table(Path(folder) / SERIES_FILE, manifest["scaler"], manifest["series_file"]["sha256"])


def series_table(folder: Path, manifest: dict[str, Any]) -> pd.DataFrame:
    """Per-series state for people: series, training end, target level and scale, seasonal factors."""
    scaler, train_end = read_series_state(folder, manifest)
    ids = list(dict.fromkeys([*scaler.loc, *train_end]))
    return pd.DataFrame(
        {
            "series_id": ids,
            "train_end": [train_end.get(key) for key in ids],
            "loc": [float(scaler.loc[key][0]) if key in scaler else None for key in ids],
            "scale": [float(scaler.scale[key][0]) if key in scaler else None for key in ids],
            "seasonal_factors": [
                " ".join(f"{value:.3f}" for value in scaler.factors[key]) if key in scaler.factors else "" for key in ids
            ],
        }
    )


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write `manifest.json` (sorted keys, indented)."""
    (Path(folder) / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of an artifact folder, after checking that this code reads its format version."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise RunError(f"{folder}: artifact has no {MANIFEST_FILE}")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(f"{path}: not a readable manifest ({error}); the artifact is damaged") from None
    if not isinstance(manifest, dict):
        raise RunError(f"{path}: not a readable manifest (a JSON object was expected); the artifact is damaged")
    found = manifest.get("format_version")
    if found not in READABLE_FORMATS:
        raise RunError(
            f"{path}: artifact format version {found} is not supported by this code (it reads format version {FORMAT_VERSION}) "
            f"and is not an older format it still reads ({', '.join(str(v) for v in READABLE_FORMATS if v != FORMAT_VERSION)})"
        )
    return manifest


def load_network(path: Path, expected_sha256: str | None, what: str = "manifest's") -> Any:
    """A Keras network from `path` (not compiled), after checking its checksum."""
    import keras  # lazy: keras

    check_checksum(path, expected_sha256, what)
    return keras.models.load_model(path, compile=False)
