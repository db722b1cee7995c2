"""Issue 15: the history store is read once per process while its files are unchanged; what is served
from memory is what a read from the disk gives."""

import numpy as np
import pandas as pd

from forecasting.history import store as history
from forecasting.history import cache as history_cache
from tests.support.data import synthetic_frame


def cold(root):
    history_cache.forget()
    return history.read(root)


def test_reads_after_a_merge_equal_a_cold_read_without_reading_the_files_again(tmp_path, monkeypatch):
    root = tmp_path / "history" / "observations"
    frame = synthetic_frame(n_series=20, length=24)
    history.merge(root, frame.loc[frame.ts < "2021-12-01"])
    reads: list[str] = []
    read_file = history_cache.read_file
    monkeypatch.setattr(history_cache, "read_file", lambda path: reads.append(str(path)) or read_file(path))
    first = history.read(root)
    assert reads == []  # every bucket was kept as the merge wrote it
    history.merge(root, frame.loc[frame.ts >= "2021-12-01"], {"S03": None})  # new rows, S03 replaced whole
    merged = history.read(root)
    again = history.read(root, columns=["series_id", "ts"])
    newer = history.read(root, newer_than=pd.Timestamp("2021-06-01"))
    assert reads == []
    truth = cold(root)
    assert len(reads) == len(history.manifest(root)["buckets"])
    pd.testing.assert_frame_equal(merged, truth)
    pd.testing.assert_frame_equal(again, truth[["series_id", "ts"]])
    pd.testing.assert_frame_equal(newer, truth.loc[truth.ts > "2021-06-01"].reset_index(drop=True))
    assert len(first) == 20 * 23 and merged.equals(merged.sort_values(["series_id", "ts"]).reset_index(drop=True))
    expected = frame.loc[(frame.series_id != "S03") | (frame.ts >= "2021-12-01")].sort_values(["series_id", "ts"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(merged[["series_id", "ts", "value"]].astype({"series_id": object}), expected.astype({"series_id": object}), check_dtype=False)


def test_a_bucket_replaced_by_another_writer_is_read_again(tmp_path):
    root = tmp_path / "history" / "observations"
    history.merge(root, synthetic_frame(n_series=5, length=12))
    before = history.read(root)
    folder = root / history.manifest(root)["generation"]
    bucket = next(iter(folder.glob("bucket=*/part-0.parquet")))
    stored = pd.read_parquet(bucket)
    stored.assign(value=stored["value"] + 1000).to_parquet(bucket, index=False)  # what another process would write
    after = history.read(root)
    changed = after["series_id"].isin(stored["series_id"].unique())
    assert (after.loc[changed, "value"].to_numpy() == before.loc[changed, "value"].to_numpy() + 1000).all()
    assert (after.loc[~changed, "value"].to_numpy() == before.loc[~changed, "value"].to_numpy()).all()


def test_a_read_of_some_series_gives_their_rows_only(tmp_path):
    root = tmp_path / "history" / "observations"
    history.merge(root, synthetic_frame(n_series=6, length=12))
    whole = history.read(root)
    some = history.read(root, columns=["series_id", "ts", "value"], series=["S04", "S01", "missing"])
    expected = whole.loc[whole.series_id.isin(["S01", "S04"]), ["series_id", "ts", "value"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(some, expected)
    assert history.read(root, series=[]).empty


def test_the_store_sorted_a_column_at_a_time_is_sort_by_exactly():
    import pyarrow as pa

    from forecasting.history.cache import sorted_table

    rng = np.random.default_rng(0)
    buckets = []
    for bucket in range(4):
        ids = rng.choice([f"S{i}" for i in range(30)], 200)
        buckets.append(pa.table({
            "series_id": pa.array(ids, pa.large_string()),
            "ts": pa.array(rng.integers(0, 50, 200).astype("datetime64[D]").astype("datetime64[us]")),
            "value": pa.array(np.where(rng.random(200) < 0.1, np.nan, rng.normal(size=200))),
        }))
    expected = pa.concat_tables(buckets).sort_by([("series_id", "ascending"), ("ts", "ascending")]).combine_chunks()
    tables = list(buckets)
    result = sorted_table(tables)
    assert tables == []  # the caller's list let go, so each column's unsorted buffers can be freed
    assert result.schema == expected.schema
    pd.testing.assert_frame_equal(result.to_pandas(), expected.to_pandas(), check_exact=True)
    assert all(column.num_chunks == 1 for column in result.columns)


def test_steps_reading_the_store_at_once_build_it_once(tmp_path, monkeypatch):
    """Review of issue 15: Prefect runs one model's training and forecast steps in threads at once; both
    asking for the store while it was being built read and sorted every bucket twice (twice the peak).
    The reads are slowed so that, without the per-store build lock, the two builds overlap."""
    import threading
    import time

    root = tmp_path / "history" / "observations"
    history.merge(root, synthetic_frame(n_series=20, length=24))
    history_cache.forget()  # the merge's kept buckets gone: a build reads every file
    reads: list[str] = []
    read_file = history_cache.read_file

    def slow_read(path):
        reads.append(str(path))
        time.sleep(0.05)
        return read_file(path)

    monkeypatch.setattr(history_cache, "read_file", slow_read)
    start = threading.Barrier(2)
    results: list[pd.DataFrame] = []

    def step() -> None:
        start.wait(10)
        results.append(history.read(root))

    threads = [threading.Thread(target=step) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 2
    assert len(reads) == len(history.manifest(root)["buckets"])  # each bucket read once, by one build
    pd.testing.assert_frame_equal(results[0], results[1])
    history_cache.forget()
    pd.testing.assert_frame_equal(results[0], history.read(root))
