"""What a new user or operator meets: the Prefect server a run needs, clean stdout and quiet stderr,
which database is used, one-line errors, masked secrets, and nothing left behind by a killed run."""

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from forecasting.errors import ConfigError
from forecasting.runtime import console, orchestrator
from tests.support.data import synthetic_frame, write_config
from tests.support.cli import NOISE, assert_one_line_error, cli_subprocess, loaded, one_line, run_cli

LEAKY_URL = "postgresql+psycopg://u:S3cret@Pw0rdX@127.0.0.1:1/db"


# Issue 11.1: the orchestrator's start-up


def test_default_prefect_startup_allowance_is_generous_and_configurable(monkeypatch):
    monkeypatch.delenv(orchestrator.STARTUP_ENV, raising=False)
    assert orchestrator.startup_allowance() >= 300
    monkeypatch.setenv(orchestrator.STARTUP_ENV, "45")
    assert orchestrator.startup_allowance() == 45
    monkeypatch.setenv(orchestrator.STARTUP_ENV, "soon")
    with pytest.raises(ConfigError, match=orchestrator.STARTUP_ENV):
        orchestrator.startup_allowance()


def test_prefect_server_that_does_not_answer_in_time_is_one_clear_line(workdir, capsys, monkeypatch):
    loaded(workdir, capsys)
    monkeypatch.setenv("PREFECT_HOME", str(workdir / ".prefect"))
    monkeypatch.setenv(orchestrator.STARTUP_ENV, "0.001")  # no server answers within a millisecond
    code, out, err = run_cli(capsys, "run", "--model", "tiny", "--mode", "retrain")
    assert code == 1 and out == ""
    one_line(err, "temporary Prefect server did not answer within 0.001 s", orchestrator.STARTUP_ENV, "PREFECT_API_URL")
    with sa.create_engine(f"sqlite:///{workdir / 'db.sqlite'}").connect() as connection:
        status, error = connection.execute(sa.text("SELECT status, error FROM runs")).one()
    assert status == "failed" and "did not answer within" in error


def test_given_prefect_api_url_is_used_without_starting_a_server(monkeypatch, prefect_server):
    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    with orchestrator.prefect_api() as url:
        assert url == prefect_server


def test_temporary_server_starts_while_the_command_imports(workdir):
    """Start-up overlaps: what `while_starting` does (the CLI imports TensorFlow) runs once the server's
    process is up and before the server answers, and a failure there stops the server."""
    seen = []
    server = orchestrator.TemporaryServer(120)
    url = server.start(lambda: seen.append(server.process is not None and server.process.poll() is None))
    try:
        assert seen == [True] and orchestrator.answers(url)
    finally:
        server.stop()

    failing = orchestrator.TemporaryServer(120)

    def fail() -> None:
        raise RuntimeError("import failed")

    with pytest.raises(RuntimeError, match="import failed"):
        failing.start(fail)
    assert failing.process is None  # stopped


def test_given_prefect_api_url_that_does_not_answer_is_waited_for_then_one_clear_line(workdir, capsys, monkeypatch):
    """A server named by PREFECT_API_URL that is still starting must not fail the run at once (it is
    waited for); one that never answers ends the command with one line naming it, and a failed run."""
    loaded(workdir, capsys)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens on the discard port
    monkeypatch.setenv(orchestrator.STARTUP_ENV, "2")
    code, out, err = run_cli(capsys, "run", "--model", "tiny", "--mode", "retrain")
    assert code == 1 and out == ""
    assert "waiting up to 2 s for the Prefect API at http://127.0.0.1:9/api" in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: the Prefect API at http://127.0.0.1:9/api (PREFECT_API_URL) did not answer within 2 s")
    with sa.create_engine(f"sqlite:///{workdir / 'db.sqlite'}").connect() as connection:
        status, error = connection.execute(sa.text("SELECT status, error FROM runs")).one()
    assert status == "failed" and "did not answer within 2 s" in error


# Issue 11.3 and 11.8: stdout is the summary only; stderr is quiet unless --verbose


def test_run_json_is_pure_json_stderr_is_quiet_and_the_given_server_is_used(tmp_path, capsys, monkeypatch, prefect_server):
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("FORECASTING_")]:
        monkeypatch.delenv(name)
    loaded(tmp_path, capsys)
    result = cli_subprocess(tmp_path, "run", "--model", "tiny", "--mode", "retrain", "--json", api_url=prefect_server)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["rows_sql"] == 48 and summary["database"] == f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert "Epoch 1/" in result.stderr  # training progress goes to stderr
    assert not [noise for noise in NOISE if noise in result.stderr], result.stderr[-3000:]
    # The flow ran on the server PREFECT_API_URL named.
    from prefect.client.orchestration import get_client

    with sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}").connect() as connection:
        flow_run_id = connection.execute(sa.text("SELECT flow_run_id FROM runs")).scalar_one()
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(flow_run_id).name
    verbose = cli_subprocess(tmp_path, "--verbose", "run", "--model", "tiny", "--mode", "forecast", api_url=prefect_server)
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert "Finished in state Completed" in verbose.stderr and "absl::InitializeLog" in verbose.stderr


