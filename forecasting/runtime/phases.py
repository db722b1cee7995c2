"""Phase timings of a run: one log line per phase with its counts, and, when
`$FORECASTING_PHASES_FILE` names a file, one JSON line per phase appended to it (what
`benchmarks/scale.py` reads). Nothing here changes what a run computes."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from forecasting.runtime import memory
from forecasting.runtime.progress import Heartbeat, live_tracker, stop_bar_since

PHASES_ENV = "FORECASTING_PHASES_FILE"
STARTUP = "startup"  # phases whose names start so are shown on stderr by `echo_startup_phases`
logger = logging.getLogger("forecasting.phases")
_startup_echo: list[str] = []  # the prefix of the start-up lines, once the CLI asked for them
F = TypeVar("F", bound=Callable[..., Any])


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def echo_startup_phases(prefix: str) -> None:
    """From now on, each start-up phase says on stderr when it begins and how long it took (`forecasting.cli.launch`)."""
    _startup_echo[:] = [prefix]


def _echo(name: str, text: str) -> None:
    if _startup_echo and name.startswith(STARTUP):
        print(f"{_startup_echo[0]} {name}{text}", file=sys.stderr, flush=True)


def record(name: str, started: float, seconds: float, counts: dict[str, Any], cpu_seconds: float | None = None) -> None:
    """Log one phase line and append it to `$FORECASTING_PHASES_FILE` when set (with the process's CPU
    seconds in the phase, all threads: a busy machine stretches wall time far more than CPU time)."""
    shown = ", ".join(f"{key} {value}" for key, value in counts.items())
    _echo(name, f": {seconds:.1f} s")
    logger.info(f"phase {name}: {seconds:.2f} s" + (f" ({shown})" if shown else ""))
    path = os.environ.get(PHASES_ENV, "").strip()
    if path:
        line = {"phase": name, "started": round(started, 3), "seconds": round(seconds, 3), "peak_rss_mib": round(peak_rss_mib(), 1), **counts}
        if cpu_seconds is not None:
            line["cpu_seconds"] = round(cpu_seconds, 3)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, default=str) + "\n")


@contextlib.contextmanager
def phase(name: str, data: bool = False) -> Iterator[dict[str, Any]]:
    """Time the block as phase `name`; the yielded dict takes counts to report with it (rows, series).
    A `data` phase (frames and arrays, no training) runs without cyclic garbage collection
    (`memory.paused_gc`: its cost per series would grow with the number of series)."""
    counts: dict[str, Any] = {}
    started_wall, started, started_cpu = time.time(), time.perf_counter(), time.process_time()
    bar = live_tracker()
    _echo(name, " ...")
    try:
        with Heartbeat(name), memory.paused_gc() if data else contextlib.nullcontext():  # Heartbeat: a line when the phase has logged nothing for a while
            yield counts
    finally:
        stop_bar_since(bar)
        record(name, started_wall, time.perf_counter() - started, counts, time.process_time() - started_cpu)


def timed(name: str, data: bool = False) -> Callable[[F], F]:
    """Decorate a step so that each call is timed as phase `name` (a `data` phase: see `phase`); what
    it freed goes back to the system when it ends."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                with phase(name, data):
                    return function(*args, **kwargs)
            finally:
                memory.release_memory()

        return wrapper  # type: ignore[return-value]

    return decorate
