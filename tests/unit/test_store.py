import pandas as pd
import pyarrow.dataset as ds

from forecasting.publishing.forecast_dataset import forecasts_root, read_forecasts, write_forecasts
from tests.support.data import forecast_rows


def test_rewriting_an_origin_replaces_rows_and_keeps_other_series_and_origins(tmp_path):
    first = pd.concat([forecast_rows("a", "2025-12-01", "r1"), forecast_rows("b", "2025-12-01", "r1")])
    assert write_forecasts(tmp_path, first) == 6
    assert write_forecasts(tmp_path, forecast_rows("a", "2025-12-01", "r2", yhat=5.0)) == 3
    write_forecasts(tmp_path, forecast_rows("a", "2026-01-01", "r3"))
    stored = read_forecasts(tmp_path, "m")
    assert len(stored) == 9
    rerun = stored[(stored.series_id == "a") & (stored.forecast_origin == "2025-12-01")]
    assert set(rerun.run_id) == {"r2"} and set(rerun.yhat) == {5.0}
    assert set(stored[stored.series_id == "b"].run_id) == {"r1"}


def test_layout_is_hive_partitioned_without_temporary_files(tmp_path):
    write_forecasts(tmp_path, pd.concat([forecast_rows("a", "2025-12-01", "r"), forecast_rows("a", "2025-12-01", "r", model="other")]))
    write_forecasts(tmp_path, forecast_rows("a", "2025-12-01", "r"))
    root = forecasts_root(tmp_path)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [
        "model_name=m/origin_date=2025-12-01/part-0.parquet",
        "model_name=other/origin_date=2025-12-01/part-0.parquet",
    ]
    dataset = ds.dataset(root, format="parquet", partitioning="hive")
    assert dataset.count_rows(filter=ds.field("model_name") == "other") == 3
    frame = pd.read_parquet(root)
    assert {"model_name", "series_id", "forecast_origin", "target_ts", "step", "yhat", "run_id", "created_at"} <= set(frame.columns)


def test_rows_kept_by_an_upsert_are_those_a_left_anti_join_keeps():
    """Issue 15: the keys compared as one integer each (the columns' codes combined), not a merged frame."""
    import numpy as np

    from forecasting.publishing.forecast_dataset import rows_not_in

    rng = np.random.default_rng(0)
    stamps = pd.date_range("2025-01-01", periods=6, freq="MS")

    def frame(n: int) -> pd.DataFrame:
        keys = pd.DataFrame({"series_id": rng.choice(["a", "b", "c", "dd"], n), "forecast_origin": rng.choice(stamps, n), "target_ts": rng.choice(stamps, n)})
        return keys.drop_duplicates().reset_index(drop=True).assign(yhat=1.0)

    key = ["series_id", "forecast_origin", "target_ts"]
    for existing, rows in [(frame(60), frame(40)), (frame(30), frame(0)), (frame(50), frame(50))]:
        merged = existing.merge(rows[key], on=key, how="left", indicator=True)
        np.testing.assert_array_equal(rows_not_in(existing, rows, key), (merged["_merge"] == "left_only").to_numpy())


def test_an_upsert_leaves_the_written_frame_unchanged(tmp_path):
    rows = pd.concat([forecast_rows("a", "2025-01-01", "r1"), forecast_rows("b", "2025-01-01 06:00", "r1")], ignore_index=True)
    before = rows.copy()
    write_forecasts(tmp_path, rows)
    write_forecasts(tmp_path, rows)
    pd.testing.assert_frame_equal(rows, before)


def test_a_partition_whose_rows_are_all_replaced_is_read_for_its_keys_only(tmp_path, monkeypatch):
    """Issue 15: a forecast-only rerun replaces every stored row of its partition; reading them whole
    (1.8 M rows at 100,000 series) only to drop them cost memory. Rows kept are still read and kept."""
    from forecasting.publishing import forecast_dataset as store

    first = pd.concat([forecast_rows("a", "2025-01-01", "r1"), forecast_rows("b", "2025-01-01", "r1")], ignore_index=True)
    write_forecasts(tmp_path, first)
    reads = []
    read_partition = store._read_partition
    monkeypatch.setattr(store, "_read_partition", lambda path, columns=None: reads.append(columns) or read_partition(path, columns))
    write_forecasts(tmp_path, first.assign(yhat=2.0, run_id="r2"))
    assert reads == [["series_id", "forecast_origin", "target_ts"]]
    reads.clear()
    write_forecasts(tmp_path, forecast_rows("a", "2025-01-01", "r3", yhat=3.0))
    assert reads == [["series_id", "forecast_origin", "target_ts"], None]
    stored = read_forecasts(tmp_path).sort_values(["series_id", "target_ts"])
    assert stored["yhat"].tolist() == [3.0] * 3 + [2.0] * 3


def test_rows_in_key_order_are_written_as_sorting_would_write_them():
    import numpy as np

    from forecasting.publishing.forecast_dataset import is_sorted_by

    rows = pd.concat([forecast_rows(s, o, "r") for s in ("a", "b", "c") for o in ("2025-01-01", "2025-02-01")], ignore_index=True)
    order = ["series_id", "forecast_origin", "target_ts"]
    assert is_sorted_by(rows, order)
    shuffled = rows.sample(frac=1, random_state=0)
    assert not is_sorted_by(shuffled, order)
    assert not is_sorted_by(rows.iloc[np.r_[1, 0, 2 : len(rows)]], order)
    pd.testing.assert_frame_equal(shuffled.sort_values(order).reset_index(drop=True), rows)


def test_rows_kept_are_decided_on_the_full_read_when_the_partition_changed_between_the_two_reads(tmp_path, monkeypatch):
    """The keys are read first and the rows after: a partition that grew in between (another writer) must
    not lose its stored rows (the write used to skip them all when the two reads' lengths differed)."""
    from forecasting.publishing import forecast_dataset as store

    write_forecasts(tmp_path, pd.concat([forecast_rows("a", "2025-01-01", "r1"), forecast_rows("b", "2025-01-01", "r1")], ignore_index=True))
    read_partition = store._read_partition

    def keys_of_an_older_file(path, columns=None):
        frame = read_partition(path, columns)
        return frame.iloc[:-1] if columns is not None else frame  # the key read saw one row less

    monkeypatch.setattr(store, "_read_partition", keys_of_an_older_file)
    write_forecasts(tmp_path, forecast_rows("c", "2025-01-01", "r2"))
    stored = read_forecasts(tmp_path)
    assert sorted(stored["series_id"].value_counts().items()) == [("a", 3), ("b", 3), ("c", 3)]
