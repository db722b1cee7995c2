"""The `forecasting` command as a person meets it: in this process or as a subprocess, its one-line errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from forecasting.cli import main as cli
from tests.support.data import synthetic_frame, write_config

NOISE = ("absl::InitializeLog", "cudart_stub", "node_def_util", "cuInit", "Timeout of", "Finished in state", "Traceback")


def forecasting(*args, cwd, env=None, timeout=600, api_url=None):
    """Run the CLI in a subprocess; with `api_url` it uses that Prefect server instead of starting one."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("FORECASTING_", "PREFECT_API_URL"))}
    # A CLI run without `api_url` starts its own ephemeral Prefect server: on a loaded machine its
    # start can take longer than Prefect's 20 s default.
    environment.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    environment.update({"PREFECT_HOME": str(cwd / ".prefect"), **(env or {})})
    if api_url:
        environment["PREFECT_API_URL"] = api_url
    return subprocess.run(
        [sys.executable, "-m", "forecasting", *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout
    )


PROGRESS_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S")  # plain progress lines: stderr is not a terminal


def assert_one_line_error(result, code, *fragments):
    """One line for the error, the last, after any plain progress lines of the work done before it."""
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if not PROGRESS_LINE.match(line)]
    assert len(lines) == 1 and result.stderr.strip().splitlines()[-1] == lines[0], result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def run_cli(capsys, *args):
    """`forecasting ARGS` in this process: (exit status, stdout, stderr)."""
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def cli_env(tmp_path, api_url=None, **extra):
    """The environment of a CLI subprocess: no outside FORECASTING_*, TF_CPP_* or Prefect API."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORECASTING_", "PREFECT_API_URL", "TF_CPP_"))}
    env["PREFECT_HOME"] = str(tmp_path / ".prefect")
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env.update(extra)
    return env


def cli_subprocess(tmp_path, *args, api_url=None, **extra):
    """Output goes to files, not pipes: a server the job leaves behind would hold pipes open."""
    with open(tmp_path / "cli.out", "w+") as out, open(tmp_path / "cli.err", "w+") as err:
        process = subprocess.run(
            [sys.executable, "-m", "forecasting", *args], cwd=tmp_path, env=cli_env(tmp_path, api_url, **extra),
            stdout=out, stderr=err, text=True, timeout=600,
        )  # fmt: skip
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(process.args, process.returncode, out.read(), err.read())


def loaded(tmp_path, capsys, url="sqlite:///db.sqlite"):
    write_config(tmp_path, url)
    synthetic_frame().to_csv(tmp_path / "obs.csv", index=False)
    assert run_cli(capsys, "init")[0] == 0
    assert run_cli(capsys, "load", "obs.csv")[0] == 0


def in_process(monkeypatch, capsys, cwd, *args, env=None) -> subprocess.CompletedProcess:
    """`forecasting ARGS` run in this process from `cwd`, with no FORECASTING_* or Prefect API from
    outside (plus `env`), as a CompletedProcess: what a subprocess gives, without its start-up."""
    for name in [n for n in os.environ if n.startswith("FORECASTING_")] + ["PREFECT_API_URL"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(["forecasting", *args], code, captured.out, captured.err)
