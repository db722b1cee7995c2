"""Database passwords with special characters (issue 26.2, issue 27.1): read whole unencoded or
percent-encoded, or given apart in FORECASTING_DATABASE_PASSWORD(_FILE); an unreadable URL is one
line and exit 2 without any part of the password; no output, log, run record or Prefect record holds
any part of it. On SQLite-parsing paths and a real PostgreSQL that checks the password (scram)."""

import logging
import os
import uuid

import pytest
import sqlalchemy as sa

from forecasting.cli import main as cli
from forecasting.config.settings import load_settings
from forecasting.errors import ConfigError
from tests.support.data import synthetic_frame, write_config

PASSWORD = "p@ss:w/rd"  # what a new user's PostgreSQL had (issue 27.1)
PIECES = ("p@ss", "w/rd", "p%40ss", "w%2Frd", "ss:w")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """tmp_path as the current folder with a config, and no FORECASTING_* from outside."""
    for name in [n for n in os.environ if n.startswith("FORECASTING_")]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, "sqlite:///unused.db")
    return tmp_path


def run_cli(capsys, *args):
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def leaked(text, password=PASSWORD):
    """The pieces of `password` (whole, encoded, between its special characters) found in `text`."""
    from urllib.parse import quote

    pieces = {password, quote(password, safe=""), *PIECES} if password == PASSWORD else {password, quote(password, safe="")}
    return sorted(piece for piece in pieces if piece in text)


@pytest.mark.parametrize(
    "url, user, password, host, port, database",
    [
        ("postgresql+psycopg://u:x@y:SECRET6@127.0.0.1:55437/db", "u", "x@y:SECRET6", "127.0.0.1", 55437, "db"),
        ("postgresql+psycopg://forecaster:p@ss:w/rd@db.example.com:5432/shop", "forecaster", PASSWORD, "db.example.com", 5432, "shop"),
        ("postgresql+psycopg://forecaster:p%40ss%3Aw%2Frd@db.example.com:5432/shop", "forecaster", PASSWORD, "db.example.com", 5432, "shop"),
        ("postgresql+psycopg://forecaster:wrong@p@ss:w%2Frd@127.0.0.1:5/db", "forecaster", "wrong@p@ss:w/rd", "127.0.0.1", 5, "db"),
        ("postgresql+psycopg://u:a/b@c@[::1]:5432/db", "u", "a/b@c", "::1", 5432, "db"),
        ("postgresql+psycopg://u:100%25?#@h/db", "u", "100%?#", "h", None, "db"),
        ("postgresql+psycopg://h/db?user=a@b", None, None, "h", None, "db"),  # an '@' in the query is not a password
    ],
)
def test_passwords_with_special_characters_are_read_whole(url, user, password, host, port, database):
    from forecasting.config.credentials import masked_url, parse_url

    parsed = parse_url(url)
    assert (parsed.username, parsed.password, parsed.host, parsed.port, parsed.database) == (user, password, host, port, database)
    if password:
        assert masked_url(url) == f"postgresql+psycopg://{user}:***@{'[::1]' if host == '::1' else host}{f':{port}' if port else ''}/{database}"
        assert parse_url(parsed.render_as_string(hide_password=False)).password == password  # the form given to psycopg


@pytest.mark.parametrize(
    "url, part",
    [
        ("postgresql+psycopg://forecaster:SECRETPW/shop", "the port (after the host and ':') is not a number"),  # no '@host'
        ("postgresql+psycopg://forecaster:SECRETPW@db:54x2/shop", "the port (after the host and ':') is not a number"),
        ("postgresql+psycopg//forecaster:SECRETPW@db/shop", "it does not start with a scheme"),
    ],
)
def test_an_unreadable_url_is_one_line_exit_2_without_the_password(workdir, capsys, monkeypatch, url, part):
    monkeypatch.setenv("FORECASTING_DATABASE_URL", url)
    for command in (["models", "list"], ["init"]):
        code, out, err = run_cli(capsys, *command)
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: FORECASTING_DATABASE_URL: the database URL cannot be read: "), err
        assert part in lines[0] and "'@' as %40, ':' as %3A, '/' as %2F" in lines[0] and "FORECASTING_DATABASE_PASSWORD" in lines[0]
        assert "SECRETPW" not in out + err


