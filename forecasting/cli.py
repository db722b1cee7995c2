"""`forecasting [--config PATH] COMMAND`: exit 0 on success, 2 on usage/config/input errors, 1 on runtime failures."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from forecasting.errors import ConfigError, ForecastingError

DEMO_MODEL = "monthly"
DEMO_SERIES = 300


def _settings(args: argparse.Namespace) -> Any:
    from forecasting.config import load_settings

    return load_settings(args.config)


def _config_path(args: argparse.Namespace) -> str:
    from forecasting.config import find_config_path

    return str(find_config_path(args.config))


def cmd_init(args: argparse.Namespace) -> int:
    from forecasting.database import connect_checked, masked_url
    from forecasting.schema import migrate

    settings = _settings(args)
    engine = connect_checked(settings.database.url, settings.database.schema_name)
    levels = sorted({level for model in settings.models.values() for level in model.intervals} | {80, 95})
    result = migrate(engine, levels, settings.database.schema_name)
    for folder in ("models", "forecasts", "tuning"):
        (settings.storage_root / folder).mkdir(parents=True, exist_ok=True)
    change = "already current" if result["from_revision"] == result["to_revision"] else f"migrated from {result['from_revision'] or 'empty'}"
    print(f"schema at revision {result['to_revision']} ({change}) on {masked_url(engine)}")
    if result["added_columns"]:
        print(f"added interval columns: {', '.join(result['added_columns'])}")
    print(f"storage at {settings.storage_root}")
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from forecasting.database import connect_checked
    from forecasting.loading import load_observations, read_observation_file

    settings = _settings(args)
    frame = read_observation_file(
        args.file,
        series=args.series_column,
        time=args.time_column,
        value=args.value_column,
        features=settings.source.features,
        file_format=args.format,
    )
    engine = connect_checked(settings.database.url, settings.database.schema_name)
    result = load_observations(engine, settings.source, frame)
    print(
        f"loaded {result.rows} observations of {result.series} series from {args.file} into {settings.source.table} "
        f"({result.inserted} new, {result.updated} replaced; {result.first_ts} to {result.last_ts})"
    )
    return 0


def _run_flow(config_path: str, model: str, mode: str, full_refresh: bool = False) -> dict[str, Any]:
    from flows.forecast_pipeline import forecast_pipeline

    return forecast_pipeline(model=model, mode=mode, config=config_path, full_refresh=full_refresh)


def cmd_run(args: argparse.Namespace) -> int:
    from forecasting.pipeline import format_summary, summary_json

    from forecasting.database import connect_checked
    from forecasting.pipeline import check_schema

    settings = _settings(args)
    settings.model(args.model)
    # Fail fast on config and schema problems, before starting Prefect and TensorFlow.
    check_schema(connect_checked(settings.database.url, settings.database.schema_name), settings, args.model)
    summary = _run_flow(_config_path(args), args.model, args.mode, args.full_refresh)
    print(summary_json(summary) if args.json else format_summary(summary))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from forecasting.database import connect_checked
    from forecasting.pipeline import check_schema, format_tuning

    settings = _settings(args)
    settings.model(args.model)
    if args.max_trials is not None and args.max_trials <= 0:
        raise ConfigError(f"--max-trials: must be a positive number (got {args.max_trials})")
    check_schema(connect_checked(settings.database.url, settings.database.schema_name), settings, args.model)
    from flows.tune_model import tune_model

    result = tune_model(model=args.model, tuner=args.tuner, max_trials=args.max_trials, config=_config_path(args))
    print(format_tuning(result))
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from forecasting.database import connect_checked
    from forecasting.pipeline import check_schema

    settings = _settings(args)
    settings.model(args.model)
    if args.windows <= 0:
        raise ConfigError(f"--windows: must be a positive number (got {args.windows})")
    if args.step is not None and args.step <= 0:
        raise ConfigError(f"--step: must be a positive number (got {args.step})")
    check_schema(connect_checked(settings.database.url, settings.database.schema_name), settings, args.model)
    from flows.backtest_model import backtest_model

    result = backtest_model(model=args.model, windows=args.windows, step=args.step, config=_config_path(args))
    if args.json:
        print(json.dumps({key: value for key, value in result.items() if key != "table"}))
    else:
        print(result["table"])
        print(f"backtest {result['backtest_id']}: {result['rows']} rows in table backtests")
    return 0


def cmd_repair(args: argparse.Namespace) -> int:
    from forecasting.database import connect_checked
    from forecasting.locking import model_lock
    from forecasting.pipeline import check_schema
    from forecasting.repair import format_repair, repair_parquet

    settings = _settings(args)
    config = settings.model(args.model)
    engine = connect_checked(settings.database.url)
    check_schema(engine, settings, args.model)
    with model_lock(engine, settings.storage_root, args.model, config.lock_timeout_minutes * 60):
        report = repair_parquet(engine, settings.storage_root, args.model, config.intervals)
    print(format_repair(report, settings.storage_root))
    return 0


def cmd_deployments(args: argparse.Namespace) -> int:
    from forecasting.deployments import deployment_specs, render_prefect_yaml

    settings = _settings(args)
    text = render_prefect_yaml(settings)
    output = Path(args.output)
    if args.check:
        if not output.is_file() or output.read_text() != text:
            raise ConfigError(f"{output} does not match the config; run `forecasting deployments` to regenerate it")
        print(f"{output} matches the config")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    specs = deployment_specs(settings)
    scheduled = sum(1 for spec in specs if spec["schedules"])
    print(f"wrote {len(specs)} deployments ({scheduled} with schedules) to {output}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not settings.models:
        raise ConfigError("models: no models configured, nothing to serve")
    from flows.serve import serve_all

    serve_all(_config_path(args), limit=args.limit)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from forecasting.database import connect_checked
    from forecasting.registry import list_versions, promote, read_manifest, rollback

    settings = _settings(args)
    engine = connect_checked(settings.database.url, settings.database.schema_name)
    if args.models_command == "promote":
        previous = promote(engine, args.name, args.version, reason="promoted by hand (forecasting models promote)")
        print(f"model {args.name}: champion is now v{args.version} (was v{previous})")
        return 0
    if args.models_command == "rollback":
        current, previous = rollback(engine, args.name, reason="rolled back by hand (forecasting models rollback)")
        print(f"model {args.name}: rolled back from v{current} to v{previous}")
        return 0
    if args.models_command == "list":
        versions = list_versions(engine, args.model)
        if versions.empty:
            print("no model versions registered yet")
            return 0
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
    folder = Path(row["artifact_path"])
    manifest = read_manifest(folder)
    if args.series:
        import pandas as pd

        from forecasting.registry import series_table

        with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
            print(series_table(folder, manifest).to_string(index=False))
        return 0
    if "series_file" not in manifest:  # format 1 holds the per-series state inline: summarise it
        scaler = manifest["scaler"]
        manifest["scaler"] = {
            "method": scaler["method"], "target": scaler.get("target", "series"), "series_count": len(scaler["series"]),
            "seasonal_series": len((scaler.get("seasonal") or {}).get("factors", {})),
        }
        manifest["series_train_end"] = f"{len(manifest.get('series_train_end', {}))} series (see --series)"
    manifest.get("training", {}).pop("history", None)
    print(json.dumps({"status": row["status"], "artifact_path": row["artifact_path"], **manifest}, indent=2, sort_keys=True))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from forecasting.database import connect_checked
    from forecasting.datasets import m3_monthly
    from forecasting.loading import load_observations
    from forecasting.pipeline import format_summary

    settings = _settings(args)
    if DEMO_MODEL not in settings.models:
        raise ConfigError(f"models.{DEMO_MODEL}: the demo needs a [models.{DEMO_MODEL}] section in the config")
    print("1/3 creating schema and storage")
    cmd_init(args)
    frame = m3_monthly(args.series)
    engine = connect_checked(settings.database.url, settings.database.schema_name)
    result = load_observations(engine, settings.source, frame)
    print(
        f"2/3 loaded {result.rows} observations of {result.series} M3 monthly series into {settings.source.table} "
        f"({result.inserted} new, {result.updated} replaced)"
    )
    print(f"3/3 running forecast-pipeline for model {DEMO_MODEL} (mode retrain) on a local Prefect server")
    summary = _run_flow(_config_path(args), DEMO_MODEL, "retrain")
    print()
    print(format_summary(summary))
    print()
    print("next: forecasting models list | forecasting run --model monthly --mode forecast")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forecasting", description="Scheduled recurrent-network forecasting job.")
    parser.add_argument("--config", help="config file (default: $FORECASTING_CONFIG, else ./forecasting.toml)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("init", help="create or migrate the schema and storage folders (idempotent)").set_defaults(handler=cmd_init)

    load = commands.add_parser("load", help="upsert observations from a CSV or Parquet file, all or nothing")
    load.add_argument("file")
    load.add_argument("--series-column", default="series_id", help="file column holding the series id (default series_id)")
    load.add_argument("--time-column", default="ts", help="file column holding the ISO 8601 timestamp (default ts)")
    load.add_argument("--value-column", default="value", help="file column holding the value (default value)")
    load.add_argument("--format", choices=["csv", "parquet"], help="file format (default: from the extension)")
    load.set_defaults(handler=cmd_load)

    run = commands.add_parser("run", help="run the forecast-pipeline flow once")
    run.add_argument("--model", required=True)
    run.add_argument("--mode", choices=["auto", "retrain", "fine-tune", "forecast"], default="auto")
    run.add_argument("--full-refresh", action="store_true", help="rebuild the local history store from the whole source table")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.set_defaults(handler=cmd_run)

    tune = commands.add_parser("tune", help="hyperparameter search with keras-tuner; later retrains use the winner")
    tune.add_argument("--model", required=True)
    tune.add_argument("--tuner", choices=["hyperband", "random", "bayesian"], help="default: the model's tuning.tuner")
    tune.add_argument("--max-trials", type=int, help="default: the model's tuning.max_trials")
    tune.set_defaults(handler=cmd_tune)

    backtest = commands.add_parser("backtest", help="rolling-origin backtest: train up to each origin, forecast, score; stored in table backtests")
    backtest.add_argument("--model", required=True)
    backtest.add_argument("--windows", type=int, default=3, help="number of forecast origins (default 3)")
    backtest.add_argument("--step", type=int, default=None, help="periods between origins (default: the horizon)")
    backtest.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    backtest.set_defaults(handler=cmd_backtest)

    repair = commands.add_parser("repair", help="rebuild the model's missing, unreadable or short Parquet partitions from SQL")
    repair.add_argument("--model", required=True)
    repair.set_defaults(handler=cmd_repair)

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
    models.set_defaults(handler=cmd_models)

    deployments = commands.add_parser("deployments", help="write deployments/prefect.yaml from the config (the config is the source of truth)")
    deployments.add_argument("--output", default="deployments/prefect.yaml")
    deployments.add_argument("--check", action="store_true", help="only check that the file matches the config")
    deployments.set_defaults(handler=cmd_deployments)

    serve = commands.add_parser("serve", help="serve every deployment with its schedules from this process (no worker needed)")
    serve.add_argument("--limit", type=int, help="most flow runs at once (default: no limit)")
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser("demo", help="load M3 monthly series and run the pipeline once (what `make demo` runs)")
    demo.add_argument("--series", type=int, default=DEMO_SERIES, help=f"how many M3 monthly series to load (default {DEMO_SERIES})")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ForecastingError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001
        if os.environ.get("FORECASTING_DEBUG"):
            raise
        import sqlalchemy as sa

        if isinstance(error, sa.exc.OperationalError):
            reason = (str(error.orig).strip().splitlines() or [type(error.orig).__name__])[0]
            print(
                f"error: the database stopped answering ({reason}); the run stopped without leaving partial "
                "results: run it again when the database is back",
                file=sys.stderr,
            )
            return 1
        print(f"error: {type(error).__name__}: {error} (set FORECASTING_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
