"""Fault injection for crash-safety tests: `FORECASTING_KILL_AT=<point>` makes the process kill
itself (SIGKILL, no cleanup) when it reaches that point. Unset, a checkpoint does nothing.

Points: pull (history merge), training (after the first epoch), after-sql-write, parquet-write
(after the first partition's temporary file is written), artifact-registration (artifact folder
in place, registry row not yet written).
"""

from __future__ import annotations

import os
import signal

KILL_AT_ENV = "FORECASTING_KILL_AT"


def checkpoint(point: str) -> None:
    if os.environ.get(KILL_AT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)
