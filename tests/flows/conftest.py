"""Fixtures of the flow tests: a `prefect server start` of their own."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.postgres_server import free_port
from tests.support.processes import stop, wait_for

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def prefect_env(tmp_path_factory):
    """A `prefect server start` on a free loopback port with its own PREFECT_HOME and SQLite."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "FORECASTING_"))}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
            "PREFECT_RUNNER_POLL_FREQUENCY": "2",
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        }
    )
    server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    log = open(home / "server.log", "w")
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )

    def healthy():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, 120, "the Prefect server to answer")
        yield env
    finally:
        stop(server)
        log.close()
