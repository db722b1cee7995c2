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
