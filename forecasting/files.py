"""Atomic file replacement: readers see the old file or the new one, never a partial one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

from forecasting.faults import checkpoint


def replace_atomically(target: Path, write: Callable[[Path], None], kill_point: str | None = None) -> None:
    """Call `write(temporary)` on a hidden temporary file next to `target`, flush it to disk and
    rename it over `target`. Temporaries a killed writer left beside `target` are removed first
    (callers hold the lock that makes them the only writer)."""
    target = Path(target)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        write(temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        if kill_point:
            checkpoint(kill_point)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
