"""The model registry: immutable artifact folders, `model_versions` rows and the `champion` alias."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from forecasting import __version__
from forecasting.config import MODEL_NAME_PATTERN, ModelConfig
from forecasting.database import model_aliases, model_events, model_versions, tuning_records
from forecasting.errors import ConfigError, RunError
from forecasting.faults import checkpoint
from forecasting.scaling import SeriesScaler

# Format 2 keeps per-series state (scaler levels, seasonal factors, training ends) in SERIES_FILE
# beside the manifest instead of inside it; format 1 artifacts (state in the manifest) still load.
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
MODEL_FILE = "model.keras"
MANIFEST_FILE = "manifest.json"
SERIES_FILE = "series.parquet"
HOLDOUT_MODEL_FILE = "holdout.keras"
HOLDOUT_SCALER_FILE = "holdout-series.parquet"
CHAMPION = "champion"


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_root(storage_root: Path, model_name: str) -> Path:
    """`<storage>/models/<model>`, refusing names that could leave the storage root."""
    if not MODEL_NAME_PATTERN.match(model_name):
        raise ConfigError(f"model name {model_name!r} is not allowed (letters, digits, '-' and '_' only)")
    return Path(storage_root) / "models" / model_name


def _timestamp(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()


def library_versions() -> dict[str, str]:
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


def _next_version(connection: Connection, folder: Path, model_name: str) -> int:
    in_db = connection.execute(
        sa.select(sa.func.max(model_versions.c.version)).where(model_versions.c.model_name == model_name)
    ).scalar()
    on_disk = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.exists() else []
    return max([in_db or 0, *on_disk]) + 1


def _write_scaler_table(path: Path, scaler: SeriesScaler, train_end: dict[str, str] | None = None) -> str:
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


def _read_scaler_table(path: Path, header: dict[str, Any], expected_sha256: str) -> tuple[SeriesScaler, dict[str, str]]:
    """The scaler and training ends written by `_write_scaler_table`, checksum checked."""
    import pyarrow.parquet as pq

    if not path.is_file():
        raise RunError(f"{path.parent}: artifact has no {path.name}")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise RunError(f"{path}: checksum {actual[:12]}… does not match the manifest's {expected_sha256[:12]}…; refusing to load")
    columns = pq.read_table(path).to_pydict()
    with_state = [i for i, loc in enumerate(columns["loc"]) if loc is not None]
    scaler = SeriesScaler.from_columns(
        {key: value for key, value in header.items() if key in ("method", "target", "seasonal")},
        {name: [columns[name][i] for i in with_state] for name in ("series_id", "loc", "scale", "factors")},
    )
    train_end = {key: end for key, end in zip(columns["series_id"], columns["train_end"]) if end is not None}
    return scaler, train_end


def write_series_state(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Move the manifest's per-series state (scaler levels and factors, training ends) into
    `series.parquet`; returns the manifest with a summary and the file's checksum in its place."""
    scaler = SeriesScaler.from_dict(manifest["scaler"])
    train_end = manifest.get("series_train_end") or {}
    digest = _write_scaler_table(Path(folder) / SERIES_FILE, scaler, train_end)
    manifest = {key: value for key, value in manifest.items() if key != "series_train_end"}
    manifest["scaler"] = {**scaler.header(), "series_count": len(scaler.loc), "seasonal_series": len(scaler.factors)}
    manifest["series_file"] = {"path": SERIES_FILE, "sha256": digest, "rows": len(set(scaler.loc) | set(train_end))}
    return manifest


def read_series_state(folder: Path, manifest: dict[str, Any]) -> tuple[SeriesScaler, dict[str, str]]:
    """The scaler and per-series training ends of an artifact (either format), checksum checked."""
    if "series_file" not in manifest:  # format 1: in the manifest
        return SeriesScaler.from_dict(manifest["scaler"]), dict(manifest.get("series_train_end", {}))
    return _read_scaler_table(Path(folder) / SERIES_FILE, manifest["scaler"], manifest["series_file"]["sha256"])


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


