"""Grids anchored on the frequency's own points, off-grid rows quarantined with a reason, and time
zones read the same way by `load` and by the pull (aware -> UTC, naive taken as UTC)."""

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting import steps
from forecasting.history import store as history
from forecasting.config.settings import SourceConfig
from forecasting.sources.database import create_db_engine
from forecasting.errors import InputError
from forecasting.sources.loading import load_observations, read_observation_file
from forecasting.sources.schema import migrate
from forecasting.preparation.validation import on_grid, regularize, screen, to_utc_naive
from tests.support.data import synthetic_frame


def off_grid_first_row() -> pd.DataFrame:
    """60 month starts at midnight, the first at 03:00 instead."""
    ts = pd.date_range("2018-01-01", periods=60, freq="MS").to_series().reset_index(drop=True)
    ts.iloc[0] = pd.Timestamp("2018-01-01T03:00")
    return pd.DataFrame({"series_id": "A", "ts": ts, "value": np.arange(60, dtype="float64") + 1})


def test_a_row_off_the_grid_is_not_the_grid_anchor():
    """Issue 12, point 3: the grid was anchored on the 03:00 row and every month start was 'missing'."""
    regular, report = regularize(off_grid_first_row(), "MS")
    assert len(regular) == 59 and regular.value.notna().all() and report.off_frequency_rows == 1
    assert regular.ts.iloc[0] == pd.Timestamp("2018-02-01") and (regular.ts == regular.ts.dt.normalize()).all()


def test_calendar_grids_are_at_midnight():
    stamps = pd.Series(pd.to_datetime(["2018-01-01", "2018-01-01T03:00", "2018-01-15", "2024-01-01T00:00:00.000001"], format="ISO8601"))
    assert on_grid(stamps, "MS").tolist() == [True, False, False, False]
    assert on_grid(pd.Series(pd.to_datetime(["2024-01-01T06:00", "2024-01-01T06:30"])), "h").tolist() == [True, False]
    assert on_grid(pd.Series(pd.to_datetime(["2024-01-01", "2024-01-01T09:00"], format="ISO8601")), "W-MON").tolist() == [True, False]


def test_screen_quarantines_the_off_grid_row_with_its_reason():
    screening = screen(off_grid_first_row(), "MS", 0.2)
    assert len(screening.clean) == 59
    assert screening.quarantined[["ts", "reason"]].values.tolist() == [[pd.Timestamp("2018-01-01T03:00"), "timestamp not on the MS grid"]]


def test_to_utc_naive_reads_every_form_the_same_way():
    expected = pd.Timestamp("2024-01-01")
    import datetime

    forms = [
        pd.Series(["2024-01-01", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00", "2024-01-01 00:00:00.000000"]),
        pd.Series([datetime.datetime(2024, 1, 1), datetime.datetime(2024, 1, 1, 2, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))]),
        pd.Series(pd.to_datetime(["2024-01-01T09:00"]).tz_localize("Asia/Tokyo")),
    ]
    assert (to_utc_naive(forms[0]) == expected).all()
    assert (to_utc_naive(forms[1]) == expected).all()
    assert to_utc_naive(forms[2]).item() == expected
    assert to_utc_naive(pd.Series(["2024-13-45"])).isna().all()


@pytest.fixture
def project(database_url, settings_for):
    settings, _ = settings_for(database_url, source={"frequency": "MS"})
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame())
    return settings, engine


def stored(settings):
    return history.read(history.history_root(settings.storage_root, "observations"))


