"""`forecasting check`: the dry run (`forecasting.steps.dry_run`), one line per check, ok or problem."""

from __future__ import annotations

import argparse
from typing import Any, Callable

from forecasting.cli.common import DATABASE, settings_of
from forecasting.config.credentials import masked_url
from forecasting.steps.dry_run import dry_run, exit_code


def add_check_command(commands: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    check = commands.add_parser(
        "check", help="dry run: the database, the source's columns and data, each model's settings and training time, storage, Prefect"
    )
    check.add_argument("--model", action="append", help="check this model only (repeat for several; default: every configured model)")
    check.add_argument("--no-estimate", action="store_true", help="leave out the training-time calibration (no TensorFlow: a few seconds)")
    check.set_defaults(handler=handler)


def cmd_check(args: argparse.Namespace) -> int:
    """Print every check as it is done; exit 0 when none is a problem, else 2 (config or data) or 1 (unreachable)."""
    settings = settings_of(args)
    names = list(dict.fromkeys(args.model)) if args.model else sorted(settings.models)
    for name in names:
        settings.model(name)  # an unknown model: one line, exit 2
    DATABASE.update(url=settings.database.url, masked=masked_url(settings.database.url))
    checks = []
    for check in dry_run(settings, names, estimate=not args.no_estimate):
        checks.append(check)
        print(check.line(), flush=True)
    problems = sum(check.problem for check in checks)
    print(f"{problems} problem{'s' if problems != 1 else ''} found" if problems else "all checks passed", "(a dry run: nothing was written)")
    return exit_code(checks)
