"""`forecasting [--config PATH] COMMAND`: exit 0 on success, 2 on usage/config/input errors, 1 on runtime failures."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from forecasting.cli.check_command import add_check_command, cmd_check
from forecasting.cli.common import DATABASE, config_path_of, connect, settings_of
from forecasting.cli.models_commands import add_models_command, models_command
from forecasting.cli.report_commands import add_report_command, advance_demo, cmd_report
from forecasting.config.credentials import mask_log_records, masked_url, redact
from forecasting.config.deployments import deployment_specs, render_prefect_yaml
from forecasting.config.settings import load_settings
from forecasting.errors import ConfigError, ForecastingError
from forecasting.publishing.repair import format_repair, repair_parquet
from forecasting.runtime import console, progress
from forecasting.runtime.orchestrator import API_URL_ENV, SERVE_PID_ENV, prefect_api
from forecasting.runtime.phases import phase
from forecasting.sources.datasets import m3_monthly
from forecasting.sources.loading import load_observations, read_observation_file
from forecasting.sources.locking import model_lock
from forecasting.steps import check_schema, format_summary, format_tuning, summary_json
from forecasting.steps.run_records import record_failed_start
from forecasting.storage.files import check_storage, output_file, replace_atomically
from forecasting.storage.locations import make_dirs

DEMO_MODEL = "monthly"
DEMO_SERIES = 300
DEPLOYMENTS_FILE = "deployments/prefect.yaml"


def _orchestrated(call: Callable[[], Any], config: str, model: str, mode: str) -> Any:
    """Call a flow with a Prefect API (a running server from PREFECT_API_URL, else a temporary one owned by
    this process), with TensorFlow and Prefect quiet unless verbose, and stdout kept for the summary."""
    def import_tensorflow() -> None:
        with phase("startup: tensorflow import"):
            console.import_tensorflow()
        with phase("startup: prefect import"):  # the server is still starting
            import prefect.main  # noqa: F401 - `import prefect` alone is lazy; this also sets up the logging quieted next; lazy: prefect

    with contextlib.ExitStack() as stack:
        try:
            # TensorFlow is imported here while a temporary Prefect server starts in its own process.
            with phase("startup: prefect api"):
                api_url = stack.enter_context(prefect_api(verbose=console.verbose(), while_starting=import_tensorflow))
        except ForecastingError as error:
            with contextlib.suppress(Exception):
                record_failed_start(load_settings(config), model, mode, error)
            raise
        from prefect.settings import (  # lazy: prefect
            PREFECT_API_URL,
            temporary_settings,
        )

        console.quiet_prefect_logging()
        with temporary_settings(updates={PREFECT_API_URL: api_url}), contextlib.redirect_stdout(sys.stderr):
            try:
                return call()
            finally:
                _drain_prefect()


def _drain_prefect() -> None:
    """Send Prefect's queued logs and events while the API still answers (a temporary server stops next)."""
    from prefect.events.worker import EventsWorker  # lazy: prefect
    from prefect.logging.handlers import APILogWorker  # lazy: prefect

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):
            worker.drain_all(timeout=30)


def cmd_init(args: argparse.Namespace) -> int:
    from forecasting.sources.schema import migrate  # lazy: alembic

    settings = settings_of(args)
    check_storage(settings)
    engine = connect(settings)
    levels = sorted({level for model in settings.models.values() for level in model.intervals} | {80, 95})
    result = migrate(engine, levels, settings.database.schema_name, settings.source)
    for folder in (settings.storage_root / "models", settings.forecasts_root, settings.storage_root / "tuning"):
        make_dirs(folder)
    change = "already current" if result["from_revision"] == result["to_revision"] else f"migrated from {result['from_revision'] or 'empty'}"
    where = f" in schema {settings.database.schema_name}" if settings.database.schema_name else ""
    print(f"tables at migration {result['to_revision']} ({change}){where} on {masked_url(engine)}")
    if result["added_columns"]:
        print(f"added interval columns: {', '.join(result['added_columns'])}")
    print(f"storage at {settings.storage_root}")
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    frame = read_observation_file(
        args.file,
        series=args.series_column or settings.source.series,
        time=args.time_column or settings.source.time,
        value=args.value_column or settings.source.target,
        features=settings.source.columns,
        file_format=args.format,
    )
    engine = connect(settings)
    result = load_observations(engine, settings.source, frame)
    print(
        f"loaded {result.rows} observations of {result.series} series from {args.file} into {settings.source.table} "
        f"in {DATABASE['masked']} ({result.inserted} new, {result.updated} replaced; {result.first_ts} to {result.last_ts})"
    )
    return 0


