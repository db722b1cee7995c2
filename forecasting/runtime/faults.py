"""Fault injection for crash-safety tests: `FORECASTING_KILL_AT=<point>` makes the process kill
itself (SIGKILL, no cleanup) when it reaches that point; `FORECASTING_PAUSE_AT=<point>` makes it
create the file `$FORECASTING_PAUSE_FILE` and sleep `$FORECASTING_PAUSE_SECONDS` there (so a test can
break something meanwhile). Unset, a checkpoint does nothing.

Points: pull (after each history bucket is written, in a merge or a full rebuild), rebuild-swap
(a full rebuild written aside, not yet swapped in), training (after the first epoch), before-sql-write, after-sql-write, parquet-write
(after the first partition's temporary file is written), artifact-registration (artifact folder
in place, registry row not yet written), artifact-upload (object store only: the first object of a
version uploaded, the others and the manifest not yet).
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
