"""Processes the tests start and kill: a killed run, the processes it left, waiting and stopping."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).parents[2]
RUN = (
    "from flows.forecast_pipeline import forecast_pipeline; import sys; "
    "forecast_pipeline(model='tiny', mode=sys.argv[2], config=sys.argv[1], full_refresh=sys.argv[3] == 'refresh')"
)
# Set in a killed run's environment, inherited by every process it starts: one found after the kill is an orphan.
MARK_ENV = "FORECASTING_TEST_PROCESS_MARK"

def processes_marked(mark: str) -> list[str]:
    """`pid command` of each live process whose environment holds `MARK_ENV=mark`."""
    found = []
    needle = f"{MARK_ENV}={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{entry.name} {command}")
        except OSError:
            continue  # gone meanwhile, or a zombie
    return found


def assert_no_orphans(mark: str, grace: float = 15.0) -> None:
    """No process the killed run started is alive (a child told to die with its parent gets a moment)."""
    deadline = time.monotonic() + grace
    while processes_marked(mark) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_marked(mark) == []


def run_killed(config, api_url, kill_at, mode="retrain", full_refresh=False, code=RUN, arguments=None):
    """Run `code` in a subprocess killed at `kill_at`; returns the completed process and its mark."""
    mark = uuid.uuid4().hex
    env = {**os.environ, "PREFECT_API_URL": api_url, "FORECASTING_KILL_AT": kill_at, "PYTHONPATH": str(ROOT), MARK_ENV: mark}
    arguments = arguments or [config, mode, "refresh" if full_refresh else "incremental"]
    return subprocess.run([sys.executable, "-c", code, *arguments], env=env, capture_output=True, text=True, timeout=300), mark


def wait_for(condition, timeout, what, interval=1.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stop(process, grace=30):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