def write_artifact(folder: Path, model: Any, manifest: dict[str, Any]) -> dict[str, Any]:
    """Save `model.keras`, `series.parquet` and `manifest.json` (with format version, checksums,
    library versions) into `folder`."""
    model.save(Path(folder) / MODEL_FILE)
    manifest = dict(write_series_state(folder, manifest), format_version=FORMAT_VERSION)
    manifest["sha256"] = sha256_file(Path(folder) / MODEL_FILE)
    manifest["libraries"] = library_versions()
    (Path(folder) / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def register_version(
    engine: Engine,
    storage_root: Path,
    model_name: str,
    model: Any,
    manifest: dict[str, Any],
    run_id: str,
    promote: bool = True,
    gate: dict[str, Any] | None = None,
    holdout: tuple[Any, SeriesScaler | None] | None = None,
) -> int:
    """Write the artifact to a temporary folder, checksum it, move it into `<version>/`, then add
    the registry row and (when `promote`) move `champion`, both in one transaction. `holdout`: the
    network that never saw the holdout and its scaler (None: the version's own), see `write_holdout`."""
    folder = model_root(storage_root, model_name)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".tmp-*"):  # left by a killed run; the model's run lock is held
        shutil.rmtree(stale, ignore_errors=True)
    staging = folder / f".tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        manifest = write_artifact(staging, model, dict(manifest, model_name=model_name, run_id=run_id))
        if holdout is not None:
            manifest["holdout"] = write_holdout(staging, model, *holdout)
        with engine.connect() as connection:
            version = _next_version(connection, folder, model_name)
        while True:
            manifest["version"] = version
            (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
            try:
                os.rename(staging, folder / str(version))
                break
            except OSError:
                if not (folder / str(version)).exists():
                    raise
                version += 1
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    checkpoint("artifact-registration")
    now = utc_now()
    with engine.begin() as connection:
        connection.execute(
            sa.insert(model_versions).values(
                model_name=model_name,
                version=version,
                created_at=now,
                run_id=run_id,
                status=CHAMPION if promote else "candidate",
                cell=manifest["config"]["cell"],
                artifact_path=str(folder / str(version)),
                sha256=manifest["sha256"],
                format_version=FORMAT_VERSION,
                data_watermark=pd.Timestamp(manifest["data_watermark"]).to_pydatetime() if manifest.get("data_watermark") else None,
                train_start=pd.Timestamp(manifest["train_start"]).to_pydatetime() if manifest.get("train_start") else None,
                train_end=pd.Timestamp(manifest["train_end"]).to_pydatetime() if manifest.get("train_end") else None,
                parent_version=manifest.get("parent_version"),
                metrics=json.dumps(manifest.get("metrics", {}), sort_keys=True),
                mode=manifest.get("mode"),
                tuning_record=manifest.get("tuning_record"),
                **{key: (gate or {}).get(key) for key in ("holdout_metric", "holdout_score", "champion_score", "baseline_score", "decision")},
            )
        )
        if promote:
            previous = champion_version(connection, model_name)
            set_alias(connection, model_name, CHAMPION, version, now)
            record_event(connection, model_name, "promote", previous, version, (gate or {}).get("decision") or "new version", now)
    return version


def write_holdout(folder: Path, model: Any, holdout_model: Any, holdout_scaler: SeriesScaler | None) -> dict[str, Any]:
    """Save the version's holdout network (trained without any series' last `horizon` rows; differs
    from `model` after a refit or a fine-tune of a refit parent) next to `model.keras`, so that a
    later promotion gate can score this version out of sample. Returns the manifest's `holdout`
    entry with the files' checksums; `{"model": "model.keras"}` when the version's network is it."""
    if holdout_model is model:
        return {"model": MODEL_FILE}
    holdout_model.save(Path(folder) / HOLDOUT_MODEL_FILE)
    entry: dict[str, Any] = {"model": HOLDOUT_MODEL_FILE, "sha256": sha256_file(Path(folder) / HOLDOUT_MODEL_FILE), "scaler": None}
    if holdout_scaler is not None:  # None: the version's own scaler
        digest = _write_scaler_table(Path(folder) / HOLDOUT_SCALER_FILE, holdout_scaler)
        entry.update(scaler=HOLDOUT_SCALER_FILE, scaler_sha256=digest, scaler_header=holdout_scaler.header())
    return entry


def load_holdout(engine: Engine, loaded: "LoadedVersion") -> tuple[Any, SeriesScaler] | None:
    """A version's holdout network and scaler (checksums checked), a fresh copy; None for versions
    saved before holdout networks were kept (their deployed network may have seen their holdout)."""
    import keras

    entry = loaded.manifest.get("holdout")
    if entry is None:
        return None
    row = version_row(engine, loaded.model_name, loaded.version)
    folder = Path(row["artifact_path"])
    if entry["model"] == MODEL_FILE:
        model, _ = load_artifact(folder, row["sha256"])
        return model, loaded.scaler.copy()
    actual = sha256_file(folder / entry["model"])
    if actual != entry["sha256"]:
        raise RunError(f"{folder / entry['model']}: checksum {actual[:12]}… does not match the manifest's {entry['sha256'][:12]}…; refusing to load")
    scaler = loaded.scaler.copy()
    if entry.get("scaler"):
        scaler, _ = _read_scaler_table(folder / entry["scaler"], entry["scaler_header"], entry["scaler_sha256"])
    return keras.models.load_model(folder / entry["model"], compile=False), scaler


def record_event(
    connection: Connection, model_name: str, event: str, from_version: int | None, to_version: int | None, reason: str, when: datetime | None = None
) -> None:
    connection.execute(
        sa.insert(model_events).values(
            model_name=model_name, event=event, from_version=from_version, to_version=to_version, at=when or utc_now(), reason=reason
        )
    )


def champion_history(connection: Connection, model_name: str) -> list[int]:
    """Champions in order, as a stack: each promotion pushes a version, each rollback pops one."""
    stack: list[int] = []
    events = connection.execute(
        sa.select(model_events.c.event, model_events.c.to_version)
        .where(model_events.c.model_name == model_name)
        .order_by(model_events.c.id)
    ).all()
    for event, to_version in events:
        if event == "promote":
            stack.append(to_version)
        elif event == "rollback" and stack:
            stack.pop()
    return stack


def promote(engine: Engine, model_name: str, version: int, reason: str = "promoted by hand") -> int | None:
    """Make `version` the champion (recorded); returns the previous champion."""
    with engine.begin() as connection:
        exists = connection.execute(
            sa.select(model_versions.c.version).where(model_versions.c.model_name == model_name, model_versions.c.version == version)
        ).scalar()
        if exists is None:
            raise RunError(f"model {model_name!r} has no version {version}")
        previous = champion_version(connection, model_name)
        if previous == version:
            raise RunError(f"version {version} is already the champion of {model_name!r}")
        set_alias(connection, model_name, CHAMPION, version)
        record_event(connection, model_name, "promote", previous, version, reason)
    return previous


def rollback(engine: Engine, model_name: str, reason: str = "rolled back by hand") -> tuple[int, int]:
    """Make the previous champion the champion again (recorded); returns (from, to)."""
    with engine.begin() as connection:
        history = champion_history(connection, model_name)
        if len(history) < 2:
            raise RunError(f"model {model_name!r} has no previous champion to roll back to")
        current, previous = history[-1], history[-2]
        set_alias(connection, model_name, CHAMPION, previous)
        connection.execute(
            sa.update(model_versions)
            .where(model_versions.c.model_name == model_name, model_versions.c.version == current)
            .values(status="rolled-back")
        )
        record_event(connection, model_name, "rollback", current, previous, reason)
    return current, previous


def save_tuning_record(engine: Engine, model_name: str, run_id: str, tuner: str, hyperparameters: dict[str, Any], best_score: float, trials: int, directory: str) -> int:
    """Store the search's winner as the next tuning record version of the model."""
    with engine.begin() as connection:
        version = (
            connection.execute(sa.select(sa.func.max(tuning_records.c.version)).where(tuning_records.c.model_name == model_name)).scalar() or 0
        ) + 1
        connection.execute(
            sa.insert(tuning_records).values(
                model_name=model_name, version=version, created_at=utc_now(), run_id=run_id, tuner=tuner,
                hyperparameters=json.dumps(hyperparameters, sort_keys=True), best_score=best_score, trials=trials, directory=directory,
            )
        )
    return version


def latest_tuning_record(connection: Connection, model_name: str) -> tuple[int, dict[str, Any]] | None:
    """(version, hyperparameters) of the newest tuning record of the model, if any."""
    row = connection.execute(
        sa.select(tuning_records.c.version, tuning_records.c.hyperparameters)
        .where(tuning_records.c.model_name == model_name)
        .order_by(tuning_records.c.version.desc())
        .limit(1)
    ).first()
    return (int(row[0]), json.loads(row[1])) if row else None


def set_alias(connection: Connection, model_name: str, alias: str, version: int, when: datetime | None = None) -> None:
    """Point `alias` at `version` (caller's transaction); the earlier champion becomes `previous`."""
    when = when or utc_now()
    if alias == CHAMPION:
        connection.execute(
            sa.update(model_versions)
            .where(model_versions.c.model_name == model_name, model_versions.c.status == CHAMPION, model_versions.c.version != version)
            .values(status="previous")
        )
        connection.execute(
            sa.update(model_versions)
            .where(model_versions.c.model_name == model_name, model_versions.c.version == version)
            .values(status=CHAMPION)
        )
    updated = connection.execute(
        sa.update(model_aliases)
        .where(model_aliases.c.model_name == model_name, model_aliases.c.alias == alias)
        .values(version=version, updated_at=when)
    )
    if updated.rowcount == 0:
        connection.execute(sa.insert(model_aliases).values(model_name=model_name, alias=alias, version=version, updated_at=when))


def champion_version(connection: Connection, model_name: str) -> int | None:
    return connection.execute(
        sa.select(model_aliases.c.version).where(model_aliases.c.model_name == model_name, model_aliases.c.alias == CHAMPION)
    ).scalar()


def build_manifest(
    config: ModelConfig,
    scaler: SeriesScaler,
    features: list[str],
    frequency: str,
    interval_halfwidths: dict[int, list[float]],
    metrics: dict[str, float],
    data_watermark: Any,
    train_start: Any,
    train_end: Any,
    training: dict[str, Any],
    parent_version: int | None = None,
    mode: str = "retrain",
    tuning_record: int | None = None,
    series_train_end: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Everything needed to forecast with an artifact later, and to know where it came from."""
    return {
        "created_at": utc_now().isoformat(),
        "config": config.model_dump(mode="json"),
        "lookback": config.lookback,
        "horizon": config.horizon,
        "features": list(features),
        "frequency": frequency,
        "scaler": scaler.to_dict(),
        "intervals": {str(level): widths for level, widths in interval_halfwidths.items()},
        "metrics": metrics,
        "data_watermark": _timestamp(data_watermark),
        "train_start": _timestamp(train_start),
        "train_end": _timestamp(train_end),
        "training": training,
        "parent_version": parent_version,
        "mode": mode,
        "tuning_record": tuning_record,
        "series_train_end": series_train_end or {},
    }


@dataclass
class LoadedVersion:
    model_name: str
    version: int
    model: Any
    manifest: dict[str, Any]
    scaler: SeriesScaler

    @property
    def interval_halfwidths(self) -> dict[int, list[float]]:
        return {int(level): widths for level, widths in self.manifest.get("intervals", {}).items()}


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST_FILE
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


def load_artifact(folder: Path, expected_sha256: str | None = None) -> tuple[Any, dict[str, Any]]:
    """(Keras model, manifest) from an artifact folder, after checking its format version and checksum."""
    import keras

    folder = Path(folder)
    manifest = read_manifest(folder)
    if not (folder / MODEL_FILE).is_file():
        raise RunError(f"{folder}: artifact has no {MODEL_FILE}")
    actual = sha256_file(folder / MODEL_FILE)
    for expected in (manifest.get("sha256"), expected_sha256):
        if expected is not None and actual != expected:
            raise RunError(f"{folder / MODEL_FILE}: checksum {actual[:12]}… does not match the registered {expected[:12]}…; refusing to load")
    scaler, train_end = read_series_state(folder, manifest)
    # Callers see one in-memory layout whatever the format: the per-series state inside the manifest.
    manifest = dict(manifest, scaler=scaler.to_dict(), series_train_end=train_end)
    return keras.models.load_model(folder / MODEL_FILE, compile=False), manifest


def load_version(engine: Engine, model_name: str, version: int | None = None) -> LoadedVersion:
    """Load `version` (default: the champion) after checking its format version and checksum."""
    with engine.connect() as connection:
        if version is None:
            version = champion_version(connection, model_name)
            if version is None:
                raise RunError(f"model {model_name!r} has no champion version yet; run with --mode retrain first")
        row = connection.execute(
            sa.select(model_versions).where(model_versions.c.model_name == model_name, model_versions.c.version == version)
        ).mappings().first()
    if row is None:
        raise RunError(f"model {model_name!r} has no version {version}")
    model, manifest = load_artifact(Path(row["artifact_path"]), row["sha256"])
    return LoadedVersion(model_name, int(version), model, manifest, SeriesScaler.from_dict(manifest["scaler"]))


def version_row(engine: Engine, model_name: str, version: int) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(model_versions).where(model_versions.c.model_name == model_name, model_versions.c.version == version)
        ).mappings().first()
    return dict(row) if row else None


def list_versions(engine: Engine, model_name: str | None = None) -> pd.DataFrame:
    """Registered versions, newest first, with the alias each one holds."""
    query = sa.select(
        model_versions.c.model_name,
        model_versions.c.version,
        model_versions.c.status,
        model_versions.c.cell,
        model_versions.c.created_at,
        model_versions.c.data_watermark,
        model_versions.c.metrics,
        model_versions.c.mode,
        model_versions.c.holdout_metric,
        model_versions.c.holdout_score,
        model_versions.c.champion_score,
        model_versions.c.baseline_score,
        model_versions.c.decision,
        model_versions.c.artifact_path,
    ).order_by(model_versions.c.model_name, model_versions.c.version.desc())
    if model_name:
        query = query.where(model_versions.c.model_name == model_name)
    with engine.connect() as connection:
        return pd.DataFrame(connection.execute(query).mappings().all(), columns=[c.name for c in query.selected_columns])
