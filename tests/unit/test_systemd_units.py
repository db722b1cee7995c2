"""Issue 27, point 6: the systemd units shipped in deployments/systemd/ parse and agree with each other
(binaries of one virtual environment that has them, the server's port in PREFECT_API_URL, the config
path), their environment file names only variables the job or Prefect reads, and, where
`systemd-analyze` exists, systemd itself verifies them with the paths pointed at this machine."""

import getpass
import grp
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).parents[2]
UNITS = ROOT / "deployments" / "systemd"
VENV_BIN = "/opt/rnn-forecasting/.venv/bin"
CONFIG_FOLDER = "/srv/forecasting"


def parse_unit(path):
    """{section: {key: [values]}} of a unit file (systemd syntax: comments, `Key=value`, keys may repeat)."""
    sections, current = {}, None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{path.name}:{number}: not `Key=value` inside a section: {line!r}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def parse_env(path):
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and key == key.strip() and key.isidentifier(), f"{path.name}: bad line {line!r}"
            pairs[key] = value
    return pairs


def units():
    return {path.name: parse_unit(path) for path in sorted(UNITS.glob("*.service"))}


def test_the_units_parse_and_agree():
    found = units()
    assert sorted(found) == ["forecasting-serve.service", "prefect-server.service", "prefect-worker.service"]
    commands = {}
    for name, unit in found.items():
        assert {"Unit", "Service", "Install"} <= set(unit), name
        (exec_start,) = unit["Service"]["ExecStart"]
        binary, *arguments = exec_start.split()
        assert os.path.dirname(binary) == VENV_BIN, f"{name}: {binary} is not in {VENV_BIN}"
        assert (Path(sys.executable).parent / os.path.basename(binary)).is_file(), f"{name}: no {os.path.basename(binary)} in a venv"
        commands[name] = arguments
        assert unit["Service"]["Restart"] == ["on-failure"] and unit["Install"]["WantedBy"] == ["multi-user.target"]
    server = commands["prefect-server.service"]
    assert server[:2] == ["server", "start"] and "--host" in server and "--port" in server
    host, port = server[server.index("--host") + 1], server[server.index("--port") + 1]
    assert any(v.startswith("PREFECT_HOME=/") for v in found["prefect-server.service"]["Service"]["Environment"])

    env = parse_env(UNITS / "forecasting.env")
    api = urlsplit(env["PREFECT_API_URL"])
    assert (api.hostname, str(api.port), api.path) == (host, port, "/api")
    assert commands["forecasting-serve.service"] == ["--config", env["FORECASTING_CONFIG"], "serve"]
    assert commands["prefect-worker.service"][:3] == ["worker", "start", "--pool"]
    assert commands["prefect-worker.service"][3] == "forecasting"  # forecasting.config.deployments.WORK_POOL
    for name in ("forecasting-serve.service", "prefect-worker.service"):
        service = found[name]["Service"]
        assert service["EnvironmentFile"] == [f"{CONFIG_FOLDER}/forecasting.env"] and service["WorkingDirectory"] == [CONFIG_FOLDER]
        assert "prefect-server.service" in found[name]["Unit"]["After"][0]
    assert os.path.dirname(env["FORECASTING_CONFIG"]) == CONFIG_FOLDER


def test_the_environment_file_names_only_variables_that_are_read():
    from forecasting.config.credentials import DATABASE_PASSWORD_FILE_ENV, DATABASE_URL_ENV
    from forecasting.config.settings import CONFIG_ENV

    known = {"PREFECT_API_URL", CONFIG_ENV, DATABASE_URL_ENV, DATABASE_PASSWORD_FILE_ENV}
    env = parse_env(UNITS / "forecasting.env")
    assert set(env) <= known, set(env) - known
    assert ":" not in urlsplit(env[DATABASE_URL_ENV]).netloc.partition("@")[0], "no password in the shipped URL"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_verifies_the_units(tmp_path):
    """With the binaries, folders and user pointed at this machine, `systemd-analyze verify` accepts every unit."""
    user = getpass.getuser()
    group = grp.getgrgid(os.getgid()).gr_name
    for path in UNITS.iterdir():
        text = path.read_text().replace(VENV_BIN, str(Path(sys.executable).parent)).replace(CONFIG_FOLDER, str(tmp_path))
        text = "\n".join(f"User={user}" if line.startswith("User=") else f"Group={group}" if line.startswith("Group=") else line for line in text.splitlines())
        (tmp_path / path.name).write_text(text + "\n")
    names = [str(tmp_path / name) for name in sorted(units())]
    done = subprocess.run(["systemd-analyze", "verify", *names], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Unknown key" not in done.stderr and "Unknown section" not in done.stderr, done.stderr
