"""The model registry: `model_versions` rows, aliases (`champion`), events, tuning records, and the
atomic placement of a saved forecaster's folder under `<storage>/models/<model>/<version>/`.

On an object store (no rename) the folder is saved locally, then uploaded object by object with
the manifest last; the registry row, written after every object is there, is the commit point.
A version folder without a manifest is a killed upload, removed by the next registration."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from forecasting.model.artifacts import FORMAT_VERSION, MANIFEST_FILE, write_manifest
from forecasting.runtime.clock import utc_now
from forecasting.config.settings import MODEL_NAME_PATTERN
from forecasting.sources.tables import model_aliases, model_events, model_versions, tuning_records
from forecasting.errors import ConfigError, RunError
from forecasting.runtime.faults import checkpoint
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.storage.locations import failing_clearly_when_full, is_remote, local_copy, location, remove_tree, upload_folder

CHAMPION = "champion"
# The largest version number the `version` columns (INTEGER) hold on every database.
MAX_VERSION = 2**31 - 1


def model_root(storage_root: Path, model_name: str) -> Path:
    """`<storage>/models/<model>`, refusing names that could leave the storage root."""
    if not MODEL_NAME_PATTERN.match(model_name):
        raise ConfigError(f"model name {model_name!r} is not allowed (letters, digits, '-' and '_' only)")
    return location(storage_root) / "models" / model_name


def remove_unregistered_versions(engine: Engine, storage_root: Path, model_name: str) -> list[str]:
    """Remove `<storage>/models/<model>/<n>` folders without a model_versions row: a run killed between
    placing (or uploading) a version and registering it leaves one. Only while the caller holds the
    model's run lock (no registration of the model can be under way); returns the removed names."""
    folder = model_root(storage_root, model_name)
    if not folder.exists():
        return []
    with engine.connect() as connection:
        registered = set(
            connection.execute(sa.select(model_versions.c.version).where(model_versions.c.model_name == model_name)).scalars()
        )
    removed = []
    for child in sorted(folder.iterdir(), key=lambda path: path.name):
        if child.name.isdigit() and int(child.name) not in registered:
            remove_tree(child)
            removed.append(child.name)
    return removed


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
    forecaster: RecurrentForecaster,
    run_id: str,
    promote: bool = True,
    gate: dict[str, Any] | None = None,
) -> int:
    """Save `forecaster` (with its holdout network) to a temporary folder, move it into `<version>/`,
    then add the registry row and (when `promote`) move `champion`, both in one transaction;
    `gate`: the promotion gate's scores and decision for the row. Returns the version number."""
    folder = model_root(storage_root, model_name)
    forecaster = replace(forecaster, provenance={**forecaster.provenance, "model_name": model_name, "run_id": run_id})
    if is_remote(folder):
        version, manifest = _upload_version(engine, folder, model_name, forecaster)
    else:
        version, manifest = _place_version(engine, folder, model_name, forecaster)
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


def _upload_version(engine: Engine, folder: Path, model_name: str, forecaster: RecurrentForecaster) -> tuple[int, dict[str, Any]]:
    """Save into a local scratch folder and upload it under `<version>/` of the object store, manifest last."""
    if folder.exists():
        for child in folder.iterdir():  # a killed upload (no manifest); the model's run lock is held
            if child.name.isdigit() and not (child / MANIFEST_FILE).exists():
                remove_tree(child)
    with tempfile.TemporaryDirectory(prefix="forecasting-save-") as scratch, failing_clearly_when_full(folder):
        manifest = forecaster.save(Path(scratch))
        with engine.connect() as connection:
            version = _next_version(connection, folder, model_name)
        manifest["version"] = version
        write_manifest(Path(scratch), manifest)
        upload_folder(Path(scratch), folder / str(version), last=MANIFEST_FILE, kill_point="artifact-upload")
    return version, manifest


def _place_version(engine: Engine, folder: Path, model_name: str, forecaster: RecurrentForecaster) -> tuple[int, dict[str, Any]]:
    """Save into a hidden folder beside the versions and rename it into `<version>/`."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".tmp-*"):  # left by a killed run; the model's run lock is held
        shutil.rmtree(stale, ignore_errors=True)
    staging = folder / f".tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        with failing_clearly_when_full(folder):  # the versions already there are untouched
            manifest = forecaster.save(staging)
        with engine.connect() as connection:
            version = _next_version(connection, folder, model_name)
        while True:
            manifest["version"] = version
            with failing_clearly_when_full(folder):
                write_manifest(staging, manifest)
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
    return version, manifest


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
    """Make `version` the champion (recorded); returns the previous champion. Promoting the current
    champion again changes and records nothing (a repeated command is a no-op) and returns `version`."""
    if not 1 <= version <= MAX_VERSION:  # past the column's range: the database would refuse the number itself
        raise ConfigError(f"model {model_name!r} has no version {version}")
    with engine.begin() as connection:
        exists = connection.execute(
            sa.select(model_versions.c.version).where(model_versions.c.model_name == model_name, model_versions.c.version == version)
        ).scalar()
        if exists is None:
            raise ConfigError(f"model {model_name!r} has no version {version}")
        previous = champion_version(connection, model_name)
        if previous == version:
            return previous
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


def load_version(engine: Engine, model_name: str, version: int | None = None) -> RecurrentForecaster:
    """The forecaster of `version` (default: the champion), after checking its format version and
    checksums; its `version` is the registry's."""
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
    forecaster = RecurrentForecaster.load(local_copy(row["artifact_path"], row["sha256"]), row["sha256"])
    return replace(forecaster, provenance={**forecaster.provenance, "model_name": model_name, "version": int(version)})


def version_row(engine: Engine, model_name: str, version: int) -> dict[str, Any] | None:
    """The registry row of one version (None: no such version)."""
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(model_versions).where(model_versions.c.model_name == model_name, model_versions.c.version == version)
        ).mappings().first()
    return dict(row) if row else None


def newest_version(engine: Engine, model_name: str) -> dict[str, Any] | None:
    """The registry row of the most recently trained version (champion or not)."""
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(model_versions).where(model_versions.c.model_name == model_name).order_by(model_versions.c.version.desc()).limit(1)
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
