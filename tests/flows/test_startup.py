"""Start-up before the first step: the temporary Prefect server's process starts before the command
imports Prefect and TensorFlow, so both imports overlap the server's own start."""

import json
import subprocess
import sys

from tests.support.cli import cli_env, loaded

WATCH_THE_SPAWN = """
import sys
from forecasting.cli import main as cli
from forecasting.runtime import orchestrator
imported_at_spawn = []
spawn = orchestrator.TemporaryServer._spawn

def recording_spawn(self):
    imported_at_spawn.append({name: name in sys.modules for name in ("prefect", "tensorflow")})
    spawn(self)

orchestrator.TemporaryServer._spawn = recording_spawn
code = cli.main(["run", "--model", "tiny", "--mode", "retrain"])
print(json.dumps({"code": code, "at_spawn": imported_at_spawn, "prefect": "prefect" in sys.modules, "tensorflow": "tensorflow" in sys.modules}))
"""


def test_the_temporary_server_starts_before_prefect_and_tensorflow_are_imported(workdir, capsys):
    loaded(workdir, capsys)
    # No server answers within a millisecond: the command stops right after its start-up imports.
    env = cli_env(workdir, FORECASTING_PREFECT_STARTUP_SECONDS="0.001")
    result = subprocess.run([sys.executable, "-c", "import json\n" + WATCH_THE_SPAWN], cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["code"] == 1
    assert seen["at_spawn"] == [{"prefect": False, "tensorflow": False}]
    assert seen["prefect"] and seen["tensorflow"]  # imported while the server was starting


def read_lines(master, process, deadline):
    """(seconds since start, line) of what the process writes to the terminal `master`, until it ends or `deadline`."""
    import os
    import select
    import time

    started, buffer, lines = time.monotonic(), b"", []
    while time.monotonic() < started + deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal's other end closed: the process ended
                break
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                lines.append((time.monotonic() - started, line.decode(errors="replace").strip()))
        elif process.poll() is not None:
            break
    return lines


def test_a_first_line_within_two_seconds_then_each_startup_phase_on_a_terminal(workdir, capsys):
    """Issue 27.8g: on a terminal the command says it is starting before any heavy import (the first line
    within 2 s), then each start-up phase as it begins and ends, TensorFlow's import among them."""
    import os
    import pty
    import time

    loaded(workdir, capsys)
    env = cli_env(workdir, FORECASTING_PREFECT_STARTUP_SECONDS="0.001")  # stops right after the start-up imports
    master, slave = pty.openpty()
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "forecasting", "run", "--model", "tiny"], cwd=workdir, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, start_new_session=True,
    )
    os.close(slave)
    try:
        lines = read_lines(master, process, 300)
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    spawn = time.monotonic() - began
    texts = [text for _, text in lines]
    assert lines and texts[0] == "forecasting: starting: loading libraries", texts
    assert lines[0][0] < 2.0, f"first line after {lines[0][0]:.1f} s"
    assert texts[1].startswith("forecasting: startup: libraries loaded in "), texts
    begin, end = texts.index("forecasting: startup: tensorflow import ..."), [t for t in texts if t.startswith("forecasting: startup: tensorflow import: ")]
    assert end and begin < texts.index(end[0]) and lines[begin][0] > lines[0][0], texts
    assert process.returncode == 1 and spawn < 300


def test_no_startup_lines_where_stderr_is_not_a_terminal(workdir, capsys):
    loaded(workdir, capsys)
    result = subprocess.run([sys.executable, "-m", "forecasting", "models", "list"], cwd=workdir, env=cli_env(workdir), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "starting" not in result.stderr, result.stderr
