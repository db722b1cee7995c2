import pandas as pd
import pyarrow.dataset as ds

from forecasting.store import forecasts_root, read_forecasts, write_forecasts


def forecast_rows(series, origin, run_id, yhat=1.0, model="m", horizon=3):
    origin = pd.Timestamp(origin)
    return pd.DataFrame(
        {
            "model_name": model,
            "model_version": 1,
            "series_id": series,
            "forecast_origin": origin,
            "target_ts": [origin + pd.DateOffset(months=step) for step in range(1, horizon + 1)],
            "step": range(1, horizon + 1),
            "yhat": yhat,
            "yhat_lower_80": yhat - 1,
            "yhat_upper_80": yhat + 1,
            "run_id": run_id,
            "created_at": pd.Timestamp("2026-01-01"),
        }
    )


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
