"""The Prefect API a CLI command's flow talks to: `$PREFECT_API_URL` when set, else a temporary server
that this process starts as its own child, waits for (`$FORECASTING_PREFECT_STARTUP_SECONDS`, default
600 s) and stops at the end. On Linux the child is killed by the kernel when this process dies, even by
SIGKILL, so a killed job never leaves a server behind. Never imports prefect (the server runs in the child).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import IO, Any

from forecasting.errors import ConfigError, RunError

API_URL_ENV = "PREFECT_API_URL"
STARTUP_ENV = "FORECASTING_PREFECT_STARTUP_SECONDS"
DEFAULT_STARTUP_SECONDS = 600.0
# Set in the server's environment: names the job that owns it (tests find a leftover server by it).
OWNER_ENV = "FORECASTING_PREFECT_SERVER_OWNER"
# Set by `forecasting serve` to its pid: the flow runs it starts (its children) die with it.
SERVE_PID_ENV = "FORECASTING_SERVE_PID"
_PORT_IN_USE_EXIT = 3  # uvicorn's exit status when it cannot bind its port
_PR_SET_PDEATHSIG = 1


def startup_allowance() -> float:
    """Seconds to wait for a temporary Prefect server to answer: $FORECASTING_PREFECT_STARTUP_SECONDS, default 600."""
    text = os.environ.get(STARTUP_ENV, "").strip()
    if not text:
        return DEFAULT_STARTUP_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"{STARTUP_ENV}: must be a positive number of seconds (got {text!r})")
    return value


def _die_with_parent() -> Any:
    """A preexec_fn asking Linux to SIGKILL the child when this process ends; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None

    libc = ctypes.CDLL(None, use_errno=True)  # loaded here, not in the forked child
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def die_with_serve() -> None:
    """In a flow run that `forecasting serve` started (its child, `$FORECASTING_SERVE_PID` its pid): ask
    Linux to SIGKILL this process when serve ends, so a killed serve leaves no run going on alone
    (the run's `runs` row stays `running`, and the next run of the model marks it abandoned). Anywhere
    else (an in-process run, a worker's run, another OS) it does nothing."""
    owner = os.environ.get(SERVE_PID_ENV, "")
    if not owner.isdigit() or not sys.platform.startswith("linux"):
        return
    if os.getppid() == int(owner):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() == int(owner):
            return
    try:
        os.kill(int(owner), 0)
    except ProcessLookupError:  # serve died before (or while) this run started: stop as it would have
        os.kill(os.getpid(), signal.SIGKILL)
    except PermissionError:
        pass


def answers(api_url: str) -> bool:
    """Whether the Prefect API at `api_url` answers its health check."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_for_api(api_url: str, allowance: float) -> str:
    """Wait until the Prefect API at `api_url` ($PREFECT_API_URL) answers (a server still starting, or
    restarting, must not fail a scheduled job); a RunError naming it once `allowance` seconds pass."""
    deadline = time.monotonic() + allowance
    if answers(api_url):
        return api_url
    print(f"waiting up to {allowance:g} s for the Prefect API at {api_url} ({API_URL_ENV})", file=sys.stderr)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        if answers(api_url):
            return api_url
    raise RunError(
        f"the Prefect API at {api_url} ({API_URL_ENV}) did not answer within {allowance:g} s; start it "
        f"(`prefect server start`), fix {API_URL_ENV}, or set {STARTUP_ENV} to wait longer"
    )


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TemporaryServer:
    """A Prefect API server (uvicorn with Prefect's app, no UI) run as a child of this process."""

    def __init__(self, allowance: float, verbose: bool = False) -> None:
        self.allowance = allowance
        self.verbose = verbose
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._log: IO[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def _spawn(self) -> None:
        self.port = _free_port()
        self._log = None if self.verbose else tempfile.TemporaryFile()
        env = {
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",  # what Prefect sets for its own temporary server
            "PREFECT__SERVER_FINAL": "1",
            OWNER_ENV: str(os.getpid()),
        }
        env.pop(API_URL_ENV, None)
        command = [
            sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
            "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=self._log or None, stderr=self._log or None,
            preexec_fn=_die_with_parent(),
        )  # fmt: skip

    def _healthy(self) -> bool:
        return answers(self.api_url)

    def _output_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        lines = [line.strip() for line in self._log.read().decode(errors="replace").splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def start(self, while_starting: Callable[[], None] | None = None) -> str:
        """Start the server and wait until it answers; a RunError saying what to set when it does not.
        `while_starting` runs in this process meanwhile (the server takes seconds to import and start)."""
        self._spawn()
        if while_starting is not None:
            try:
                while_starting()
            except BaseException:
                self.stop()
                raise
        deadline = time.monotonic() + self.allowance
        while True:
            assert self.process is not None
            code = self.process.poll()
            if code == _PORT_IN_USE_EXIT and time.monotonic() < deadline:
                self._spawn()  # another process took the port meanwhile
                continue
            if code is not None:
                tail = self._output_tail()
                self.stop()
                raise RunError(
                    f"the temporary Prefect server exited with status {code} before answering"
                    + (f" ({tail})" if tail else "")
                    + f"; set {API_URL_ENV} to use a running Prefect server (see docs/scheduling.md)"
                )
            if self._healthy():
                return self.api_url
            if time.monotonic() >= deadline:
                self.stop()
                raise RunError(
                    f"the temporary Prefect server did not answer within {self.allowance:g} s; set {STARTUP_ENV} "
                    f"to wait longer, or {API_URL_ENV} to use a running Prefect server"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (terminate, then kill after 10 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


@contextlib.contextmanager
def prefect_api(verbose: bool = False, while_starting: Callable[[], None] | None = None) -> Iterator[str]:
    """The API URL for this command's flows: $PREFECT_API_URL, else a temporary server for the block.
    `while_starting` (say, importing TensorFlow) runs while a temporary server starts, else first."""
    given = os.environ.get(API_URL_ENV, "").strip()
    if given:
        if while_starting is not None:
            while_starting()
        yield wait_for_api(given, startup_allowance())
        return
    server = TemporaryServer(startup_allowance(), verbose=verbose)
    url = server.start(while_starting)
    try:
        yield url
    finally:
        server.stop()
