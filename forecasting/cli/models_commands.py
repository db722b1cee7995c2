"""`forecasting models list|show|promote|rollback`: the model registry, for people."""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable

import pandas as pd
from sqlalchemy.engine import Engine

from forecasting.errors import ConfigError
from forecasting.model.artifacts import manifest_for_people, read_manifest, series_table
from forecasting.publishing.registry import MAX_VERSION, list_versions, promote, rollback
from forecasting.storage.locations import local_copy


def models_command(engine: Engine, args: argparse.Namespace, database: str) -> int:
    """`models list|show|promote|rollback` (`args.models_command`) on `engine`, printing to stdout; returns the exit status.
    `database`: the masked URL named in the output."""
    version = getattr(args, "version", None)
    if version is not None and not 1 <= version <= MAX_VERSION:  # no such row can exist; the database would refuse the number
        raise ConfigError(f"model {args.name!r} has no version {version}")
    if args.models_command == "promote":
        previous = promote(engine, args.name, args.version, reason="promoted by hand (forecasting models promote)")
        if previous == args.version:
            print(f"model {args.name}: v{args.version} is already the champion in {database}; nothing changed")
            return 0
        print(f"model {args.name}: champion is now v{args.version} (was v{previous}) in {database}")
        return 0
    if args.models_command == "rollback":
        current, previous = rollback(engine, args.name, reason="rolled back by hand (forecasting models rollback)")
        print(f"model {args.name}: rolled back from v{current} to v{previous} in {database}")
        return 0
    if args.models_command == "list":
        versions = list_versions(engine, args.model)
        if versions.empty:
            print(f"no model versions registered yet in {database}")
            return 0
        print(f"model versions in {database}:")
        for row in versions.itertuples():
            metrics = json.loads(row.metrics or "{}")
            val = metrics.get("val_smape_model")
            smape_text = f"  validation sMAPE {val:.2f}" if val is not None else ""
            holdout = f"  holdout {row.holdout_metric} {row.holdout_score:.3f}" if row.holdout_score is not None and row.holdout_score == row.holdout_score else ""
            print(
                f"{row.model_name:<16} v{row.version:<4} {row.status:<11} {row.mode or 'retrain':<9} {row.cell:<5} "
                f"created {row.created_at:%Y-%m-%d %H:%M}  data to {row.data_watermark:%Y-%m-%d}{smape_text}{holdout}"
            )
        return 0
    versions = list_versions(engine, args.name)
    if versions.empty:
        raise ConfigError(f"model {args.name!r} has no registered versions")
    row = versions.iloc[0] if args.version is None else versions.loc[versions["version"] == args.version]
    if isinstance(row, type(versions)):
        if row.empty:
            raise ConfigError(f"model {args.name!r} has no version {args.version}")
        row = row.iloc[0]
    folder = local_copy(row["artifact_path"])
    manifest = read_manifest(folder)
    if args.series:
        with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
            print(series_table(folder, manifest).to_string(index=False))
        return 0
    manifest = manifest_for_people(manifest)
    print(json.dumps({"status": row["status"], "artifact_path": row["artifact_path"], "database": database, **manifest}, indent=2, sort_keys=True))
    return 0


def add_models_command(commands: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    """Add `models list|show|promote|rollback` to the CLI's subcommands, run by `handler`."""
    models = commands.add_parser("models", help="the model registry")
    models_commands = models.add_subparsers(dest="models_command", required=True, metavar="SUBCOMMAND")
    listing = models_commands.add_parser("list", help="registered versions, newest first")
    listing.add_argument("--model")
    show = models_commands.add_parser("show", help="one version's manifest (default: newest)")
    show.add_argument("name")
    show.add_argument("version", nargs="?", type=int)
    show.add_argument("--series", action="store_true", help="print the per-series state (levels, seasonal factors, training ends) as a table")
    promote = models_commands.add_parser("promote", help="make a version the champion (recorded)")
    promote.add_argument("name")
    promote.add_argument("version", type=int)
    rollback = models_commands.add_parser("rollback", help="make the previous champion the champion again (recorded)")
    rollback.add_argument("name")
    models.set_defaults(handler=handler)