def _run_flow(config_path: str, model: str, mode: str, full_refresh: bool = False, allow_series_drop: bool = False) -> dict[str, Any]:
    def call() -> dict[str, Any]:
        from flows.forecast_pipeline import forecast_pipeline  # imports prefect: after the server's start began; lazy: prefect

        return forecast_pipeline(model=model, mode=mode, config=config_path, full_refresh=full_refresh, allow_series_drop=allow_series_drop)

    return _orchestrated(call, config_path, model, mode)


def _before_flow(args: argparse.Namespace, *argument_errors: str | None) -> str:
    """What `run`, `tune` and `backtest` do before their flow: the settings, the model named, the
    command's own argument errors (the first raised; None: no error), the storage root, the
    connection and the schema, so config and schema problems fail fast, before Prefect and
    TensorFlow start. Returns the config path."""
    settings = settings_of(args)
    settings.model(args.model)
    for error in argument_errors:
        if error is not None:
            raise ConfigError(error)
    check_storage(settings)
    check_schema(connect(settings), settings, args.model)
    return config_path_of(args)


def _not_positive(option: str, value: int | None) -> str | None:
    """The error for a count option given as zero or less (None: fine, or not given)."""
    return f"{option}: must be a positive number (got {value})" if value is not None and value <= 0 else None


def cmd_run(args: argparse.Namespace) -> int:
    config = _before_flow(args)
    summary = _run_flow(config, args.model, args.mode, args.full_refresh, args.allow_series_drop)
    print(summary_json(summary) if args.json else format_summary(summary))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    config = _before_flow(args, _not_positive("--max-trials", args.max_trials))
    from flows.tune_model import tune_model  # lazy: prefect

    result = _orchestrated(
        lambda: tune_model(model=args.model, tuner=args.tuner, max_trials=args.max_trials, config=config), config, args.model, "tune"
    )
    print(format_tuning(result))
    print(f"  stored in table tuning_records in {DATABASE['masked']}")
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    config = _before_flow(args, _not_positive("--windows", args.windows), _not_positive("--step", args.step))
    from flows.backtest_model import backtest_model  # lazy: prefect

    result = _orchestrated(
        lambda: backtest_model(model=args.model, windows=args.windows, step=args.step, config=config), config, args.model, "backtest"
    )
    if args.json:
        print(json.dumps({**{key: value for key, value in result.items() if key != "table"}, "database": DATABASE["masked"]}, default=str))
    else:
        print(result["table"])
        print(f"backtest {result['backtest_id']}: {result['rows']} rows in table backtests in {DATABASE['masked']}")
    return 0


