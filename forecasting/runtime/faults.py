"""Fault injection for crash-safety tests: `FORECASTING_KILL_AT=<point>` makes the process kill
itself (SIGKILL, no cleanup) when it reaches that point; `FORECASTING_PAUSE_AT=<point>` makes it
create the file `$FORECASTING_PAUSE_FILE` and sleep `$FORECASTING_PAUSE_SECONDS` there (so a test can
break something meanwhile). Unset, a checkpoint does nothing.

Points (each is killed in tests/flows/test_crash_safety.py, which checks this list against the code):
pull (after each history bucket is written, in a merge or a full rebuild), rebuild-swap (a full
rebuild written aside, not yet swapped in), training (after the first epoch of a retrain,
fine-tune, backtest window or tuning trial), tuning-trial (a tuning trial's state saved, and
uploaded on an object store; the next trial not started), before-sql-write (forecasts staged, the
SQL write not begun), after-sql-write (SQL committed, Parquet not yet written), parquet-write
(after the first partition's temporary file is written, before its rename or upload),
artifact-registration (artifact folder in place, registry row not yet written), artifact-upload
(object store only: the first object of a version uploaded, the others and the manifest not yet).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

KILL_AT_ENV = "FORECASTING_KILL_AT"
PAUSE_AT_ENV = "FORECASTING_PAUSE_AT"


def checkpoint(point: str) -> None:
    if os.environ.get(KILL_AT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(PAUSE_AT_ENV) == point:
        Path(os.environ["FORECASTING_PAUSE_FILE"]).touch()
        time.sleep(float(os.environ.get("FORECASTING_PAUSE_SECONDS", "10")))