def test_a_source_timestamp_ending_in_z_is_read_as_utc(project):
    """Issue 12, point 3: a row whose timestamp text ends in Z blocked every run (merge on aware and naive keys)."""
    settings, engine = project
    steps.commit_pull(settings, "r1", steps.pull_step(settings, "r1"))
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO observations (series_id, ts, value) VALUES ('S00', '2024-01-01T00:00:00Z', 5.0)"))
        connection.execute(sa.text("INSERT INTO observations (series_id, ts, value) VALUES ('S01', '2024-01-01 00:00:00', 6.0)"))
    pulled = steps.pull_step(settings, "r2")
    assert (pulled.rows_new, pulled.quarantined) == (2, 0)
    frame = stored(settings)
    assert frame.loc[frame.ts == pd.Timestamp("2024-01-01"), "series_id"].tolist() == ["S00", "S01"]
    assert frame.ts.dtype == "datetime64[us]"


def test_an_unreadable_source_timestamp_is_one_clear_error(tmp_path, settings_for):
    """SQLite keeps any text in a DATETIME column (PostgreSQL refuses it on insert)."""
    settings, _ = settings_for(f"sqlite:///{tmp_path / 'bad.db'}", source={"frequency": "MS"})
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), synthetic_frame())
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO observations (series_id, ts, value) VALUES ('S03', 'last tuesday', 5.0)"))
    with pytest.raises(InputError, match=r"source table 'observations': 1 rows have a ts that cannot be read as a timestamp, for example the row with series_id = 'S03' and ts = 'last tuesday'"):
        steps.pull_step(settings, "r1")


def test_a_file_with_mixed_time_zones_loads_and_runs_like_the_pull_reads_it(project, tmp_path):
    settings, engine = project
    path = tmp_path / "mixed.csv"
    path.write_text(
        "series_id,ts,value\n"
        "M1,2024-01-01,1\nM1,2024-02-01T00:00:00Z,2\nM1,2024-03-01T02:00:00+02:00,3\n"  # the same UTC month starts, three ways
        "M2,2024-01-01T00:00:00+01:00,4\n"  # local midnight: 23:00 UTC the day before, off the grid
    )
    load_observations(engine, SourceConfig(), read_observation_file(path))
    pulled = steps.pull_step(settings, "r1")
    frame = stored(settings)
    assert frame.loc[frame.series_id == "M1", "ts"].tolist() == list(pd.date_range("2024-01-01", periods=3, freq="MS"))
    assert pulled.quarantined == 1 and pulled.series_set_aside == 1 and "M2" not in set(frame.series_id)
    with engine.connect() as connection:
        row = connection.execute(sa.text("SELECT series_id, ts, reason FROM quarantine")).one()
    assert row.series_id == "M2" and pd.Timestamp(row.ts) == pd.Timestamp("2023-12-31T23:00") and row.reason == "timestamp not on the MS grid"


def test_to_utc_naive_parses_each_distinct_text_once_and_each_kind_apart_only_when_mixed(monkeypatch):
    """Issue 15: a long frame repeats every timestamp once per series; the text is read once per distinct value."""
    calls: list[int] = []
    parse = pd.to_datetime

    def counting(values, *args, **kwargs):
        calls.append(len(values) if hasattr(values, "__len__") else 1)
        return parse(values, *args, **kwargs)

    monkeypatch.setattr(pd, "to_datetime", counting)
    months = pd.date_range("2020-01-01", periods=12, freq="MS").strftime("%Y-%m-%d").tolist()
    naive = pd.Series(months * 500 + [None])
    got = to_utc_naive(naive)
    assert calls == [12]  # once, over the distinct texts only
    assert got.iloc[:12].tolist() == [pd.Timestamp(m) for m in months] and got.iloc[-1] is pd.NaT
    assert (got.iloc[12:-1].to_numpy() == got.iloc[:12].tolist() * 499).all()
    calls.clear()
    mixed = pd.Series(["2024-01-01T01:00:00+01:00", "2024-01-01", "2024-02-01T00:00:00Z", "2024-01-01"] * 1000)
    got = to_utc_naive(mixed)
    assert len(calls) == 2 and sum(calls) <= 2 * 3  # each kind apart, distinct texts only
    assert got.tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01"), pd.Timestamp("2024-01-01")] * 1000
