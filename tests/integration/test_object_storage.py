"""Issue 16: the storage layer on a real S3 API (moto's server on a loopback port): the Parquet dataset,
the history store and repairs on the bucket, what readers see while a partition is replaced, and the
docs' reader examples (docs/object-storage.md: pandas, pyarrow, DuckDB)."""

import threading

import boto3
import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting.history import store as history
from forecasting.sources.database import create_db_engine
from forecasting.sources.upserts import upsert_frame
from forecasting.publishing.repair import repair_parquet
from forecasting.sources.schema import migrate
from forecasting.storage.locations import is_remote, location
from forecasting.publishing.forecast_dataset import read_forecasts, write_forecasts
from forecasting.sources.tables import FORECAST_KEY
from tests.support.s3 import s3_keys
from tests.support.data import synthetic_frame
from tests.support.data import forecast_rows


def two_origins(yhat=1.0, run_id="r1"):
    return pd.concat(
        [forecast_rows(series, origin, run_id, yhat=yhat, model="tiny") for origin in ("2025-11-01", "2025-12-01") for series in ("a", "b")],
        ignore_index=True,
    )


def test_forecasts_dataset_on_the_bucket_is_hive_partitioned_and_read_back(s3_root):
    root = location(s3_root)
    assert is_remote(root)
    assert write_forecasts(root, two_origins()) == 12
    assert s3_keys(s3_root) == [
        "forecasts/model_name=tiny/origin_date=2025-11-01/part-0.parquet",
        "forecasts/model_name=tiny/origin_date=2025-12-01/part-0.parquet",
    ]
    write_forecasts(root, forecast_rows("a", "2025-12-01", "r2", yhat=5.0, model="tiny"))  # an upsert of one series
    stored = read_forecasts(root, "tiny")
    assert len(stored) == 12 and sorted(stored.loc[stored.series_id == "a"].yhat.unique()) == [1.0, 5.0]
    assert len(s3_keys(s3_root)) == 2  # replaced in place: no temporary objects


def test_a_reader_sees_the_old_partition_or_the_new_one_never_half(s3_root, tmp_path, monkeypatch):
    root = location(s3_root)
    write_forecasts(root, two_origins(yhat=1.0))
    assert len(s3_keys(s3_root)) == 2
    monkeypatch.setenv("FORECASTING_PAUSE_AT", "parquet-write")
    monkeypatch.setenv("FORECASTING_PAUSE_FILE", str(tmp_path / "paused"))
    monkeypatch.setenv("FORECASTING_PAUSE_SECONDS", "2")
    writer = threading.Thread(target=write_forecasts, args=(root, two_origins(yhat=2.0, run_id="r2")))
    writer.start()
    while writer.is_alive() and not (tmp_path / "paused").exists():
        writer.join(0.05)
    during = read_forecasts(root, "tiny")  # the new partition is complete locally, not yet put
    writer.join()
    assert len(during) == 12 and set(during.yhat) == {1.0}
    after = read_forecasts(root, "tiny")
    assert len(after) == 12 and set(after.yhat) == {2.0}


@pytest.mark.slow
def test_history_store_on_the_bucket_merges_rebuilds_and_reads_like_a_local_one(s3_root, tmp_path):
    remote = history.history_root(location(s3_root), "observations")
    local = history.history_root(tmp_path, "observations")
    frame = synthetic_frame()
    for root in (remote, local):
        history.merge(root, frame.loc[frame.ts < "2023-01-01"])
        history.merge(root, frame.loc[frame.ts >= "2023-01-01"])
    assert history.status(remote) == "complete"
    pd.testing.assert_frame_equal(history.read(remote), history.read(local))
    pd.testing.assert_frame_equal(history.read(remote, newer_than=pd.Timestamp("2023-06-01")), history.read(local, newer_than=pd.Timestamp("2023-06-01")))
    first = history.manifest(remote)["generation"]
    with history.Rebuild(remote) as rebuild:
        rebuild.merge(frame)
        rebuild.commit()
    second = history.manifest(remote)["generation"]
    keys = s3_keys(s3_root)
    assert {k.split("/")[2] for k in keys if "/g-" in k} == {first, second}  # the previous generation stays for readers
    assert all(k.endswith("part-0.parquet") or k.endswith("manifest.json") for k in keys)
    pd.testing.assert_frame_equal(history.read(remote), history.read(local))
    history.clear(remote)
    assert s3_keys(s3_root) == [] and history.status(remote) == "missing"


def test_repair_rebuilds_a_partition_deleted_from_the_bucket(s3_root, tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    frame = two_origins()
    with engine.begin() as connection:
        upsert_frame(connection, sa.Table("forecasts", sa.MetaData(), autoload_with=connection), frame, key=FORECAST_KEY)
    root = location(s3_root)
    write_forecasts(root, frame)
    bucket, _, prefix = s3_root[len("s3://"):].partition("/")
    boto3.client("s3").delete_object(Bucket=bucket, Key=f"{prefix}/forecasts/model_name=tiny/origin_date=2025-11-01/part-0.parquet")
    report = repair_parquet(engine, root, "tiny", [80])
    assert report.fixed == {"2025-11-01": "missing"}
    assert len(read_forecasts(root, "tiny")) == 12


@pytest.fixture
def dataset_on_s3(s3_root):
    write_forecasts(location(s3_root), two_origins())
    return s3_root


def test_readme_pandas_and_pyarrow_examples(dataset_on_s3):
    root = dataset_on_s3
    # docs/object-storage.md, "Reading the forecasts" (credentials and endpoint from AWS_*).
    frame = pd.read_parquet(f"{root}/forecasts", filters=[("model_name", "=", "tiny")])
    assert len(frame) == 12 and set(frame.model_name.astype(str)) == {"tiny"}

    import pyarrow.dataset as ds
    import s3fs

    dataset = ds.dataset(f"{root.removeprefix('s3://')}/forecasts", filesystem=s3fs.S3FileSystem(), partitioning="hive")
    table = dataset.to_table(filter=ds.field("origin_date") == "2025-12-01")
    assert table.num_rows == 6


def test_readme_duckdb_example(dataset_on_s3):
    root = dataset_on_s3
    import duckdb
    import s3fs

    connection = duckdb.connect()
    connection.register_filesystem(s3fs.S3FileSystem())
    rows = connection.sql(
        f"SELECT model_name, origin_date, count(*) AS n FROM read_parquet('{root}/forecasts/**/*.parquet', hive_partitioning = true) "
        "GROUP BY ALL ORDER BY origin_date"
    ).fetchall()
    assert [(model, str(origin), n) for model, origin, n in rows] == [("tiny", "2025-11-01", 6), ("tiny", "2025-12-01", 6)]


@pytest.mark.postgres
def test_lock_on_an_object_store_is_the_postgresql_advisory_lock_never_a_file(s3_root, postgres_admin_url, tmp_path):
    from forecasting.errors import ConfigError
    from forecasting.sources.locking import model_lock
    from tests.support.postgres_server import create_database

    root = location(s3_root)
    engine = create_db_engine(create_database(postgres_admin_url))
    with model_lock(engine, root, "tiny", timeout=5):
        with engine.connect() as connection:
            held = connection.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar()
        assert held == 1
    assert s3_keys(s3_root) == []  # no lock object, no lock file
    sqlite = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with pytest.raises(ConfigError, match="object store.*SQLite.*PostgreSQL"):
        with model_lock(sqlite, root, "tiny", timeout=5):
            pass
