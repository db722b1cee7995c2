"""Shared fixtures: small real data, settings on SQLite or PostgreSQL, a throwaway PostgreSQL server,
and a temporary Prefect server for flow tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres_server import PostgresServer, create_database, find_binaries
from tests.support.data import write_config

POSTGRES_URL_ENV = "FORECASTING_TEST_POSTGRES_URL"

# No network here: keep Prefect's server from trying to send telemetry; quiet TensorFlow's C++ logs.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A PostgreSQL server: $FORECASTING_TEST_POSTGRES_URL, or a throwaway one started here."""
    if os.environ.get(POSTGRES_URL_ENV):
        yield os.environ[POSTGRES_URL_ENV]
        return
    binaries = find_binaries()
    if binaries is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but no PostgreSQL binaries (initdb, pg_ctl) were found; install postgresql")
        pytest.skip("no PostgreSQL binaries found and FORECASTING_TEST_POSTGRES_URL is unset")
    server = PostgresServer(binaries)
    server.start()
    try:
        yield server.url()
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on SQLite and (marked `postgres`) on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return create_database(request.getfixturevalue("postgres_admin_url"))


@pytest.fixture
def settings_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Build Settings from a config written into tmp_path (env overrides cleared)."""
    from forecasting.config.settings import load_settings

    for name in ("FORECASTING_DATABASE_URL", "FORECASTING_STORAGE_ROOT", "FORECASTING_CONFIG"):
        monkeypatch.delenv(name, raising=False)

    def build(database_url: str, **kwargs):
        path = write_config(tmp_path, database_url, **kwargs)
        return load_settings(path), path

    return build


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """A temporary Prefect server with its own database for flow tests; yields its API URL
    (subprocesses given PREFECT_API_URL use it instead of starting their own)."""
    import prefect.settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield prefect.settings.PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API served locally (moto's server mode on a loopback port), with the AWS_* variables
    that point boto3 and s3fs at it set for this process and its children; yields its URL."""
    import logging

    from moto.server import ThreadedMotoServer

    # Its request log would go to whatever handlers other tests configured (closed capture streams among them).
    logging.getLogger("werkzeug").disabled = True
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    names = {
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        yield endpoint
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()


@pytest.fixture
def s3_root(s3_endpoint: str) -> str:
    """An empty bucket on the local S3 server; yields `s3://<bucket>/forecasting`."""
    import uuid

    import boto3

    bucket = f"test-{uuid.uuid4().hex[:16]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/forecasting"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """tmp_path as the current folder, with no FORECASTING_* or PREFECT_API_URL from outside."""
    for name in [n for n in os.environ if n.startswith("FORECASTING_")] + ["PREFECT_API_URL"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.hookimpl(tryfirst=True)  # before xdist reads the `xdist_group` marks added here
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers for the test tiers (`make check` leaves out postgres, prefect, slow and benchmark):
    every test under tests/flows runs flows or the CLI end to end, and any test that asks for the
    session's Prefect server or PostgreSQL server is marked as needing it.

    The suite runs with `--dist loadgroup`: tests are spread over the workers one by one, except
    the tests of a module that share a module-scoped fixture (a model trained once, a Prefect
    server), which stay on one worker so that fixture is built once."""
    flows = Path(__file__).parent / "flows"
    for item in items:
        if flows in Path(item.path).parents or "prefect_server" in item.fixturenames:
            item.add_marker(pytest.mark.prefect)
        if "postgres_admin_url" in item.fixturenames:
            item.add_marker(pytest.mark.postgres)
        definitions = getattr(item, "_fixtureinfo", None)
        if definitions and any(d.scope == "module" for defs in definitions.name2fixturedefs.values() for d in defs):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
