"""Files: atomic replacement (readers see the old file or the new one, never a partial one), and the
storage root check."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

from forecasting.errors import ConfigError
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


def check_storage_root(root: Path) -> None:
    """Raise `ConfigError` unless `root` is a folder this process can write to (created when missing)."""
    import tempfile

    if root.exists() and not root.is_dir():
        raise ConfigError(f"storage.root: {root} is a file, not a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as error:
        raise ConfigError(f"storage.root: cannot write to {root} ({error.strerror or error})") from None
