"""Speed and scale of the whole job: `load`, a retrain and a forecast-only run of N synthetic series,
each through the real `forecasting` command, with the time of each phase and the peak memory.

    .venv/bin/python -m benchmarks.scale --series 1000 [--length 120] [--epochs 2] [--units 16]
        [--backend sqlite|postgres] [--url URL] [--workdir DIR] [--commands load,retrain,forecast,quick]

`--workdir DIR` keeps the data, database and store in DIR (a SQLite database there is reused by a later
call: `--commands forecast` then times a forecast-only run on what an earlier call loaded and trained);
`--commands` picks what runs (default all: `load`, `retrain`, `forecast`, `quick` = `models list` and
`deployments --check`; `init` runs whenever `load` does).

The series are monthly, `--length` months each, generated reproducibly (`--seed`): a level drawn
per series, a linear trend, a multiplicative yearly season of random amplitude and phase, and noise.
The config is a one-layer GRU(`--units`) trained for `--epochs` epochs (no early stopping before
them), lookback 24, horizon 18, batch 1024, one member, refit. Each command runs in its own process
with `FORECASTING_PHASES_FILE` set, so the job appends one JSON line per phase (`forecasting.runtime.phases`).

Prints one JSON line per command: wall seconds, peak RSS of the command's largest process (the
job or the temporary Prefect server, from `wait4`), `startup` (launch to the first phase: imports,
config, schema check, the Prefect server, the flow's start) and every phase (`pull`, `prepare`,
`train epochs`, `train other` = the training step minus its epochs and its data preparation,
`predict`, `forecast other`, `sql write`, `parquet write`, `parquet repair`, `commit pull`), then
`shutdown` (after the last step: run records, Prefect's artifacts and log drain, stopping the
server, exit) and `other` (between the steps: Prefect's task runs, the mode decision, run records).
Costs per series are in microseconds per series; seconds are rounded to 0.01. `cpu_seconds` holds
the CPU seconds (user + system, all threads) of the same step phases in the job's process and the
`total` of the command's process tree, with `cpu_us_per_series`: a busy machine stretches wall time
far more than CPU time, so runs made at different loads compare better on these; `load_average` is
the one-minute load when the command ended.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def synthetic_series(series: int, length: int, seed: int = 0) -> pd.DataFrame:
    """`series` monthly series of `length` months ending 2025-12: level, trend, yearly season, noise (all positive)."""
    rng = np.random.default_rng(seed)
    months = pd.date_range(end="2025-12-01", periods=length, freq="MS")
    t = np.arange(length)[np.newaxis, :]
    level = rng.lognormal(mean=7.0, sigma=1.0, size=(series, 1))
    trend = rng.normal(0.0, 0.004, size=(series, 1))
    amplitude = rng.uniform(0.0, 0.3, size=(series, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(series, 1))
    noise = rng.normal(0.0, rng.uniform(0.02, 0.15, size=(series, 1)), size=(series, length))
    values = level * (1 + trend * t) * (1 + amplitude * np.sin(2 * np.pi * t / 12 + phase)) * (1 + noise)
    values = np.maximum(values, 1.0)
    width = len(str(series - 1))
    return pd.DataFrame(
        {
            "series_id": np.repeat([f"S{i:0{width}d}" for i in range(series)], length),
            "ts": np.tile(months.strftime("%Y-%m-%d").to_numpy(), series),
            "value": np.round(values.ravel(), 3),
        }
    )


def write_config(folder: Path, url: str, epochs: int, units: int) -> Path:
    """A config for the benchmark's model `bench` (database `url`, storage under `folder`)."""
    path = folder / "forecasting.toml"
    path.write_text(
        f"""
[database]
url = "{url}"
[storage]
root = "store"
[source]
frequency = "MS"
[models.bench]
cell = "gru"
lookback = 24
horizon = 18
layers = [{{ units = {units} }}]
learning_rate = 3e-3
loss = "mae"
epochs = {epochs}
min_epochs = {epochs}
patience = {epochs}
batch_size = 1024
seed = 42
deseasonalize = true
series_weighting = 0.5
"""
    )
    return path


