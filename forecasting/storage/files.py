"""Files: atomic replacement (readers see the old file or the new one, never a partial one), and the
storage root check."""

from __future__ import annotations

import os
import stat
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from forecasting.errors import ConfigError
from forecasting.runtime.faults import checkpoint
from forecasting.storage.locations import check_reachable, failing_clearly_when_full, is_remote, put_file

STAGING = "staging"  # <storage>/staging/<run_id>.parquet: forecasts staged before the writes


def replace_atomically(target: Path, write: Callable[[Path], None], kill_point: str | None = None) -> None:
    """Call `write(temporary)` on a hidden temporary file next to `target`, flush it to disk and
    rename it over `target`. Temporaries a killed writer left beside `target` are removed first
    (callers hold the lock that makes them the only writer). On an object store, which has no
    rename, the file is written on the local disk and uploaded as one object (see `storage.put_file`)."""
    if is_remote(target):
        with tempfile.TemporaryDirectory(prefix="forecasting-put-") as scratch, failing_clearly_when_full(target):
            local = Path(scratch) / target.name
            write(local)
            if kill_point:
                checkpoint(kill_point)
            put_file(local, target)
        return
    target = Path(target)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        with failing_clearly_when_full(target):  # the file at `target` is untouched
            write(temporary)
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
        if kill_point:
            checkpoint(kill_point)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def file_kind(path: Path) -> str:
    """What a path that is not a regular file is, in words."""
    mode = path.stat().st_mode
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):  # fmt: skip
        if test(mode):
            return name
    return "not a regular file"


def output_file(path: Path, where: str, example: str, create_folder: bool = False) -> Path:
    """The local file to write for the output path `path` (named by `where`, such as `--output`): `path`
    itself when it is a regular file or a new name in an existing folder, the target of a symlink to a
    regular file (the link stays). Anything else is a ConfigError (exit 2), so nothing but a regular file
    is ever replaced: a directory, a FIFO, a device, a socket, a dangling symlink, a missing folder (created
    only with `create_folder`, for the job's own default paths; `example`: a file name to suggest).
    An object-store path passes unchanged."""
    if is_remote(path):
        return path
    path = Path(path)
    target = path.resolve() if path.is_symlink() else path
    link = f"{path} is a symlink to {target}, which " if target != path else f"{path} "
    if target.exists():
        if target.is_dir():
            raise ConfigError(f"{where}: {link}is a directory; name the file to write in it (for example {path / example})")
        if not target.is_file():
            raise ConfigError(f"{where}: {link}is {file_kind(target)}, not a regular file; name a new file or an existing regular file")
        return target
    if target != path:
        raise ConfigError(f"{where}: {link}does not exist; name a new file or an existing regular file")
    folder = path.parent
    if create_folder and not folder.exists():
        folder.mkdir(parents=True, exist_ok=True)
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise ConfigError(f"{where}: the folder {folder} of {path.name} {what}; create it first or name a file in an existing folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{where}: cannot write to the folder {folder} (permission denied)")
    return path


def check_storage_root(root: Path, where: str = "storage.root") -> None:
    """Raise `ConfigError` unless `root` is a folder this process can write to (created when missing);
    for an object store, `RunError` unless an object can be written, read and removed under it."""
    if is_remote(root):
        check_reachable(root, where)
        return
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{where}: {root} is a file, not a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as error:
        raise ConfigError(f"{where}: cannot write to {root} ({error.strerror or error})") from None


def check_storage(settings: Any) -> None:
    """`check_storage_root` for the storage root and, when set apart, the forecasts dataset (`storage.forecasts`)."""
    check_storage_root(settings.storage_root)
    if settings.storage.forecasts:
        check_storage_root(settings.forecasts_root, "storage.forecasts")
