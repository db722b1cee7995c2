"""`forecasting check` (issue 27.3), in-process through the CLI's main: on a good project it passes,
prints the settings each model would train with (derived defaults marked) and a training-time
estimate within 2x of the real training, and writes nothing; on a misconfigured one (a wrong column
or type, an unreachable bucket, no Prefect server, series too short, a database it cannot reach)
each problem is one line naming it, and the exit status is not 0."""

import json
import os
import re
import socket
import sqlite3
import time
import uuid

import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting.cli import main as cli
from forecasting.config.settings import SourceConfig, load_settings
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.model.inputs import InputSpec
from forecasting.sources.database import create_db_engine
from forecasting.sources.loading import load_observations
from forecasting.sources.schema import migrate
from tests.support.data import insert_promotion_rows, promotion_frame, synthetic_frame, toml_value
from tests.support.s3 import s3_keys
from tests.support.postgres_server import create_database

# Derived: lookback, batch size and season. min_epochs 4 of 5 with patience 1: early stopping cannot end
# the training before its last epoch, so the likely estimate and the real training run the same epochs.
MODEL = {
    "cell": "gru", "horizon": 6, "layers": [{"units": 8}], "learning_rate": 0.01, "epochs": 5, "min_epochs": 4, "patience": 1,
    "loss": "mse", "series_weighting": 0.0,
}  # fmt: skip


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """tmp_path as the current folder, no FORECASTING_* or PREFECT_API_URL from outside."""
    for name in [n for n in os.environ if n.startswith("FORECASTING_") or n == "PREFECT_API_URL"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def project(folder, frame=None, models=None, source=None, storage="store", init=True, database=None):
    """A config in `folder` (`database`, default SQLite; `models` by name), the job's tables and storage created, `frame` loaded."""
    database = database or f"sqlite:///{folder / 'db.sqlite'}"
    lines = ["[database]", f"url = {json.dumps(database)}", "[storage]", f"root = {json.dumps(storage)}", "[source]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in (source or {}).items()]
    for name, model in (models or {"daily": MODEL}).items():
        lines += [f"[models.{name}]", *(f"{key} = {toml_value(value)}" for key, value in model.items())]
    (folder / "forecasting.toml").write_text("\n".join(lines) + "\n")
    if init:
        settings = load_settings(folder / "forecasting.toml")
        engine = create_db_engine(settings.database.url)
        migrate(engine)
        if not storage.startswith("s3://"):
            (folder / storage).mkdir(exist_ok=True)
        if frame is not None:
            load_observations(engine, SourceConfig(**{k: v for k, v in (source or {}).items() if k == "table"}), frame)


def check(capsys, *args):
    code = cli.main(["check", *args])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, lines, captured.err


def problems(lines):
    return [line for line in lines if line.startswith("problem ")]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def snapshot(folder):
    """Every table's rows in the SQLite database and every file under the folder but the database's own."""
    with sqlite3.connect(folder / "db.sqlite") as connection:
        names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        tables = {name: connection.execute(f'SELECT * FROM "{name}"').fetchall() for name in names}
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.name.startswith("db.sqlite"))
    return tables, files


def seconds(text):
    """`8.7 s`, `1 min 05 s` or `2 h 07 min` as seconds."""
    match = re.fullmatch(r"(?:(\d+) h )?(?:(\d+) min ?)?(?:([\d.]+) s)?", text.strip())
    hours, minutes, rest = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(rest or 0)


@pytest.mark.parametrize("store", ["missing bucket", "closed port"])
def test_a_misconfigured_project_names_each_problem_in_one_line(workdir, capsys, s3_endpoint, postgres_admin_url, monkeypatch, request, store):
    """PostgreSQL and S3, as in the issue: a wrong target column, a bucket that is not there (or an S3
    endpoint whose port is closed), a Prefect server that does not answer: one line each, all three
    (not only the first), exit 2 (a config problem is among them); the models are not checked."""
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{closed_port()}/api")
    if store == "closed port":
        from s3fs import S3FileSystem

        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
        S3FileSystem.clear_instance_cache()  # fsspec keeps filesystems by their options, the endpoint from the environment not among them
        request.addfinalizer(S3FileSystem.clear_instance_cache)
    bucket = f"missing-{uuid.uuid4().hex[:12]}"
    database = create_database(postgres_admin_url)
    project(workdir, synthetic_frame(), source={"target": "amount"}, storage=f"s3://{bucket}/forecasting", database=database)
    code, lines, err = check(capsys, "--no-estimate")
    assert code == 2, lines
    found = problems(lines)
    assert len(found) == 3, lines
    assert found[0].startswith("problem  source: source.target: column 'amount' not found in table 'observations'")
    assert found[1].startswith(f"problem  storage: storage.root: cannot reach s3://{bucket}/forecasting (")
    assert ("The specified bucket does not exist" if store == "missing bucket" else "Could not connect to the endpoint URL") in found[1]
    assert found[2].startswith("problem  prefect: PREFECT_API_URL: the Prefect API at http://127.0.0.1:") and "does not answer" in found[2]
    assert lines[0].startswith("ok       database: connected to postgresql+psycopg://") and lines[-1] == "3 problems found (a dry run: nothing was written)"
    assert not any(line.startswith(("ok       model", "problem  model")) for line in lines)
    assert "Traceback" not in err


def test_an_unreachable_prefect_alone_exits_1_and_an_answering_one_is_ok(workdir, capsys, monkeypatch):
    project(workdir, synthetic_frame(n_series=3))
    monkeypatch.setenv("PREFECT_API_URL", f"http://user:s3cret@127.0.0.1:{closed_port()}/api")
    code, lines, _ = check(capsys, "--no-estimate")
    assert code == 1 and len(problems(lines)) == 1 and problems(lines)[0].startswith("problem  prefect:"), lines
    assert "s3cret" not in "\n".join(lines)


def test_a_text_target_column_is_a_problem_of_its_type(workdir, capsys):
    project(workdir, source={"table": "sales"}, init=False)
    with sqlite3.connect(workdir / "db.sqlite") as connection:
        connection.execute("CREATE TABLE sales (series_id TEXT, ts TIMESTAMP, value TEXT)")
    code, lines, _ = check(capsys, "--no-estimate")
    assert code == 2
    assert "problem  source: source.target: column 'value' of table 'sales' is TEXT, which cannot be read as a number" in lines
    assert problems(lines)[0].startswith("problem  tables: database.url: sqlite:///") and "run `forecasting init` first" in problems(lines)[0]


def test_series_too_short_for_one_model_is_its_problem_and_the_other_model_passes(workdir, capsys):
    """Two models: `long` (horizon 12, lookback 24) cannot train on 30-month series, `short` can;
    `--model` checks one of them only."""
    frame = synthetic_frame(n_series=5, length=30)
    project(workdir, frame, models={"long": {**MODEL, "horizon": 12, "lookback": 24}, "short": {**MODEL, "horizon": 3}})
    code, lines, _ = check(capsys, "--no-estimate")
    assert code == 2, lines
    assert problems(lines) == [
        "problem  model long: series too short: training needs a series with more than lookback 24 + 2 x horizon 12 - 1 = 47 "
        "observations (windows to train on before each series' last 12, which validate), and the longest of the 5 series has 30; "
        "load more history, or lower models.long.horizon or lookback"
    ]
    assert any(line.startswith("ok       model short: 5 series on the MS grid, 30 periods long each;") for line in lines)
    assert any(line.startswith("ok       model short: trains gru 8 units, lookback 15 (derived), horizon 3, season 12 (derived)") for line in lines)
    assert "ok       data: 5 series, 150 observations from 2020-01-01 to 2022-06-01, frequency MS (inferred from the data)" in lines
    code, lines, _ = check(capsys, "--no-estimate", "--model", "short")
    assert code == 0 and not any("model long" in line for line in lines) and lines[-1] == "all checks passed (a dry run: nothing was written)"


def test_a_database_it_cannot_reach_is_one_line_without_the_password(workdir, capsys, monkeypatch):
    project(workdir, init=False)
    monkeypatch.setenv("FORECASTING_DATABASE_URL", "postgresql+psycopg://job:s3cret-pw@127.0.0.1:1/forecasts")
    code, lines, err = check(capsys)
    assert code == 2
    assert problems(lines)[0].startswith("problem  database: FORECASTING_DATABASE_URL: cannot connect to postgresql+psycopg://job:***@127.0.0.1:1/forecasts")
    assert "s3cret" not in "\n".join(lines) + err
    assert [line.split(":")[0] for line in lines[1:-1]] == ["ok       storage", "ok       prefect"]  # checked all the same


def test_a_sqlite_database_not_created_yet_is_not_created_by_the_check(workdir, capsys):
    project(workdir, init=False)
    code, lines, _ = check(capsys, "--no-estimate")
    assert code == 2 and "does not exist yet; run `forecasting init`" in problems(lines)[0]
    assert not (workdir / "db.sqlite").exists() and not (workdir / "store").exists()


def test_a_bucket_that_answers_is_probed_and_left_as_it_was(workdir, capsys, s3_root, postgres_admin_url):
    project(workdir, synthetic_frame(n_series=3), storage=s3_root, database=create_database(postgres_admin_url))
    code, lines, _ = check(capsys, "--no-estimate")
    assert code == 0, lines
    assert f"ok       storage: storage.root {s3_root} is reachable (a probe object was written, read and removed)" in lines
    assert s3_keys(s3_root) == []


def test_a_good_project_passes_with_derived_defaults_and_an_estimate_and_writes_nothing(workdir, capsys):
    project(workdir, synthetic_frame(n_series=20, length=60))
    before = snapshot(workdir)
    code, lines, err = check(capsys)
    assert code == 0, lines + [err]
    assert not problems(lines) and lines[-1] == "all checks passed (a dry run: nothing was written)"
    assert "ok       source: table observations: series series_id (VARCHAR(200)), time ts (DATETIME), target value (FLOAT)" in lines
    assert any(line.startswith("ok       storage: storage.root /") and line.endswith("/store is a folder this process can write to") for line in lines)
    series, trains, estimate = [line for line in lines if line.startswith("ok       model daily: ")]
    assert "20 series on the MS grid, 60 periods long each; all long enough for lookback 15 + horizon 6 = 21; 680 training and 120 validation windows" in series
    assert trains.endswith(
        "trains gru 8 units, lookback 15 (derived), horizon 6, season 12 (derived), batch_size 32 (derived), epochs 5, min_epochs 4, "
        "patience 1, learning_rate 0.01, loss mse, refit"
    )
    assert re.search(r"training takes about .+ \(all 5 epochs, and the refit as many\); 22 batches of 32 an epoch at [\d.]+ ms each, timed on 12 batches", estimate)
    assert snapshot(workdir) == before


@pytest.mark.slow
def test_the_estimate_is_within_2x_of_the_real_training(workdir, capsys):
    """The check's estimate against the training a retrain would do on the same rows and settings
    (`RecurrentForecaster.fit`, timed here); early stopping cannot end it sooner (min_epochs 4 of 5)."""
    frame = synthetic_frame(n_series=60, length=120, start="2010-01-01")  # 88 batches an epoch: the epochs, not the start-up, take most of it
    project(workdir, frame)
    code, lines, _ = check(capsys)
    assert code == 0, lines
    estimate = next(line for line in lines if "training takes about" in line)
    estimated = seconds(re.search(r"training takes about (.+?) \(", estimate).group(1))
    settings = load_settings(workdir / "forecasting.toml")
    config = settings.model("daily")
    observed = frame.assign(ts=pd.to_datetime(frame["ts"]).astype("datetime64[us]"))
    arrays = InputSpec.requested(settings.source, config).prepare(observed, observed.iloc[0:0], settings.source, "MS")
    started = time.perf_counter()
    outcome = RecurrentForecaster.fit(arrays, config)
    real = time.perf_counter() - started
    assert outcome.report.epochs_run == 5 and outcome.report.details["refit"]["epochs"] == 5
    print(f"\nestimated {estimated:.1f} s, real {real:.1f} s: {estimate}")
    assert real / 2 <= estimated <= real * 2, (estimated, real, estimate)


def test_a_future_feature_is_checked_and_calibrated_with_its_future_rows(workdir, capsys):
    """Promotions planned ahead (issue 27's walkthrough): the column's type, the future rows counted,
    the network's second input in the calibration."""
    project(workdir, source={"future_features": ["promo"]})
    engine = create_db_engine(load_settings(workdir / "forecasting.toml").database.url)
    with engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE observations ADD COLUMN promo DOUBLE PRECISION"))
    insert_promotion_rows(engine, promotion_frame(n_series=6, length=48, ahead=6))
    code, lines, _ = check(capsys)
    assert code == 0, lines
    assert "ok       source: table observations: series series_id (VARCHAR(200)), time ts (DATETIME), target value (FLOAT), future feature promo (REAL)" in lines  # SQLite reads DOUBLE PRECISION as REAL
    assert any(line.startswith("ok       data: 6 series, 288 observations from 2018-01-01 to 2021-12-01") and line.endswith(", 36 future rows") for line in lines)
    assert any(line.startswith("ok       model daily: training takes about ") for line in lines)
