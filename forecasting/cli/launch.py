"""The `forecasting` entry point: on a terminal, a first line on stderr before anything heavy is imported
(pandas, SQLAlchemy, pyarrow, later TensorFlow and Prefect: a minute on a busy machine), then one line
per start-up phase, so a slow start never looks like a hang. Stdlib only until the command's module loads."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

PREFIX = "forecasting:"


def startup_lines_wanted() -> bool:
    """Start-up lines where a person watches: stderr is a terminal and `$FORECASTING_PROGRESS` is not `none`
    (piped or redirected stderr, cron and CI logs, keep their one line per error)."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("FORECASTING_PROGRESS", "").strip().lower() != "none"


def main(argv: Sequence[str] | None = None) -> int:
    """Say the command is starting, load it, say how long that took, run it."""
    wanted = startup_lines_wanted()
    started = time.perf_counter()
    if wanted:
        print(f"{PREFIX} starting: loading libraries", file=sys.stderr, flush=True)
    from forecasting.cli.main import main as run  # lazy: the first line comes before pandas, SQLAlchemy and pyarrow load

    if wanted:
        from forecasting.runtime.phases import echo_startup_phases  # lazy: loaded with the command above

        print(f"{PREFIX} startup: libraries loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        echo_startup_phases(PREFIX)
    return run(argv)
