"""A quiet CLI whose stderr is not a terminal (cron, CI logs) still shows the plain progress lines, and
nothing of Prefect's informational chatter."""

import os
import re
import subprocess
import sys

from tests.support.cli import NOISE, cli_env, loaded


def cli_piped(tmp_path, *args, api_url=None):
    """`python -m forecasting ARGS` with stdout and stderr pipes (no temporary server is left to hold them: the API is given)."""
    return subprocess.run(
        [sys.executable, "-m", "forecasting", *args], cwd=tmp_path, env=cli_env(tmp_path, api_url),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600,
    )  # fmt: skip


def test_a_quiet_run_with_stderr_a_pipe_shows_plain_progress_lines(tmp_path, capsys, monkeypatch, prefect_server):
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("FORECASTING_")]:
        monkeypatch.delenv(name)
    loaded(tmp_path, capsys)
    result = cli_piped(tmp_path, "run", "--model", "tiny", "--mode", "retrain", "--json", api_url=prefect_server)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stderr.splitlines()

    def shown(pattern):
        return [line for line in lines if re.search(pattern, line)]

    # Plain lines with a date and time, for every long part of the run.
    assert shown(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d pull: read whole source table: (started|done)")
    assert shown(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d train epochs: started, \d+ batches to go$")
    assert shown(r" train epochs: done, \d+/\d+ batches in ")
    assert shown(r" forecast: done, 8/8 series in ") and shown(r" sql write forecasts: done, 48/48 rows in ")
    assert not [noise for noise in NOISE if noise in result.stderr], result.stderr[-3000:]
    assert not shown(r"\| INFO +\|"), result.stderr[-3000:]  # nothing through Prefect's console handler at INFO
    assert len(shown(r" sql write forecasts: done")) == 1  # each line once
    assert result.stdout.startswith("{")

    # --no-progress changes nothing here (no bar either way); a command without a flow shows its progress too.
    load = cli_piped(tmp_path, "--no-progress", "load", "obs.csv")
    assert load.returncode == 0, load.stderr
    assert re.search(r"sql write observations: done, 384/384 rows in ", load.stderr), load.stderr


def test_progress_none_silences_the_plain_lines_of_a_piped_cli(tmp_path):
    """Cron mails any output: FORECASTING_PROGRESS=none keeps the progress lines off stderr; `off` only
    switches the live bar off (the lines still show without one)."""
    from tests.support.data import synthetic_frame, write_config

    write_config(tmp_path, "sqlite:///db.sqlite")
    synthetic_frame().to_csv(tmp_path / "obs.csv", index=False)

    def load(progress):
        return subprocess.run(
            [sys.executable, "-m", "forecasting", "load", "obs.csv"], cwd=tmp_path, env=cli_env(tmp_path, FORECASTING_PROGRESS=progress),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600,
        )  # fmt: skip

    assert subprocess.run([sys.executable, "-m", "forecasting", "init"], cwd=tmp_path, env=cli_env(tmp_path), capture_output=True).returncode == 0
    shown = load("off")
    assert shown.returncode == 0 and "sql write observations: done, 384/384 rows in " in shown.stderr, shown.stderr
    silent = load("none")
    assert silent.returncode == 0, silent.stderr
    assert silent.stderr == "" and "384" in silent.stdout, (silent.stdout, silent.stderr)