def command(config: Path, args: list[str], phases_file: Path) -> dict:
    """Run `forecasting --config config ARGS` in a fresh process; wall seconds, peak RSS and its phases."""
    phases_file.unlink(missing_ok=True)
    env = {**os.environ, "FORECASTING_PHASES_FILE": str(phases_file), "PYTHONUNBUFFERED": "1"}
    launched = time.time()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "forecasting", "--config", str(config), *args], env=env, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    # wait4's usage covers the child and every descendant it waited for (the temporary Prefect server).
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    out, err = process.stdout.read().decode(), process.stderr.read().decode()
    if process.returncode != 0:
        raise SystemExit(f"forecasting {' '.join(args)} failed ({process.returncode}): {err.strip()[-2000:]}")
    lines = [json.loads(line) for line in phases_file.read_text().splitlines()] if phases_file.exists() else []
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "cpu": cpu, "peak_rss_mib": usage.ru_maxrss / 1024, "launched": launched, "phases": lines, "stdout": out}


def _totals(lines: list[dict], key: str) -> dict[str, float]:
    """`key` (seconds or cpu_seconds) summed per phase name."""
    totals: dict[str, float] = {}
    for line in lines:
        totals[line["phase"]] = totals.get(line["phase"], 0.0) + line[key]
    return totals


def _step_phases(result: dict, key: str) -> dict[str, float]:
    """The steps' phases in `key` units: each step's own preparation counted as `prepare`, the training
    step's epochs as `train epochs`, the rest of the training and forecast steps as `… other`."""
    lines = [line for line in result["phases"] if key in line]
    totals = _totals(lines, key)
    out = {name: totals[name] for name in ("pull", "prepare", "train epochs") if name in totals}
    prepares = [line for line in lines if line["phase"] == "prepare"]
    for step, inner, name in (("train", "train epochs", "train other"), ("forecast", "predict", "forecast other")):
        if step == "forecast" and "predict" in totals:
            out["predict"] = totals["predict"]
        if step in totals:
            own_prepare = sum(p[key] for p in prepares if _within(p, result["phases"], step))
            out[name] = totals[step] - totals.get(inner, 0.0) - own_prepare
    for name in ("score", "sql write", "parquet write", "parquet repair", "report", "commit pull"):
        if name in totals:
            out[name] = totals[name]
    return out


def breakdown(result: dict) -> dict[str, float]:
    """Seconds per reported phase (nested phases taken out of the phases that hold them)."""
    seconds = _totals(result["phases"], "seconds")
    out: dict[str, float] = {}
    steps = [line for line in result["phases"] if not line["phase"].startswith("startup")]
    if steps:
        # Launch to the first step's start: interpreter, imports, config, schema check, TensorFlow,
        # the Prefect server and the flow run's creation (the `startup:` phases are inside it).
        out["startup"] = min(line["started"] for line in steps) - result["launched"]
        for name in ("startup: tensorflow import", "startup: prefect import", "startup: prefect api"):
            if name in seconds:
                out[name] = seconds[name]
    out.update(_step_phases(result, "seconds"))
    outer = {"pull", "score", "train", "forecast", "sql write", "parquet write", "parquet repair", "report", "commit pull"}
    covered = out.get("startup", 0.0) + sum(seconds[name] for name in outer if name in seconds)
    if steps:
        # After the last step: the run's records, Prefect's artifacts and log drain, stopping the
        # temporary server, interpreter exit.
        out["shutdown"] = result["launched"] + result["wall"] - max(line["started"] + line["seconds"] for line in steps)
        covered += out["shutdown"]
    out["other"] = result["wall"] - covered  # between the steps: Prefect's task runs, mode decision, run records
    return {key: round(value, 2) for key, value in out.items()}


def cpu_breakdown(result: dict) -> dict[str, float]:
    """CPU seconds (user + system, all threads of the job's process) of the step phases, split as
    `breakdown` splits wall seconds; `total` is the command's whole process tree (with the temporary
    Prefect server). Less sensitive to a busy machine than wall seconds, so per-series costs of runs
    made at different loads compare better on these."""
    if not any("cpu_seconds" in line for line in result["phases"]):
        return {}
    out = {**_step_phases(result, "cpu_seconds"), "total": result["cpu"]}
    return {key: round(value, 2) for key, value in out.items()}


