"""Credentials never leak: a database password stays out of output, logs, run records and files."""

import pytest

from tests.support.data import synthetic_frame, write_config
from tests.support.postgres_server import create_database
from tests.support.cli import forecasting

PASSWORD = "Pw-s3cret-9431"


@pytest.mark.slow
@pytest.mark.postgres
def test_database_password_never_appears_in_outputs(postgres_admin_url, tmp_path):
    # Runs its own ephemeral Prefect server under tmp_path, so Prefect's stored logs are searched too.
    url = create_database(postgres_admin_url).replace("postgresql+psycopg://postgres@", f"postgresql+psycopg://postgres:{PASSWORD}@")
    write_config(tmp_path, "sqlite:///unused.db")
    env = {"FORECASTING_DATABASE_URL": url}
    synthetic_frame().to_csv(tmp_path / "obs.csv", index=False)
    outputs = []
    for args in (["init"], ["load", "obs.csv"], ["run", "--model", "tiny", "--mode", "retrain"], ["models", "list"], ["models", "show", "tiny"]):
        result = forecasting(*args, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(result.stdout + result.stderr)
    assert "postgres:***@" in outputs[2]  # the summary names the database, masked
    assert not [text for text in outputs if PASSWORD in text]
    # Everything written to disk: artifacts, manifests, Parquet, and Prefect's own database of logs and artifacts.
    leaking = [str(path) for path in tmp_path.rglob("*") if path.is_file() and PASSWORD.encode() in path.read_bytes()]
    assert leaking == []
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as connection:
        for table in ("runs", "model_versions", "forecasts"):
            rows = connection.execute(sa.text(f"SELECT * FROM {table}")).fetchall()
            assert rows and PASSWORD not in repr(rows)