# Issue 11.11: runtime errors are one line


def test_runtime_failure_in_a_flow_is_one_line_without_prefect_tracebacks(tmp_path, capsys, monkeypatch, prefect_server):
    monkeypatch.chdir(tmp_path)
    loaded(tmp_path, capsys)
    result = cli_subprocess(tmp_path, "run", "--model", "tiny", "--mode", "forecast", api_url=prefect_server)
    assert_one_line_error(result, 1, "no champion version yet", f"sqlite:///{tmp_path / 'db.sqlite'}")


def test_storage_root_that_is_a_file_or_not_writable_is_one_line(workdir, capsys, monkeypatch):
    write_config(workdir, "sqlite:///db.sqlite")
    (workdir / "store").write_text("not a folder")
    code, _, err = run_cli(capsys, "init")
    assert code == 2
    one_line(err, f"storage.root: {workdir / 'store'} is a file, not a folder")
    if os.geteuid() == 0:  # root writes through permission bits; sysfs refuses new folders to anyone
        unwritable = Path("/sys/forecasting-store")
    else:
        (workdir / "readonly").mkdir(mode=0o555)
        unwritable = workdir / "readonly" / "store"
    monkeypatch.setenv("FORECASTING_STORAGE_ROOT", str(unwritable))
    code, _, err = run_cli(capsys, "init")
    assert code == 2
    one_line(err, f"storage.root: cannot write to {unwritable}")


def test_unsupported_database_names_the_supported_ones(workdir, capsys, monkeypatch):
    write_config(workdir, "sqlite:///db.sqlite")
    monkeypatch.setenv("FORECASTING_DATABASE_URL", "mysql://job:pw-1234@db.example/forecasts")
    code, _, err = run_cli(capsys, "init")
    assert code == 2
    line = one_line(err, "database.url: mysql databases are not supported", "SQLite", "PostgreSQL")
    assert "pw-1234" not in line and "MySQLdb" not in line


def test_load_of_a_folder_or_a_header_only_file_exits_2(workdir, capsys):
    write_config(workdir, "sqlite:///db.sqlite")
    assert run_cli(capsys, "init")[0] == 0
    (workdir / "data").mkdir()
    code, _, err = run_cli(capsys, "load", "data")
    assert code == 2
    one_line(err, "data: is a folder")
    (workdir / "empty.csv").write_text("series_id,ts,value\n")
    code, out, err = run_cli(capsys, "load", "empty.csv")
    assert code == 2 and "loaded" not in out
    one_line(err, "empty.csv: the file has no rows")


def test_unexpected_errors_become_one_line_naming_the_path():
    import pyarrow as pa

    line, code = console.error_line(PermissionError(13, "Permission denied", "/srv/store/locks/m.lock"))
    assert code == 1 and "/srv/store/locks/m.lock" in line and "Permission denied" in line and "PermissionError" not in line
    line, code = console.error_line(pa.lib.ArrowInvalid("Parquet magic bytes not found in footer.\nEither the file is corrupted"))
    assert code == 1 and line.startswith("unreadable Parquet data (Parquet magic bytes not found") and "\n" not in line


# Issue 11.4: deployments --check and the output path


def test_deployments_file_is_relative_to_the_config_and_missing_is_said(workdir, capsys):
    folder = workdir / "project"
    folder.mkdir()
    config = write_config(folder, "sqlite:///db.sqlite")
    code, _, err = run_cli(capsys, "--config", str(config), "deployments", "--check")
    assert code == 2
    one_line(err, f"{folder / 'deployments' / 'prefect.yaml'} is missing")
    code, out, _ = run_cli(capsys, "--config", str(config), "deployments")
    assert code == 0 and (folder / "deployments" / "prefect.yaml").is_file() and not (workdir / "deployments").exists()
    assert run_cli(capsys, "--config", str(config), "deployments", "--check")[0] == 0
    assert run_cli(capsys, "--config", str(config), "deployments", "--output", "other.yaml")[0] == 0
    assert (folder / "other.yaml").is_file()


