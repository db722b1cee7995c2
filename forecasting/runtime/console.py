"""What the CLI shows on stderr: quiet by default, everything with `--verbose` or FORECASTING_DEBUG=1.

Quiet means: no TensorFlow C++ start-up lines, no informational flow logs (state changes, progress
notes), no warning that a task timeout cannot interrupt a worker thread, no failure tracebacks (the CLI
reports the error in one line). Keras's epoch lines, warnings and Prefect's retry notices still show, and
so do the plain progress lines whenever no live bar is drawn (stderr not a terminal, or `--no-progress`),
unless FORECASTING_PROGRESS=none.
Never imports prefect.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from typing import TypeVar

import sqlalchemy as sa

from forecasting.runtime.progress import bar_wanted, lines_wanted

T = TypeVar("T")

DEBUG_ENV = "FORECASTING_DEBUG"
VERBOSE_ENV = "FORECASTING_VERBOSE"
_NOISE = ("Timeout of ", "seconds configured for this task, but the task is running in a worker thread")


def debug() -> bool:
    """FORECASTING_DEBUG is set: tracebacks of unexpected errors, and everything verbose shows."""
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def verbose() -> bool:
    """`--verbose` (FORECASTING_VERBOSE) or FORECASTING_DEBUG: show every log line."""
    return debug() or os.environ.get(VERBOSE_ENV, "").strip() not in ("", "0")


def quiet_environment() -> None:
    """Before TensorFlow is imported: its C++ logging shows errors only (quiet) or everything (verbose)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose() else "3")


@contextlib.contextmanager
def _stderr_fd_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow() -> None:
    """Import TensorFlow now; quietly, its C++ lines printed before logging is set up go nowhere."""
    if "tensorflow" in sys.modules or verbose():
        return
    with _stderr_fd_silenced():
        import tensorflow  # noqa: F401 - lazy: tensorflow
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


class _QuietFilter(logging.Filter):
    """Drops Prefect's chatter and failure reports; keeps warnings and retry notices."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(("forecasting.progress", "forecasting.phases")):
            return record.levelno >= logging.WARNING  # a terminal shows the progress bar; Prefect's logs get the lines
        if not record.name.startswith("prefect"):
            return True
        message = record.getMessage()
        if record.levelno < logging.WARNING:
            return message.startswith("Task run failed with") and " - Retry " in message
        if all(part in message for part in _NOISE):
            return False
        # Failures of flows and tasks reach the CLI as the exception it reports in one line.
        return record.levelno < logging.ERROR or not record.name.startswith(("prefect.flow_runs", "prefect.task_runs"))


_FILTER = _QuietFilter()

PROGRESS_LOGGER = "forecasting.progress"


class _PlainProgress(logging.StreamHandler):
    """The plain progress lines on the process's current stderr, while no live bar is drawn there
    (stderr is not a terminal, or `--no-progress`): the quiet filter keeps them off Prefect's console
    handler, so a cron or CI log would otherwise show nothing during a long phase."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201 - whatever sys.stderr is now (redirected, captured)
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass

    def filter(self, record: logging.LogRecord) -> bool:  # type: ignore[override]

        return record.levelno < logging.WARNING and lines_wanted() and not bar_wanted() and bool(super().filter(record))


@contextlib.contextmanager
def plain_progress() -> Iterator[None]:
    """While a command runs in quiet mode: progress lines (logger `forecasting.runtime.progress`, at INFO) reach
    stderr as plain lines whenever no live bar is drawn. Verbose mode shows them through Prefect's handler."""
    if verbose():
        yield
        return
    logger = logging.getLogger(PROGRESS_LOGGER)
    handler = _PlainProgress()
    raised = logger.getEffectiveLevel() > logging.INFO
    if raised:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        if raised and logger.level == logging.INFO:
            logger.setLevel(logging.NOTSET)


def with_plain_progress(call: Callable[[], T]) -> T:
    """`call()` inside `plain_progress()`."""
    with plain_progress():
        return call()


def quiet_prefect_logging() -> None:
    """After prefect is imported: put the quiet filter on every handler of its loggers (not when verbose)."""
    if verbose():
        return
    loggers = [logging.getLogger()] + [
        logger for name, logger in logging.root.manager.loggerDict.items() if name.startswith("prefect") and isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:  # console handlers only: Prefect's API log handler keeps everything
            if isinstance(handler, logging.StreamHandler) and _FILTER not in handler.filters:
                handler.addFilter(_FILTER)


# SQLite reports a refused statement (a table that exists or is missing, a bad column) as an
# OperationalError too; only these of its messages mean the database itself could not be used.
_SQLITE_FAILURES = ("unable to open", "database is locked", "disk i/o error", "database or disk is full", "readonly database", "disk image is malformed", "not a database")


def _connection_failure(error: BaseException) -> bool:
    """Whether an OperationalError means the database could not be reached or used (wait and run again)."""
    if getattr(error, "connection_invalidated", False):
        return True
    orig = getattr(error, "orig", None)
    if isinstance(orig, sqlite3.OperationalError):
        return any(part in str(orig).lower() for part in _SQLITE_FAILURES)
    return True


def error_line(error: BaseException) -> tuple[str, int]:
    """One line and an exit status for an error that is not one of ours."""
    if isinstance(error, sa.exc.OperationalError):
        reason = (str(error.orig).strip().splitlines() or [type(error.orig).__name__])[0]
        if not _connection_failure(error):
            return (
                f"the database refused a statement ({reason}); not a lost connection: check the tables the config "
                "names (set FORECASTING_DEBUG=1 for the traceback)"
            ), 1
        return (
            f"the database stopped answering ({reason}); the run stopped without leaving partial results: "
            "run it again when the database is back"
        ), 1
    if isinstance(error, OSError) and error.filename:
        return f"cannot use {error.filename}: {error.strerror or error} (check storage.root and the paths in the config)", 1
    if type(error).__module__.startswith("pyarrow"):
        first = (str(error).strip().splitlines() or [""])[0]
        return f"unreadable Parquet data ({first}); check the files under storage.root, or run with --full-refresh", 1
    return f"{type(error).__name__}: {error} (set FORECASTING_DEBUG=1 for the traceback)", 1


def freeze_at_exit() -> None:
    """At exit, after every other exit handler (this one is registered first), freeze all objects so
    that the interpreter's final garbage collection skips what TensorFlow and Prefect leave behind
    (that collection took 3-5 s of every command that imported TensorFlow)."""
    atexit.register(gc.freeze)