def test_the_issues_unencoded_passwords_leak_no_fragment(workdir, capsys, monkeypatch):
    # Issue 26.2: `models list` printed "invalid literal for int() ... 'SECRET6@127.0.0.1:55437'", exit 1.
    for url, secret in (
        ("postgresql+psycopg://u:x@y:SECRET6@127.0.0.1:1/db", "SECRET6"),
        ("postgresql+psycopg://forecaster:wrong@p@ss:w%2Frd@127.0.0.1:1/db", "w%2Frd"),
        ("postgresql+psycopg://forecaster:p@ss:w/rd@127.0.0.1:1/shop", "w/rd"),
    ):
        monkeypatch.setenv("FORECASTING_DATABASE_URL", url)
        code, out, err = run_cli(capsys, "models", "list")
        assert code == 2, err
        assert err.strip().splitlines() == [err.strip()] and "cannot connect to postgresql+psycopg://" in err and ":***@127.0.0.1:1/" in err
        assert secret not in out + err and "invalid literal" not in err


def test_a_password_with_special_characters_in_the_config_file_is_refused_without_it(workdir, capsys):
    write_config(workdir, "postgresql+psycopg://forecaster:p@ss:w/rd@db:5432/shop")
    code, out, err = run_cli(capsys, "init")
    assert code == 2 and "database.url holds a password" in err and not leaked(out + err)


def test_the_password_from_the_environment_or_a_file_completes_the_url(workdir, monkeypatch):
    from forecasting.config.credentials import masked_url, parse_url

    path = write_config(workdir, "postgresql+psycopg://forecaster@db.example.com:5432/shop")
    monkeypatch.setenv("FORECASTING_DATABASE_PASSWORD", PASSWORD)
    url = load_settings(path).database.url
    assert parse_url(url).password == PASSWORD and parse_url(url).username == "forecaster"
    assert masked_url(url) == "postgresql+psycopg://forecaster:***@db.example.com:5432/shop"
    # It replaces a password the URL in the environment holds.
    monkeypatch.setenv("FORECASTING_DATABASE_URL", "postgresql+psycopg://forecaster:old@db.example.com:5432/shop")
    assert parse_url(load_settings(path).database.url).password == PASSWORD
    monkeypatch.delenv("FORECASTING_DATABASE_URL")
    # A file holding it: its trailing newline is not part of it.
    monkeypatch.delenv("FORECASTING_DATABASE_PASSWORD")
    secret = workdir / "db-password"
    secret.write_text(PASSWORD + "\n")
    monkeypatch.setenv("FORECASTING_DATABASE_PASSWORD_FILE", str(secret))
    assert parse_url(load_settings(path).database.url).password == PASSWORD
    # Both, a missing file, an empty file: one clear ConfigError (exit 2) naming the variable, never the password.
    monkeypatch.setenv("FORECASTING_DATABASE_PASSWORD", PASSWORD)
    with pytest.raises(ConfigError, match="FORECASTING_DATABASE_PASSWORD and FORECASTING_DATABASE_PASSWORD_FILE are both set") as both:
        load_settings(path)
    monkeypatch.delenv("FORECASTING_DATABASE_PASSWORD")
    monkeypatch.setenv("FORECASTING_DATABASE_PASSWORD_FILE", str(workdir / "missing"))
    with pytest.raises(ConfigError, match=f"FORECASTING_DATABASE_PASSWORD_FILE: {workdir / 'missing'} is not a file") as missing:
        load_settings(path)
    secret.write_text("\n")
    monkeypatch.setenv("FORECASTING_DATABASE_PASSWORD_FILE", str(secret))
    with pytest.raises(ConfigError, match="is empty") as empty:
        load_settings(path)
    assert not leaked(str(both.value) + str(missing.value) + str(empty.value))
    # SQLite has no password: its URL is left as it is.
    write_config(workdir, "sqlite:///db.sqlite")
    monkeypatch.delenv("FORECASTING_DATABASE_PASSWORD_FILE")
    monkeypatch.setenv("FORECASTING_DATABASE_PASSWORD", PASSWORD)
    assert load_settings(path).database.url == f"sqlite:///{(workdir / 'db.sqlite').resolve()}"