# Issue 16: object-storage URLs as the storage root (11.5 refused them)

NO_SERVER_DB = "postgresql+psycopg://job@127.0.0.1:1/forecasts"  # never reached: storage is checked first


def test_file_url_root_is_a_local_folder(workdir, capsys, monkeypatch):
    store = workdir / "elsewhere" / "store"
    (workdir / "forecasting.toml").write_text(f'[storage]\nroot = "file://{store}"\n[database]\nurl = "sqlite:///db.sqlite"\n')
    code, out, err = run_cli(capsys, "init")
    assert code == 0, err
    assert f"storage at {store}" in out and (store / "models").is_dir() and (store / "forecasts").is_dir()
    assert not [p for p in workdir.iterdir() if p.name.endswith(":")]


@pytest.mark.parametrize(
    "root, fragment",
    [
        ("ftp://host/forecasting", "ftp:// is not supported"),
        ("s3://", "names no bucket"),
        ("s3://AKIAEXAMPLE:wJalrSECRET@bucket/prefix", "holds credentials"),
        ("file://server/share", "not a local file URL"),
    ],
)
def test_malformed_storage_url_exits_2(workdir, capsys, monkeypatch, root, fragment):
    (workdir / "forecasting.toml").write_text(f'[storage]\nroot = "{root}"\n[database]\nurl = "{NO_SERVER_DB}"\n')
    code, _, err = run_cli(capsys, "init")
    assert code == 2
    assert "wJalrSECRET" not in one_line(err, "storage.root:", fragment)
    (workdir / "forecasting.toml").write_text(f'[database]\nurl = "{NO_SERVER_DB}"\n')
    monkeypatch.setenv("FORECASTING_STORAGE_ROOT", root)
    code, _, err = run_cli(capsys, "init")
    assert code == 2
    assert "wJalrSECRET" not in one_line(err, "FORECASTING_STORAGE_ROOT:", fragment)
    assert not [p for p in workdir.iterdir() if p.name.endswith(":") or p.name == "s3"]


def test_credentials_in_storage_options_are_refused(workdir, capsys):
    (workdir / "forecasting.toml").write_text(
        '[storage]\nroot = "s3://bucket/prefix"\n[storage.options]\nendpoint_url = "http://127.0.0.1:9000"\n'
        f'key = "AKIAEXAMPLE"\nsecret = "wJalrSECRET"\n[database]\nurl = "{NO_SERVER_DB}"\n'
    )
    code, _, err = run_cli(capsys, "init")
    assert code == 2
    line = one_line(err, "storage.options: key, secret look like credentials", "AWS_ACCESS_KEY_ID")
    assert "wJalrSECRET" not in line and "AKIAEXAMPLE" not in line


def test_sqlite_with_an_object_store_is_refused(workdir, capsys, monkeypatch):
    (workdir / "forecasting.toml").write_text('[database]\nurl = "sqlite:///db.sqlite"\n')
    monkeypatch.setenv("FORECASTING_STORAGE_ROOT", "s3://bucket/prefix")
    code, _, err = run_cli(capsys, "init")
    assert code == 2
    one_line(err, "object store", "SQLite", "PostgreSQL")
    assert not (workdir / "db.sqlite").exists()


def test_unreachable_store_exits_1_before_any_work(workdir, capsys, monkeypatch, s3_root):
    missing = "s3://no-such-bucket-16/forecasting"
    write_config(workdir, NO_SERVER_DB)
    monkeypatch.setenv("FORECASTING_STORAGE_ROOT", missing)
    for command in (["init"], ["run", "--model", "tiny"], ["tune", "--model", "tiny"]):
        code, out, err = run_cli(capsys, *command)
        assert code == 1 and out == ""
        one_line(err, f"storage.root: cannot reach {missing}", "bucket does not exist")


# Issue 11.6: every command touching the database names it


def test_commands_name_the_database_they_use(workdir, capsys):
    write_config(workdir, "sqlite:///db.sqlite")
    database = f"sqlite:///{workdir / 'db.sqlite'}"
    synthetic_frame().to_csv(workdir / "obs.csv", index=False)
    code, _, err = run_cli(capsys, "run", "--model", "tiny")
    assert code == 2
    one_line(err, f"{database} has no forecasting schema")
    assert database in run_cli(capsys, "init")[1]
    code, out, _ = run_cli(capsys, "load", "obs.csv")
    assert code == 0 and database in out
    code, out, _ = run_cli(capsys, "models", "list")
    assert code == 0 and database in out
    code, _, err = run_cli(capsys, "models", "rollback", "tiny")
    assert code == 1 and database in err
    code, _, err = run_cli(capsys, "models", "show", "tiny")
    assert code == 2 and database in err


