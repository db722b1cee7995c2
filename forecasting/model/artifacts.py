"""The files of a saved forecaster: format versions, checksums, the manifest and the per-series table.

Format 2 keeps per-series state (scaler levels, seasonal factors, training ends) in `series.parquet`
beside a small `manifest.json`; format 1 artifacts (state inside the manifest) still load.
`forecasting.model.forecaster` decides what goes into these files; this module only reads and writes them.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

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


def utc_now() -> datetime:
    """The current UTC time without a time zone (how every table stores times)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


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
    import keras
    import numpy
    import tensorflow

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
    import pyarrow as pa
    import pyarrow.parquet as pq

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
    import pyarrow.parquet as pq

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
    if "series_file" not in manifest:  # format 1: in the manifest
        return SeriesScaler.from_dict(manifest["scaler"]), dict(manifest.get("series_train_end", {}))
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
    import keras

    check_checksum(path, expected_sha256, what)
    return keras.models.load_model(path, compile=False)