def test_every_form_of_the_password_is_masked_in_texts_errors_and_log_records(workdir, monkeypatch):
    from forecasting.config.credentials import (
        MaskedError,
        mask_log_records,
        masked_error,
        redact,
    )
    from forecasting.errors import RunError

    url = f"postgresql+psycopg://forecaster:{PASSWORD}@127.0.0.1:5432/shop"
    monkeypatch.setenv("FORECASTING_DATABASE_URL", url)
    text = f"failed on {url} with p%40ss%3Aw%2Frd, then w/rd and 'p@ss'"
    assert not leaked(redact(text)) and "forecaster:***@127.0.0.1:5432/shop" in redact(text)
    # From FORECASTING_DATABASE_PASSWORD alone (the URL holds none).
    monkeypatch.setenv("FORECASTING_DATABASE_URL", "postgresql+psycopg://forecaster@127.0.0.1:5432/shop")
    monkeypatch.setenv("FORECASTING_DATABASE_PASSWORD", "Hunter2-secret")
    assert redact("bad Hunter2-secret here") == "bad *** here"
    monkeypatch.setenv("FORECASTING_DATABASE_URL", url)
    monkeypatch.delenv("FORECASTING_DATABASE_PASSWORD")

    # An error leaving a task or flow: the same kind for the CLI, its text masked; a clean one unchanged.
    clean = ValueError("nothing secret")
    assert masked_error(clean) is clean
    masked = masked_error(RunError(f"could not use {url}"))
    assert type(masked) is RunError and masked.exit_code == 1 and not leaked(str(masked))
    other = masked_error(ValueError(f"bad {PASSWORD}"))
    assert isinstance(other, MaskedError) and str(other) == "ValueError: bad ***"

    # Log records: message and traceback (what Prefect's API handler sends), whatever handler formats them.
    mask_log_records()
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    logger = logging.getLogger(f"test.masking.{uuid.uuid4().hex}")
    logger.addHandler(Keep())
    logger.propagate = False
    logger.warning("connecting to %s", url)
    try:
        raise ValueError(f"invalid literal for int() with base 10: '{PASSWORD.split(':')[1]}@127.0.0.1:5432'")
    except ValueError:
        logger.exception("task failed")
    assert len(records) == 2 and "forecaster:***@127.0.0.1" in records[0] and "Traceback" in records[1]
    assert not leaked("\n".join(records)), records


@pytest.fixture
def scram_role(postgres_admin_url):
    """A login role whose password is PASSWORD, checked by scram-sha-256 on TCP (the throwaway server
    trusts everything else); yields a URL template with {password} in it. Needs the server's files:
    a server from FORECASTING_TEST_POSTGRES_URL is skipped."""
    if os.environ.get("FORECASTING_TEST_POSTGRES_URL"):
        pytest.skip("needs to add a pg_hba.conf line to the throwaway server")
    from tests.support.postgres_server import create_database

    role = f"forecaster_{uuid.uuid4().hex[:8]}"
    database_url = create_database(postgres_admin_url)
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text("SET password_encryption = 'scram-sha-256'"))
        connection.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
        connection.execute(sa.text(f"ALTER ROLE \"{role}\" PASSWORD '{PASSWORD}'"))
        connection.execute(sa.text(f'GRANT ALL ON DATABASE "{database_url.rsplit("/", 1)[1]}" TO "{role}"'))
        hba = connection.execute(sa.text("SHOW hba_file")).scalar_one()
        original = open(hba).read()
        with open(hba, "w") as handle:
            handle.write(f"host all {role} 127.0.0.1/32 scram-sha-256\n" + original)
        connection.execute(sa.text("SELECT pg_reload_conf()"))
    with sa.create_engine(database_url, isolation_level="AUTOCOMMIT").connect() as connection:
        connection.execute(sa.text(f'GRANT ALL ON SCHEMA public TO "{role}"'))
    try:
        yield database_url.replace("postgresql+psycopg://postgres@", f"postgresql+psycopg://{role}:{{password}}@")
    finally:
        with open(hba, "w") as handle:
            handle.write(original)
        with admin.connect() as connection:
            connection.execute(sa.text("SELECT pg_reload_conf()"))
        admin.dispose()


