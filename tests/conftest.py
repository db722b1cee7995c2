"""Shared fixtures: small real data, settings on SQLite or PostgreSQL, a throwaway PostgreSQL server,
and a temporary Prefect server for flow tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.postgres_server import PostgresServer, create_database, find_binaries

POSTGRES_URL_ENV = "FORECASTING_TEST_POSTGRES_URL"

# No network here: keep Prefect's server from trying to send telemetry; quiet TensorFlow's C++ logs.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def synthetic_frame(n_series: int = 8, length: int = 48, seed: int = 0, start: str = "2020-01-01") -> pd.DataFrame:
    """Monthly series with level, trend and yearly seasonality plus noise, in long format."""
    rng = np.random.default_rng(seed)
    parts = []
    ts = pd.date_range(start, periods=length, freq="MS")
    for index in range(n_series):
        level = rng.uniform(50, 500)
        trend = rng.uniform(-1, 2) * np.arange(length)
        season = rng.uniform(5, 40) * np.sin(2 * np.pi * np.arange(length) / 12 + rng.uniform(0, 6))
        values = level + trend + season + rng.normal(0, 3, length)
        parts.append(pd.DataFrame({"series_id": f"S{index:02d}", "ts": ts, "value": values}))
    return pd.concat(parts, ignore_index=True)


def promotion_frame(n_series: int = 8, length: int = 48, ahead: int = 6, seed: int = 0, lift: float = 0.6) -> pd.DataFrame:
    """Monthly series (level, mild seasonality, noise) whose level rises by `lift` of itself in
    promotion months (`promo` = 1, drawn at random, about one month in four), followed by `ahead`
    future rows (value empty, promo known). The last `ahead` observed... are not special: callers
    cut their own origin. Long format: series_id, ts, value, promo."""
    rng = np.random.default_rng(seed)
    parts = []
    ts = pd.date_range("2018-01-01", periods=length + ahead, freq="MS")
    for index in range(n_series):
        level = rng.uniform(50, 500)
        promo = (rng.random(length + ahead) < 0.25).astype("float64")
        season = 1 + 0.1 * np.sin(2 * np.pi * np.arange(length + ahead) / 12 + rng.uniform(0, 6))
        values = level * season * (1 + lift * promo) + rng.normal(0, 0.02 * level, length + ahead)
        values[length:] = np.nan
        parts.append(pd.DataFrame({"series_id": f"P{index:02d}", "ts": ts, "value": values, "promo": promo}))
    return pd.concat(parts, ignore_index=True)


TINY_MODEL = {
    "cell": "gru",
    "lookback": 12,
    "horizon": 6,
    "layers": [{"units": 8, "dropout": 0.1}, {"units": 4}],
    "learning_rate": 0.01,
    "epochs": 4,
    "batch_size": 64,
    "patience": 2,
    "intervals": [80, 95],
    # Pinned to the defaults these tests were written for (the defaults became mae, 0.5 and 15% of epochs).
    "loss": "mse",
    "series_weighting": 0.0,
    "min_epochs": 0,
}


def toml_value(value) -> str:
    """A Python value as an inline TOML value."""
    import json

    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def write_config(directory: Path, database_url: str, model: dict | None = None, source: dict | None = None) -> Path:
    """A forecasting.toml in `directory` with one model `tiny`."""
    import json

    model = dict(TINY_MODEL, **(model or {}))
    lines = [
        "[database]",
        f"url = {json.dumps(database_url)}",
        "[storage]",
        'root = "store"',
        "[source]",
        *(f"{key} = {json.dumps(value)}" for key, value in (source or {"frequency": "MS"}).items()),
        "[models.tiny]",
    ]
    for key, value in model.items():
        lines.append(f"{key} = {toml_value(value)}")
    path = directory / "forecasting.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


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


def pull(settings) -> "PullResult":
    """What a pipeline run does first: pull new source rows into the history store, commit the watermark."""
    from forecasting import steps

    pulled = steps.pull_step(settings, "test-pull")
    steps.commit_pull(settings, "test-pull", pulled)
    return pulled


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


def s3_keys(root: str) -> list[str]:
    """Every object key under an `s3://bucket/prefix` root (through boto3, as an operator would list it)."""
    import boto3

    bucket, _, prefix = root[len("s3://"):].partition("/")
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"][len(prefix) + 1:] for page in pages for item in page.get("Contents", []))


def insert_promotion_rows(engine, frame: pd.DataFrame) -> None:
    """Insert a `promotion_frame` (series_id, ts, value, promo; NaN as NULL) into a source table
    `observations` that has a `promo` column."""
    import sqlalchemy as sa

    rows = [
        {"s": row.series_id, "t": row.ts.to_pydatetime(), "v": None if pd.isna(row.value) else float(row.value),
         "p": None if pd.isna(row.promo) else float(row.promo)}
        for row in frame.itertuples()
    ]
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO observations (series_id, ts, value, promo) VALUES (:s, :t, :v, :p)"), rows)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers for the test tiers (`make check` leaves out postgres, prefect, slow and benchmark):
    every test under tests/flows runs flows or the CLI end to end, and any test that asks for the
    session's Prefect server or PostgreSQL server is marked as needing it."""
    flows = Path(__file__).parent / "flows"
    for item in items:
        if flows in Path(item.path).parents or "prefect_server" in item.fixturenames:
            item.add_marker(pytest.mark.prefect)
        if "postgres_admin_url" in item.fixturenames:
            item.add_marker(pytest.mark.postgres)