def _within(inner: dict, lines: list[dict], outer: str) -> bool:
    end = inner["started"] + inner["seconds"]
    return any(line["phase"] == outer and line["started"] <= inner["started"] and end <= line["started"] + line["seconds"] + 1e-3 for line in lines)


def report(name: str, series: int, result: dict, extra: dict | None = None) -> dict:
    phases, cpu = breakdown(result), cpu_breakdown(result)
    line = {
        "benchmark": "scale", "command": name, "series": series, "wall_seconds": round(result["wall"], 2),
        "peak_rss_mib": round(result["peak_rss_mib"], 1), "phases": phases,
        "us_per_series": {key: round(value / series * 1e6) for key, value in {"wall": result["wall"], **phases}.items()},
        "cpu_seconds": cpu, "cpu_us_per_series": {key: round(value / series * 1e6) for key, value in cpu.items()},
        "load_average": round(os.getloadavg()[0], 1),
        **(extra or {}),
    }  # fmt: skip
    print(json.dumps(line), flush=True)
    return line


def write_series_csv(path: Path, series: int, length: int, seed: int) -> None:
    """Write the synthetic series to `path` from a spawned process. Linux carries a process's peak RSS
    over fork and exec, so every command launched later would report this process's peak (the
    generated frame, 2 GB at 100,000 series) as its own if the frame had been built here."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pool.apply(_write_series_csv, (str(path), series, length, seed))


def _write_series_csv(path: str, series: int, length: int, seed: int) -> None:
    synthetic_series(series, length, seed).to_csv(path, index=False)


def run(url: str, folder: Path, args: argparse.Namespace) -> None:
    config = write_config(folder, url, args.epochs, args.units)
    data = folder / "observations.csv"
    phases = folder / "phases.jsonl"
    wanted = set(args.commands.split(","))
    unknown = wanted - {"load", "retrain", "forecast", "quick"}
    if unknown:
        raise SystemExit(f"--commands: unknown {sorted(unknown)} (load, retrain, forecast, quick)")
    rows = args.series * args.length
    if "load" in wanted:
        started = time.perf_counter()
        write_series_csv(data, args.series, args.length, args.seed)
        generated = time.perf_counter() - started
        command(config, ["init"], phases)
        report("load", args.series, command(config, ["load", str(data)], phases), {"rows": rows, "generate_seconds": round(generated, 2)})
    if "retrain" in wanted:
        report("run --mode retrain", args.series, command(config, ["run", "--model", "bench", "--mode", "retrain", "--json"], phases), {"epochs": args.epochs})
    if "forecast" in wanted:
        report("run --mode forecast", args.series, command(config, ["run", "--model", "bench", "--mode", "forecast", "--json"], phases))
    if args.reload:
        report("load (replacing)", args.series, command(config, ["load", str(data)], phases), {"rows": rows})
    if "quick" in wanted:
        command(config, ["deployments", "--output", str(folder / "d.yaml")], phases)
        for name, argv in (("models list", ["models", "list"]), ("deployments --check", ["deployments", "--output", str(folder / "d.yaml"), "--check"])):
            report(name, args.series, command(config, argv, phases))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--length", type=int, default=120, help="months per series (default 120)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--units", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reload", action="store_true", help="also time loading the same file again (every row replaced)")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--url", default=None, help="an empty database to use instead (SQLAlchemy URL)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep (and reuse) the data, database and store here")
    parser.add_argument("--commands", default="load,retrain,forecast,quick", help="comma-separated: load, retrain, forecast, quick")
    args = parser.parse_args()
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() if args.workdir is None else contextlib.nullcontext(str(args.workdir)) as scratch:
        folder = Path(scratch).resolve()
        if args.url:
            run(args.url, folder, args)
        elif args.backend == "sqlite":
            run(f"sqlite:///{folder / 'bench.db'}", folder, args)
        else:
            sys.path.insert(0, str(ROOT))
            from tests.postgres_server import throwaway_database

            with throwaway_database() as url:
                run(url, folder, args)


if __name__ == "__main__":
    main()