@pytest.mark.postgres
def test_a_special_character_password_connects_to_a_real_postgresql_every_way(scram_role, workdir, capsys, monkeypatch):
    from urllib.parse import quote

    from forecasting import steps

    synthetic_frame(n_series=2, length=24).to_csv(workdir / "obs.csv", index=False)
    outputs = []
    # The server checks the password: a wrong one is refused, one line, exit 2, nothing of either password shown.
    monkeypatch.setenv("FORECASTING_DATABASE_URL", scram_role.format(password="wr@ng:pa/ss"))
    code, out, err = run_cli(capsys, "init")
    assert code == 2 and "password authentication failed" in err and len(err.strip().splitlines()) == 1, err
    assert "wr@ng" not in out + err and "pa/ss" not in out + err
    for password_in_url, extra in (
        (PASSWORD, {}),  # unencoded, as psql users write it
        (quote(PASSWORD, safe=""), {}),  # percent-encoded
        (None, {"FORECASTING_DATABASE_PASSWORD": PASSWORD}),  # apart, nothing to encode
        ("stale", {"FORECASTING_DATABASE_PASSWORD_FILE": str(workdir / "pw")}),  # a file; it overrides the URL's
    ):
        (workdir / "pw").write_text(PASSWORD + "\n")
        url = scram_role.format(password=password_in_url) if password_in_url else scram_role.replace(":{password}", "")
        monkeypatch.setenv("FORECASTING_DATABASE_URL", url)
        for name in ("FORECASTING_DATABASE_PASSWORD", "FORECASTING_DATABASE_PASSWORD_FILE"):
            monkeypatch.delenv(name, raising=False)
        for name, value in extra.items():
            monkeypatch.setenv(name, value)
        for command in (["init"], ["load", "obs.csv"], ["models", "list"]):
            code, out, err = run_cli(capsys, *command)
            assert code == 0, err
            outputs.append(out + err)
        assert ":***@127.0.0.1" in outputs[-2]  # load names the database, masked
    # A run's failure recorded in runs.error: the URL's password masked in every form.
    settings = load_settings()
    run_id = steps.start_run(settings, "tiny", "retrain")
    steps.fail_run(settings, run_id, RuntimeError(f"could not reach {url} (p%40ss%3Aw%2Frd; {PASSWORD})"))
    with steps.open_engine(settings).connect() as connection:
        error = connection.execute(sa.text("SELECT error FROM runs WHERE run_id = :r"), {"r": run_id}).scalar_one()
    assert ":***@127.0.0.1" in error
    assert not leaked("\n".join([*outputs, error]))


def test_a_failed_task_and_flow_reach_prefects_records_masked(prefect_server, workdir, monkeypatch):
    """Prefect stores a failed task's and flow's state message and logs (with the traceback) in its
    database: none of them holds the password."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    from flows.tasks import masked_errors, plain_task

    url = f"postgresql+psycopg://forecaster:{PASSWORD}@127.0.0.1:5432/shop"
    monkeypatch.setenv("FORECASTING_DATABASE_URL", url)

    @plain_task
    def failing_task():
        raise ValueError(f"could not use {url}: invalid literal for int() with base 10: 'w/rd@127.0.0.1:5432'")

    @flow(name=f"masking-{uuid.uuid4().hex[:6]}")
    @masked_errors
    def failing_flow():
        failing_task()

    state = failing_flow(return_state=True)
    assert state.is_failed()
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(state.state_details.flow_run_id)
        task_runs = client.read_task_runs()
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run.id])), limit=200)
    task_messages = [run.state.message or "" for run in task_runs if run.flow_run_id == flow_run.id]
    texts = [flow_run.state.message or "", *task_messages, *(log.message for log in logs)]
    assert task_messages and any("Traceback" in log.message or "ValueError" in log.message for log in logs), texts
    assert not leaked("\n".join(texts)), texts


def test_a_flow_process_the_cli_did_not_start_masks_its_log_records(tmp_path):
    """A worker's flow run, or a Dask worker running a task, logs from a process of its own: the flow
    and task code (`forward_library_logs`) masks the password in its log records there too."""
    import subprocess
    import sys

    script = (
        "import logging, os\n"
        "from flows.logs import forward_library_logs\n"
        "logging.basicConfig(format='%(message)s')\n"
        "forward_library_logs()\n"
        "logging.getLogger('worker').warning('pulling from %s', os.environ['FORECASTING_DATABASE_URL'])\n"
        "logging.getLogger('worker').warning('retrying after: invalid literal for int(): %r', 'w/rd@127.0.0.1:5432')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORECASTING_")}
    env["FORECASTING_DATABASE_URL"] = f"postgresql+psycopg://forecaster:{PASSWORD}@127.0.0.1:5432/shop"
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pulling from postgresql+psycopg://forecaster:***@127.0.0.1:5432/shop" in result.stderr
    assert "retrying after" in result.stderr and not leaked(result.stdout + result.stderr), result.stderr
