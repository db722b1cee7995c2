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
from forecasting.database import model_aliases, model_versions
from forecasting.errors import ConfigError, RunError
from forecasting.scaling import SeriesScaler

FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
MANIFEST_FILE = "manifest.json"
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


def register_version(
    engine: Engine,
    storage_root: Path,
    model_name: str,
    model: Any,
    manifest: dict[str, Any],
    run_id: str,
    promote: bool = True,
) -> int:
    """Write the artifact to a temporary folder, checksum it, move it into `<version>/`, then add
    the registry row and (when `promote`) move `champion`, both in one transaction."""
    folder = model_root(storage_root, model_name)
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        model.save(staging / MODEL_FILE)
        manifest = dict(manifest, format_version=FORMAT_VERSION, model_name=model_name, run_id=run_id)
        manifest["sha256"] = sha256_file(staging / MODEL_FILE)
        manifest["libraries"] = library_versions()
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
            )
        )
        if promote:
            set_alias(connection, model_name, CHAMPION, version, now)
    return version


def set_alias(connection: Connection, model_name: str, alias: str, version: int, when: datetime | None = None) -> None:
    """Point `alias` at `version` (caller's transaction); earlier champions become `retired`."""
    when = when or utc_now()
    if alias == CHAMPION:
        connection.execute(
            sa.update(model_versions)
            .where(model_versions.c.model_name == model_name, model_versions.c.status == CHAMPION, model_versions.c.version != version)
            .values(status="retired")
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
    manifest = json.loads(path.read_text())
    found = manifest.get("format_version")
    if found != FORMAT_VERSION:
        raise RunError(
            f"{path}: artifact format version {found} is not supported by this code (it reads format version {FORMAT_VERSION})"
        )
    return manifest


def load_version(engine: Engine, model_name: str, version: int | None = None) -> LoadedVersion:
    """Load `version` (default: the champion) after checking its format version and checksum."""
    import keras

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
    folder = Path(row["artifact_path"])
    manifest = read_manifest(folder)
    actual = sha256_file(folder / MODEL_FILE)
    if actual != manifest["sha256"] or actual != row["sha256"]:
        raise RunError(f"{folder / MODEL_FILE}: checksum {actual[:12]}… does not match the registered {row['sha256'][:12]}…; refusing to load")
    model = keras.models.load_model(folder / MODEL_FILE, compile=False)
    return LoadedVersion(model_name, int(version), model, manifest, SeriesScaler.from_dict(manifest["scaler"]))


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
        model_versions.c.artifact_path,
    ).order_by(model_versions.c.model_name, model_versions.c.version.desc())
    if model_name:
        query = query.where(model_versions.c.model_name == model_name)
    with engine.connect() as connection:
        return pd.DataFrame(connection.execute(query).mappings().all(), columns=[c.name for c in query.selected_columns])
