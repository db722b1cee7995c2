"""`forecasting report` (the HTML report) and `forecasting demo --advance N` (the demo receives its next real months)."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable

import pandas as pd

from forecasting.cli.common import DATABASE, connect, settings_of
from forecasting.errors import ConfigError
from forecasting.evaluation.live_accuracy import period_label
from forecasting.report.render import REPORTS, build_report, write_html
from forecasting.sources.database import source_summary
from forecasting.sources.datasets import m3_monthly
from forecasting.sources.loading import load_observations
from forecasting.steps.run_records import check_schema
from forecasting.storage.files import output_file
from forecasting.storage.locations import is_url


def add_report_command(commands: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    """The `report` subcommand's arguments."""
    report = commands.add_parser("report", help="write a self-contained HTML report: runs, versions, live accuracy, series charts")
    report.add_argument("--model", required=True)
    report.add_argument("--output", help="the HTML file to write (default: <storage>/reports/<model>/report.html)")
    report.add_argument("--series", nargs="+", default=[], metavar="ID", help="series to chart besides the worst ones")
    report.add_argument("--top", type=int, default=5, help="chart the N series with the highest live scaled error (default 5)")
    report.set_defaults(handler=handler)


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report of `args.model` and print one line saying where, with its charts and time taken."""
    settings = settings_of(args)
    settings.model(args.model)
    # Checked before anything else: nothing but a regular file is replaced (a FIFO, a device,
    # a symlink's target that is not a file); a folder the user names must exist.
    if args.output:
        named = args.output if is_url(args.output) else os.path.expanduser(args.output)
        output = output_file(settings.locate(named), "--output", "report.html")
    else:
        output = output_file(settings.storage_root / REPORTS / args.model / "report.html", "report", "report.html", create_folder=True)
    engine = connect(settings)
    check_schema(engine, settings, args.model)
    database = DATABASE["masked"]
    if args.top < 0:
        raise ConfigError(f"--top: must be 0 or more (got {args.top})")
    started = time.perf_counter()
    report = build_report(engine, settings, args.model, args.series, args.top)
    write_html(output, report.html)
    print(
        f"report of model {args.model} from {database}: {output} ({report.charts} charts, {len(report.series)} series; "
        f"{time.perf_counter() - started:.1f} s)"
    )
    return 0


def advance_demo(engine: Any, settings: Any, months: int) -> int:
    """Append the next `months` real months (their held-out `xx` part) of every M3 monthly series in the source:
    exactly the series the demo loaded, whatever `--series` sample that was."""
    if months <= 0:
        raise ConfigError(f"--advance: must be a positive number of months (got {months})")
    with engine.connect() as connection:
        last = source_summary(connection, settings.source).set_index("series_id")["last"]
    full = m3_monthly(include_test=True)
    demo = full[full["series_id"].isin(last.index)]
    if demo.empty:
        raise ConfigError(f"--advance: no M3 monthly series of the demo is in {settings.source.table}; run `forecasting demo` first")
    newest = demo["series_id"].map(pd.to_datetime(last))
    ahead = demo[demo["ts"] > newest.to_numpy()]
    rank = ahead.groupby("series_id").cumcount()
    chosen = ahead[rank < months]
    if chosen.empty:
        raise ConfigError(f"--advance: the demo's series have no more real months after {newest.max().date()} (M3 holds 18 after training)")

    result = load_observations(engine, settings.source, chosen)
    print(
        f"appended {result.rows} observations of {result.series} M3 series ({period_label(result.first_ts)} to "
        f"{period_label(result.last_ts)}) to "
        f"{settings.source.table}; next: forecasting run --model monthly --mode forecast (scores the forecasts they meet)"
    )
    return 0
