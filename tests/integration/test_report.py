"""`forecasting report`: a self-contained HTML file whose charts are real images; clear errors for what does not exist."""

import base64
import io
import os
import re

import pandas as pd
import pytest
import sqlalchemy as sa
from PIL import Image

from forecasting.sources.database import create_db_engine
from forecasting.errors import ConfigError
from forecasting.sources.loading import load_observations
from forecasting.publishing.registry import set_alias
from forecasting.report.render import build_report, run_report
from forecasting.sources.schema import migrate
from forecasting.steps.scoring import score_forecasts
from tests.support.data import pull


def images(html):
    """Every embedded image, decoded."""
    found = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    return [Image.open(io.BytesIO(base64.b64decode(data))) for data in found]


def assert_self_contained(html):
    assert "http://" not in html and "https://" not in html and "<script" not in html


def test_report_before_any_actual_says_so_and_charts_the_series(scenario):
    settings, engine, full, months, forecasts = scenario
    report = build_report(engine, settings, "tiny")
    assert "has met its actual yet" in report.html and "Live accuracy by forecast step" not in report.html
    assert report.charts == 3 == len(images(report.html))  # the three series, no empty accuracy charts
    assert_self_contained(report.html)


def test_report_with_actuals_has_accuracy_and_series_charts_as_real_images(scenario):
    settings, engine, full, months, forecasts = scenario
    load_observations(engine, settings.source, full[months <= 32])
    pull(settings)
    score_forecasts(engine, settings, "tiny", "r1")
    with engine.begin() as connection:
        set_alias(connection, "tiny", "champion", 1)
    report = build_report(engine, settings, "tiny", top=2, series=["S00"])
    decoded = images(report.html)
    assert report.charts == len(decoded) == 2 + len(report.series)
    assert "S00" in report.series and 2 <= len(report.series) <= 3
    for image in decoded:
        image.load()
        assert image.size[0] >= 800 and image.size[1] >= 250
    assert "seasonal naive" in report.html and "80% interval coverage" in report.html
    assert_self_contained(report.html)

    latest = run_report(engine, settings, "tiny")
    assert latest.endswith("reports/tiny/latest.html")
    folder = settings.storage_root / "reports" / "tiny"
    assert len(list(folder.glob("*.html"))) == 2 and not list(folder.glob(".*tmp"))


def test_report_says_how_the_newest_forecasts_were_made_and_which_series_were_not_the_network(scenario):
    """Issue 29: a new store forecast from a padded window shows in the report, not only in the tables."""
    settings, engine, full, months, forecasts = scenario
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE forecasts SET method = 'short_history' WHERE series_id = 'S01'"))
    html = re.sub(r"\s+", " ", build_report(engine, settings, "tiny").html)
    assert "Newest forecasts by method: network 2 series; short_history 1 series (S01)." in html
    origin = pd.Timestamp(forecasts.forecast_origin.iloc[0]).date()
    assert f"Series S01 forecast by short_history from origin {origin}." in html
    assert "Series S00 forecast by" not in html  # all network: nothing to say


def test_report_refuses_unknown_series_and_models_without_forecasts(scenario, tmp_path, database_url):
    settings, engine, full, months, forecasts = scenario
    with pytest.raises(ConfigError, match="--series: 'NOPE' has no forecasts of this model"):
        build_report(engine, settings, "tiny", series=["NOPE"])
    with pytest.raises(ConfigError, match="models.other"):
        build_report(engine, settings, "other")
    empty = create_db_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    migrate(empty)
    with pytest.raises(ConfigError, match="model 'tiny' has no forecasts yet in table forecasts"):
        build_report(empty, settings, "tiny")