def cmd_repair(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    config = settings.model(args.model)
    check_storage(settings)
    engine = connect(settings)
    check_schema(engine, settings, args.model)
    with model_lock(engine, settings.storage_root, args.model, config.lock_timeout_minutes * 60):
        report = repair_parquet(engine, settings.storage_root, args.model, config.intervals, settings.forecasts_root)
    print(format_repair(report, settings.storage_root, settings.forecasts_root))
    return 0


def cmd_deployments(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    # Like every relative path in the config, relative to the config file's folder.
    output = Path(config_path_of(args)).parent / (os.path.expanduser(args.output) if args.output else DEPLOYMENTS_FILE)
    text = render_prefect_yaml(settings, config_path_of(args), output)
    if args.check:
        if not output.exists():
            raise ConfigError(f"{output} is missing; run `forecasting deployments` to write it")
        if not output.is_file() or output.read_text() != text:
            raise ConfigError(f"{output} does not match the config; run `forecasting deployments` to regenerate it")
        print(f"{output} matches the config")
        return 0
    target = output_file(output, "--output" if args.output else "deployments", "prefect.yaml", create_folder=not args.output)
    replace_atomically(target, lambda temporary: temporary.write_text(text))  # only a regular file is replaced
    specs = deployment_specs(settings)
    scheduled = sum(1 for spec in specs if spec["schedules"])
    print(f"wrote {len(specs)} deployments ({scheduled} with schedules) to {output}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    if not settings.models:
        raise ConfigError("models: no models configured, nothing to serve")

    if not os.environ.get(API_URL_ENV, "").strip():
        print(
            f"note: {API_URL_ENV} is not set: serving with a temporary Prefect server owned by this process, whose schedules "
            f"and run history last only while it runs; for lasting ones run `prefect server start` and set {API_URL_ENV}",
            file=sys.stderr,
        )
    with prefect_api(verbose=console.verbose()) as api_url:
        os.environ[API_URL_ENV] = api_url  # the flow runs it starts (child processes) use the same server
        os.environ[SERVE_PID_ENV] = str(os.getpid())  # ... and die with this process (orchestrator.die_with_serve)
        from prefect.settings import (  # lazy: prefect
            PREFECT_API_URL,
            temporary_settings,
        )

        from flows.serve import serve_all  # lazy: prefect

        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            serve_all(config_path_of(args), limit=args.limit)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    return models_command(connect(settings), args, DATABASE["masked"])


def cmd_demo(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    if DEMO_MODEL not in settings.models:
        raise ConfigError(f"models.{DEMO_MODEL}: the demo needs a [models.{DEMO_MODEL}] section in the config")
    if args.series < 1:
        raise ConfigError(f"--series: must be a positive number of series (got {args.series})")
    if args.advance is not None:
        return advance_demo(connect(settings), settings, args.advance)
    print("1/3 creating schema and storage")
    cmd_init(args)
    frame = m3_monthly(args.series)
    engine = connect(settings)
    result = load_observations(engine, settings.source, frame)
    print(
        f"2/3 loaded {result.rows} observations of {result.series} M3 monthly series into {settings.source.table} "
        f"({result.inserted} new, {result.updated} replaced)"
    )
    print(f"3/3 running forecast-pipeline for model {DEMO_MODEL} (mode retrain) on a local Prefect server")
    summary = _run_flow(config_path_of(args), DEMO_MODEL, "retrain")
    print()
    print(format_summary(summary))
    print()
    print("next: forecasting demo --advance 1 (the next real month) | forecasting run --model monthly --mode forecast | forecasting report --model monthly")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forecasting", description="Scheduled recurrent-network forecasting job.")
    parser.add_argument("--config", help="config file (default: $FORECASTING_CONFIG, else ./forecasting.toml)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's and Prefect's own log lines and tracebacks (also FORECASTING_DEBUG=1)")
    parser.add_argument("--no-progress", action="store_true", help="no live progress bar on a terminal (also FORECASTING_PROGRESS=off)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("init", help="create or migrate the schema and storage folders (idempotent)").set_defaults(handler=cmd_init)

    load = commands.add_parser("load", help="upsert observations from a CSV or Parquet file, all or nothing")
    load.add_argument("file")
    load.add_argument("--series-column", help="file column holding the series id (default: source.series, series_id)")
    load.add_argument("--time-column", help="file column holding the ISO 8601 timestamp (default: source.time, ts)")
    load.add_argument("--value-column", help="file column holding the value (default: source.target, value)")
    load.add_argument("--format", choices=["csv", "parquet"], help="file format (default: from the extension)")
    load.set_defaults(handler=cmd_load)

    add_check_command(commands, cmd_check)

    run = commands.add_parser("run", help="run the forecast-pipeline flow once")
    run.add_argument("--model", required=True)
    run.add_argument("--mode", choices=["auto", "retrain", "fine-tune", "forecast"], default="auto")
    run.add_argument("--full-refresh", action="store_true", help="rebuild the local history store from the whole source table")
    run.add_argument(
        "--allow-series-drop", action="store_true",
        help="let this run's pull remove more series or rows than source.max_series_drop allows (they were really deleted)",
    )
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

    add_models_command(commands, cmd_models)

    deployments = commands.add_parser("deployments", help="write deployments/prefect.yaml from the config (the config is the source of truth)")
    deployments.add_argument(
        "--output", help=f"file to write or check; a relative path is relative to the config file's folder (default {DEPLOYMENTS_FILE})"
    )
    deployments.add_argument("--check", action="store_true", help="only check that the file matches the config")
    deployments.set_defaults(handler=cmd_deployments)

    serve = commands.add_parser("serve", help="serve every deployment with its schedules from this process (no worker needed)")
    serve.add_argument("--limit", type=int, help="most flow runs at once (default: no limit)")
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser("demo", help="load M3 monthly series and run the pipeline once (what `make demo` runs)")
    demo.add_argument("--series", type=int, default=DEMO_SERIES, help=f"how many M3 monthly series to load (default {DEMO_SERIES})")
    demo.add_argument("--advance", type=int, metavar="N", help="only append the next N real months of the series the demo loaded (M3's held-out months); --series plays no part")
    demo.set_defaults(handler=cmd_demo)

    add_report_command(commands, cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # the process's own command, not a call from Python
        console.freeze_at_exit()
    args = build_parser().parse_args(argv)
    if args.verbose:
        os.environ[console.VERBOSE_ENV] = "1"
    if args.no_progress:
        os.environ[progress.PROGRESS_ENV] = "off"
    console.quiet_environment()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    mask_log_records()  # the database password, in any log record of this process
    DATABASE.clear()
    try:
        return console.with_plain_progress(lambda: args.handler(args))
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001
        if isinstance(error, ForecastingError):
            line, code = str(error), error.exit_code
        elif console.debug():
            raise
        else:
            line, code = console.error_line(error)

        line = " ".join(redact(line, DATABASE.get("url")).split())
        if DATABASE and DATABASE["masked"] not in line:
            line += f" (database: {DATABASE['masked']})"
        print(f"error: {line}", file=sys.stderr)
        return code


if __name__ == "__main__":
    raise SystemExit(main())
