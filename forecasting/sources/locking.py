"""One run at a time per model: a PostgreSQL advisory lock, or a file lock beside a SQLite database.

With the storage root on an object store (several machines) only the PostgreSQL lock is used: a
file lock would hold on one machine only, so SQLite with a remote store is refused.

Both are released by the operating system or the server when the holding process dies, so a
killed run never leaves a stale lock behind. A second run waits up to `timeout` seconds, then
fails with a message naming the model.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from forecasting.errors import ConfigError, RunError

POLL_SECONDS = 0.5


def _advisory_key(model_name: str, schema: str | None) -> int:
    # Advisory locks are per database, not per schema: two deployments in one database with their own
    # `database.schema` must not block each other's runs of a model with the same name.
    scope = f"forecasting:schema:{schema}:model:" if schema and schema != "public" else "forecasting:model:"
    digest = hashlib.sha256(f"{scope}{model_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def model_lock(engine: Engine, storage_root: Path, model_name: str, timeout: float) -> Iterator[float]:
    """Hold the model's run lock for the block; yields the seconds spent waiting for it."""
    started = time.monotonic()
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            key = _advisory_key(model_name, connection.execute(sa.text("SELECT current_schema()")).scalar())
            while not connection.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
                _wait_or_fail(started, timeout, model_name)
            connection.commit()
            try:
                yield time.monotonic() - started
            finally:
                try:
                    connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    connection.commit()
                except sa.exc.SQLAlchemyError:
                    pass  # the server or connection is gone, and the session's lock with it
        return
    from forecasting.storage.locations import is_remote

    if is_remote(storage_root):
        raise ConfigError(
            f"storage.root {storage_root} is an object store, shared by several machines, but a SQLite database "
            "has only a local file lock: use PostgreSQL (its advisory lock holds across machines)"
        )
    folder = Path(storage_root) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{model_name}.lock", "a+") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                _wait_or_fail(started, timeout, model_name)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        try:
            yield time.monotonic() - started
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _wait_or_fail(started: float, timeout: float, model_name: str) -> None:
    if time.monotonic() - started >= timeout:
        raise RunError(f"model {model_name!r} is busy: another run held its lock for more than {timeout:g} s; try again later")
    time.sleep(POLL_SECONDS)
