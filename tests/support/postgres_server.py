"""A throwaway PostgreSQL server for tests: initdb + pg_ctl in a temp dir on a free loopback port."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path


def find_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH first, then Debian's /usr/lib/postgresql/*/bin."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """Start with `start()`, stop with `stop()`; `url(database)` gives a SQLAlchemy URL."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.directory = Path(tempfile.mkdtemp(prefix="forecasting-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.user = "postgres"
        # PostgreSQL refuses to run as root: run it as the system's postgres user then.
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.directory, account.pw_uid, account.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, capture_output=True, text=True)

    def start(self) -> None:
        self._run(str(self.binaries / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8", "--no-sync")
        self.start_server()

    def start_server(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-l", str(self.directory / "server.log"), "-o", options, "-w", "-t", "60", "start")

    def stop_server(self) -> None:
        """Stop the server, keeping its data (for fault tests); `start_server` brings it back."""
        self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        try:
            self.stop_server()
        except subprocess.CalledProcessError:
            pass  # already stopped
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"


def create_database(admin_url: str) -> str:
    """Create a fresh database on the server behind `admin_url`; returns its SQLAlchemy URL."""
    import sqlalchemy as sa

    name = f"test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


@contextlib.contextmanager
def throwaway_database() -> Iterator[str]:
    """The URL of a fresh database on a throwaway server, stopped after the block (the benchmarks'
    default without --url); exits with a message when no PostgreSQL binaries are installed."""
    binaries = find_binaries()
    if binaries is None:
        raise SystemExit("no PostgreSQL binaries found; pass --url")
    server = PostgresServer(binaries)
    server.start()
    try:
        yield create_database(server.url())
    finally:
        server.stop()