def test_report_command_writes_the_file_and_bad_input_is_one_line_exit_2(scenario, capsys, tmp_path):
    from forecasting.cli.main import main

    settings, engine, full, months, forecasts = scenario
    config = str(tmp_path / "forecasting.toml")
    output = tmp_path / "out" / "tiny.html"
    output.parent.mkdir()  # a folder the user names must exist (issue 26.1)
    assert main(["--config", config, "report", "--model", "tiny", "--output", str(output), "--top", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"{output} (2 charts, 2 series;" in printed and output.read_text().startswith("<!DOCTYPE html>")
    for args, fragment in (
        (["--model", "nope"], "models.nope"),
        (["--model", "tiny", "--series", "S00", "NOPE"], "--series: 'NOPE' has no forecasts of this model"),
        (["--model", "tiny", "--top", "-1"], "--top: must be 0 or more"),
    ):
        assert main(["--config", config, "report", *args]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], lines


def special_files(folder):
    """Paths that are not regular files: a FIFO, a character device (as root: a node like /dev/null's,
    in `folder`), symlinks to each, a dangling symlink; name -> (path, how to tell it is unchanged)."""
    import stat

    made = {}
    fifo = folder / "fifo"
    os.mkfifo(fifo)
    made["fifo"] = (fifo, lambda: stat.S_ISFIFO(fifo.lstat().st_mode))
    if os.geteuid() == 0:
        device = folder / "null-device"
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        made["device"] = (device, lambda: stat.S_ISCHR(device.lstat().st_mode))
    to_fifo = folder / "to-fifo"
    to_fifo.symlink_to(fifo)
    made["symlink to a fifo"] = (to_fifo, lambda: to_fifo.is_symlink() and stat.S_ISFIFO(fifo.lstat().st_mode))
    dangling = folder / "dangling"
    dangling.symlink_to(folder / "nowhere" / "x.html")
    made["dangling symlink"] = (dangling, lambda: dangling.is_symlink() and not (folder / "nowhere").exists())
    return made


def test_report_output_replaces_only_a_regular_file_and_writes_through_a_symlink(scenario, capsys, tmp_path):
    """Issue 26.1 and 26.9: a FIFO, a device, a symlink to either, a dangling symlink, a directory or
    a missing folder are refused (exit 2, one line, nothing changed); a symlink to a regular file is
    written through (the link stays)."""
    from forecasting.cli.main import main

    config = str(tmp_path / "forecasting.toml")
    folder = tmp_path / "targets"
    folder.mkdir()

    def report(output):
        code = main(["--config", config, "report", "--model", "tiny", "--output", str(output), "--top", "1"])
        captured = capsys.readouterr()
        return code, captured.out, captured.err.strip().splitlines()

    for name, (path, unchanged) in special_files(folder).items():
        code, out, lines = report(path)
        assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: --output: {path} "), (name, lines)
        assert "not a regular file" in lines[0] or "does not exist" in lines[0], (name, lines)
        assert unchanged(), name
    # A directory: says so, and blames neither storage.root nor a temporary file.
    code, _, lines = report(folder)
    assert code == 2 and lines == [f"error: --output: {folder} is a directory; name the file to write in it (for example {folder / 'report.html'})"]
    assert not list(folder.glob(".*tmp"))
    # A folder that does not exist is not created.
    code, _, lines = report(tmp_path / "missing" / "r.html")
    assert code == 2 and len(lines) == 1 and f"the folder {tmp_path / 'missing'} of r.html does not exist" in lines[0]
    assert not (tmp_path / "missing").exists()
    # Through a symlink to a regular file: the target gets the report, the link stays a link.
    target = folder / "real.html"
    target.write_text("old")
    link = folder / "link.html"
    link.symlink_to(target)
    code, out, lines = report(link)
    assert code == 0, lines
    assert link.is_symlink() and target.read_text().startswith("<!DOCTYPE html>")
    assert not list(folder.glob(".*tmp"))


def test_deployments_output_follows_the_same_rule(tmp_path, capsys, monkeypatch):
    from forecasting.cli.main import main
    from tests.support.data import write_config

    for name in ("FORECASTING_DATABASE_URL", "FORECASTING_STORAGE_ROOT", "FORECASTING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    config = str(write_config(tmp_path, "sqlite:///db.sqlite"))
    folder = tmp_path / "targets"
    folder.mkdir()
    for name, (path, unchanged) in special_files(folder).items():
        assert main(["--config", config, "deployments", "--output", str(path)]) == 2, name
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: --output: {path} "), (name, lines)
        assert unchanged(), name
    assert main(["--config", config, "deployments", "--output", str(tmp_path / "missing" / "p.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "missing").exists()
    target = folder / "prefect.yaml"
    target.write_text("old")
    (folder / "link.yaml").symlink_to(target)
    assert main(["--config", config, "deployments", "--output", str(folder / "link.yaml")]) == 0
    assert (folder / "link.yaml").is_symlink() and "deployments:" in target.read_text()
    # The default path is the job's own: its folder is created.
    assert main(["--config", config, "deployments"]) == 0 and (tmp_path / "deployments" / "prefect.yaml").is_file()


def test_a_sqlite_database_that_is_not_a_regular_file_is_refused(tmp_path, capsys, monkeypatch):
    from forecasting.cli.main import main
    from tests.support.data import write_config

    for name in ("FORECASTING_DATABASE_URL", "FORECASTING_STORAGE_ROOT", "FORECASTING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    fifo = tmp_path / "db.fifo"
    os.mkfifo(fifo)
    config = str(write_config(tmp_path, f"sqlite:///{fifo}"))
    assert main(["--config", config, "init"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"the SQLite database {fifo} is a FIFO, not a regular file" in lines[0], lines


def test_demo_advance_appends_the_next_real_months_until_m3_runs_out(tmp_path, capsys, monkeypatch):
    from forecasting.cli.main import main
    from forecasting.sources.datasets import m3_monthly
    from tests.support.data import write_config

    for name in ("FORECASTING_DATABASE_URL", "FORECASTING_STORAGE_ROOT", "FORECASTING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'demo.db'}")
    config.write_text(config.read_text().replace("[models.tiny]", "[models.monthly]"))
    engine = create_db_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    migrate(engine)
    from forecasting.config.settings import load_settings

    load_observations(engine, load_settings(config).source, m3_monthly(3))
    assert main(["--config", str(config), "demo", "--series", "3", "--advance", "2"]) == 0
    assert "appended 6 observations of 3 M3 series (2026-01-01 to 2026-02-01)" in capsys.readouterr().out
    with engine.connect() as connection:
        newest = connection.execute(sa.text("SELECT series_id, MAX(ts) FROM observations GROUP BY series_id")).fetchall()
    assert {str(ts)[:10] for _, ts in newest} == {"2026-02-01"}
    expected = m3_monthly(3, include_test=True)
    with engine.connect() as connection:
        stored = pd.read_sql(sa.text("SELECT series_id, ts, value FROM observations"), connection)
    merged = stored.assign(ts=pd.to_datetime(stored.ts)).merge(expected, on=["series_id", "ts"], suffixes=("", "_m3"))
    assert len(merged) == len(stored) and (merged.value == merged.value_m3).all()  # the real M3 values
    assert main(["--config", str(config), "demo", "--series", "3", "--advance", "30"]) == 0
    assert "appended 48 observations" in capsys.readouterr().out  # the 16 months left of the 18
    assert main(["--config", str(config), "demo", "--series", "3", "--advance", "1"]) == 2
    assert "have no more real months after 2027-06-01" in capsys.readouterr().err


def test_demo_advance_moves_every_series_the_demo_loaded(tmp_path, capsys, monkeypatch):
    """`demo --series 20`, then `demo --advance 1` (what the demo suggests, --series left at its default):
    every one of the 20 series gets its next month, not only those a 300-series sample shares with them."""
    from forecasting.cli.main import main
    from forecasting.config.settings import load_settings
    from forecasting.sources.datasets import m3_monthly
    from tests.support.data import write_config

    for name in ("FORECASTING_DATABASE_URL", "FORECASTING_STORAGE_ROOT", "FORECASTING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'demo.db'}")
    config.write_text(config.read_text().replace("[models.tiny]", "[models.monthly]"))
    engine = create_db_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    migrate(engine)
    loaded = m3_monthly(20)  # what `demo --series 20` loads
    load_observations(engine, load_settings(config).source, loaded)
    assert main(["--config", str(config), "demo", "--advance", "1"]) == 0
    assert "appended 20 observations of 20 M3 series (2026-01-01 to 2026-01-01)" in capsys.readouterr().out
    with engine.connect() as connection:
        newest = dict(connection.execute(sa.text("SELECT series_id, MAX(ts) FROM observations GROUP BY series_id")).fetchall())
    assert set(newest) == set(loaded["series_id"])  # no series added that the demo did not load
    assert {str(ts)[:10] for ts in newest.values()} == {"2026-01-01"}


@pytest.mark.parametrize("args", [["demo", "--advance", "1", "--series", "0"], ["demo", "--series", "-2"]])
def test_demo_refuses_a_series_count_below_one_with_exit_2(tmp_path, capsys, monkeypatch, args):
    from forecasting.cli.main import main
    from tests.support.data import write_config

    for name in ("FORECASTING_DATABASE_URL", "FORECASTING_STORAGE_ROOT", "FORECASTING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'demo.db'}")
    config.write_text(config.read_text().replace("[models.tiny]", "[models.monthly]"))
    assert main(["--config", str(config), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --series: must be a positive number of series (got ") and err.count("\n") == 0, err
    assert not (tmp_path / "demo.db").exists()
