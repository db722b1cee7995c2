"""The library's progress and phase lines (loggers `forecasting.runtime.progress` and `forecasting.runtime.phases`) in
Prefect's logs: within a flow or task run they go to Prefect's API like the run logger's lines, at INFO.
Outside a run (a CLI command before its flow starts) they are not sent, so Prefect never warns about
logs without a flow run."""

from __future__ import annotations

import logging

from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler

from forecasting.config.credentials import mask_log_records

LIBRARY_LOGGERS = ("forecasting.progress", "forecasting.phases")


class _InRun(logging.Filter):
    """Passes records logged inside a flow or task run (Prefect's API handler needs one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return FlowRunContext.get() is not None or TaskRunContext.get() is not None


class LibraryLogHandler(APILogHandler):
    """Prefect's API log handler for the library's loggers, run records only."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(_InRun())


def forward_library_logs() -> None:
    """Send the library's progress and phase lines to Prefect's API from flow and task runs, and mask the
    database password in every log record of this process (a worker's or a Dask worker's too; idempotent)."""
    mask_log_records()
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        if not any(isinstance(handler, LibraryLogHandler) for handler in logger.handlers):
            logger.addHandler(LibraryLogHandler())