# Issue 12.8: a password with '@' in it


def test_password_with_an_at_sign_is_masked_whole():
    from forecasting.config.credentials import masked_url, redact

    assert masked_url(LEAKY_URL) == "postgresql+psycopg://u:***@127.0.0.1:1/db"
    assert masked_url("not a url://u:S3cret@Pw0rdX@host/db") == "not a url://u:***@host/db"
    text = redact(f"failed: {LEAKY_URL} (password S3cret@Pw0rdX)", LEAKY_URL)
    assert "S3cret" not in text and "Pw0rdX" not in text and "u:***@127.0.0.1:1/db" in text


def test_cli_error_with_an_at_sign_password_leaks_no_part_of_it(workdir, capsys, monkeypatch):
    write_config(workdir, "sqlite:///unused.db")
    monkeypatch.setenv("FORECASTING_DATABASE_URL", LEAKY_URL)
    code, out, err = run_cli(capsys, "init")
    assert code == 2
    one_line(err, "cannot connect to postgresql+psycopg://u:***@127.0.0.1:1/db")
    assert "S3cret" not in out + err and "Pw0rdX" not in out + err


@pytest.mark.postgres
def test_at_sign_password_connects_and_stays_out_of_outputs_and_run_records(postgres_admin_url, workdir, capsys, monkeypatch):
    from forecasting import steps
    from forecasting.config.settings import load_settings
    from tests.support.postgres_server import create_database

    # The throwaway server trusts local connections, so any password is accepted; it must reach the right host.
    url = create_database(postgres_admin_url).replace("postgresql+psycopg://postgres@", "postgresql+psycopg://postgres:S3cret@Pw0rdX@")
    write_config(workdir, "sqlite:///unused.db")
    synthetic_frame().to_csv(workdir / "obs.csv", index=False)
    monkeypatch.setenv("FORECASTING_DATABASE_URL", url)
    outputs = []
    for args in (["init"], ["load", "obs.csv"], ["models", "list"]):
        code, out, err = run_cli(capsys, *args)
        assert code == 0, err
        outputs.append(out + err)
    assert "postgres:***@127.0.0.1" in outputs[1]
    settings = load_settings()
    run_id = steps.start_run(settings, "tiny", "retrain")
    steps.fail_run(settings, run_id, RuntimeError(f"could not reach {url}"))
    with steps.open_engine(settings).connect() as connection:
        error = connection.execute(sa.text("SELECT error FROM runs")).scalar_one()
    assert "postgres:***@127.0.0.1" in error
    assert not [text for text in [*outputs, error] if "S3cret" in text or "Pw0rdX" in text]


# Issue 12.9: a killed run leaves no Prefect server and no staged file behind


def _servers_of(prefect_home: Path) -> list[int]:
    """Pids of live processes started with this PREFECT_HOME that serve Prefect's API (uvicorn)."""
    marker = f"PREFECT_HOME={prefect_home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if b"uvicorn" in (entry / "cmdline").read_bytes() and marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_run_leaves_no_prefect_server_and_the_next_run_removes_its_staged_file(tmp_path, capsys, monkeypatch, prefect_server):
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("FORECASTING_")]:
        monkeypatch.delenv(name)
    loaded(tmp_path, capsys)
    # No PREFECT_API_URL: the job starts its own temporary server, then dies by SIGKILL after the SQL write.
    killed = cli_subprocess(tmp_path, "run", "--model", "tiny", "--mode", "retrain", FORECASTING_KILL_AT="after-sql-write")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    staged = sorted(path.name for path in (tmp_path / "store" / "staging").glob("*.parquet"))
    run_id = staged[0].split("-")[0]
    assert staged == [f"{run_id}-pull-state.parquet", f"{run_id}.parquet"]  # the killed run's forecasts and pull state
    deadline = time.monotonic() + 60  # the kernel kills the orphan at once; give a loaded machine time to reap it
    while _servers_of(tmp_path / ".prefect") and time.monotonic() < deadline:
        time.sleep(0.5)
    leftovers = _servers_of(tmp_path / ".prefect")
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    assert leftovers == []
    again = cli_subprocess(tmp_path, "run", "--model", "tiny", "--mode", "forecast", api_url=prefect_server)
    assert again.returncode == 0, again.stderr[-3000:]
    assert list((tmp_path / "store" / "staging").glob("*")) == []
    with sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}").connect() as connection:
        statuses = connection.execute(sa.text("SELECT status FROM runs ORDER BY started_at")).scalars().all()
    assert statuses == ["abandoned", "completed"]
