"""Incremental pulls into the history store, screening with a quarantine, watermarks that move last."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting import steps
from forecasting.history import store as history
from forecasting.config.settings import SourceConfig
from forecasting.errors import ConfigError, RunError
from forecasting.sources.loading import load_observations
from forecasting.preparation.validation import fill_gaps
from tests.support.data import synthetic_frame


def watermark(engine):
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT watermark FROM ingestion_state")).scalar()


def store(settings):
    return history.read(history.history_root(settings.storage_root, "observations"))


@pytest.mark.slow
def test_pulls_read_only_new_rows_and_the_watermark_moves_on_commit(project):
    settings, engine = project()
    frame = synthetic_frame()
    load_observations(engine, SourceConfig(), frame[frame.ts < "2023-12-01"])
    first = steps.pull_step(settings, "r1")
    assert first.full_refresh and (first.rows_pulled, first.rows_new, first.new_series) == (8 * 47, 8 * 47, 8)
    assert watermark(engine) is None  # nothing committed yet
    steps.commit_pull(settings, "r1", first)
    assert pd.Timestamp(watermark(engine)) == pd.Timestamp("2023-11-01")
    load_observations(engine, SourceConfig(), frame[frame.ts == "2023-12-01"])
    second = steps.pull_step(settings, "r2")
    assert not second.full_refresh and (second.rows_pulled, second.rows_new, second.rows_revised) == (8, 8, 0)
    # Not committed (say the run died): the next pull reads the same rows again and changes nothing.
    again = steps.pull_step(settings, "r3")
    assert (again.rows_pulled, again.rows_new, again.rows_revised) == (8, 0, 0)
    steps.commit_pull(settings, "r3", again)
    assert pd.Timestamp(watermark(engine)) == pd.Timestamp("2023-12-01")
    stored = store(settings)
    assert len(stored) == 8 * 48 and not stored.duplicated(["series_id", "ts"]).any()
    pd.testing.assert_series_equal(stored.value.reset_index(drop=True), frame.sort_values(["series_id", "ts"]).value.reset_index(drop=True))


def test_late_arrival_window_picks_up_corrections(project):
    settings, engine = project(late_arrival="40D")
    frame = synthetic_frame()
    load_observations(engine, SourceConfig(), frame)
    steps.commit_pull(settings, "r1", steps.pull_step(settings, "r1"))
    load_observations(engine, SourceConfig(), pd.DataFrame({"series_id": ["S03"], "ts": [pd.Timestamp("2023-11-01")], "value": [-1.0]}))
    pulled = steps.pull_step(settings, "r2")
    assert pulled.rows_pulled == 16 and pulled.rows_revised == 1 and pulled.rows_new == 0  # Nov and Dec re-read
    stored = store(settings)
    assert stored.loc[(stored.series_id == "S03") & (stored.ts == "2023-11-01"), "value"].item() == -1.0


def test_unusable_rows_go_to_quarantine_with_reasons(project):
    settings, engine = project()
    load_observations(engine, SourceConfig(), synthetic_frame())
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO observations (series_id, ts, value) VALUES ('S00', '2024-01-15 00:00:00', 1.0), ('S01', '2024-01-01 00:00:00', NULL)")
        )
    pulled = steps.pull_step(settings, "r1")
    assert pulled.quarantined == 2 and pulled.rows_new == 8 * 48
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT series_id, reason, run_id FROM quarantine ORDER BY series_id")).fetchall()
    assert [tuple(r) for r in rows] == [("S00", "timestamp not on the MS grid", "r1"), ("S01", "value missing or not finite", "r1")]


def insert(engine, *rows):
    """Rows (series_id, ts text, value or None) straight into the source table, as an operator would."""
    with engine.begin() as connection:
        for series_id, ts, value in rows:
            connection.execute(
                sa.text("INSERT INTO observations (series_id, ts, value) VALUES (:s, :t, :v)"), {"s": series_id, "t": ts, "v": value}
            )


def delete(engine, where):
    with engine.begin() as connection:
        connection.execute(sa.text(f"DELETE FROM observations WHERE {where}"))


def next_month(engine, month="2024-01-01", series=range(8), value=100.0):
    insert(engine, *[(f"S{i:02d}", f"{month} 00:00:00", value) for i in series])


def committed(settings, engine, frame=None):
    """Load the synthetic frame (or `frame`), pull it and commit the pull."""
    load_observations(engine, SourceConfig(), synthetic_frame() if frame is None else frame)
    pulled = steps.pull_step(settings, "r1")
    steps.commit_pull(settings, "r1", pulled)
    return pulled


def test_a_series_mostly_unusable_fails_the_pull_and_stores_nothing_with_on_bad_series_fail(project):
    settings, engine = project(on_bad_series="fail")
    committed(settings, engine)
    before = store(settings)
    insert(engine, *[("NEW", f"2023-0{month}-01 00:00:00", None) for month in range(1, 4)], ("NEW", "2023-04-01 00:00:00", 5.0))
    with pytest.raises(RunError, match=r"1 series have more than 20% of their rows unusable: NEW \(75%\).*Nothing was stored"):
        steps.pull_step(settings, "r2")
    pd.testing.assert_frame_equal(store(settings), before)
    assert pd.Timestamp(watermark(engine)) == pd.Timestamp("2023-12-01")


def test_one_null_in_a_long_series_quarantines_that_row_only(project):
    """Issue 12, point 5: a single NULL was 100% of that series' pulled rows and failed the run for every series."""
    settings, engine = project()
    committed(settings, engine)
    insert(engine, ("S00", "2024-01-01 00:00:00", None))
    next_month(engine, series=range(1, 8))
    pulled = steps.pull_step(settings, "r2")
    assert (pulled.quarantined, pulled.rows_new, pulled.series_set_aside) == (1, 7, 0)


def test_a_mostly_unusable_series_is_set_aside_and_the_others_go_on(project):
    settings, engine = project()
    committed(settings, engine)
    insert(engine, *[("BAD", f"2023-0{month}-01 00:00:00", None) for month in range(1, 4)], ("BAD", "2023-04-01 00:00:00", 5.0))
    next_month(engine)
    pulled = steps.pull_step(settings, "r2")
    assert pulled.series_set_aside == 1 and "3 of 4 rows unusable (75%" in pulled.set_aside_examples["BAD"]
    assert pulled.rows_new == 8 and pulled.quarantined == 4  # all of BAD's rows, with their reasons
    assert "BAD" not in set(store(settings).series_id)
    with engine.connect() as connection:
        reasons = connection.execute(sa.text("SELECT reason FROM quarantine WHERE series_id = 'BAD' ORDER BY ts")).scalars().all()
    assert reasons[:3] == ["value missing or not finite"] * 3 and reasons[3].startswith("series set aside")
    steps.commit_pull(settings, "r2", pulled)
    delete(engine, "series_id = 'BAD' AND value IS NULL")  # the operator fixes it: the next pull takes it in
    fixed = steps.pull_step(settings, "r3")
    assert fixed.series_set_aside == 0 and (store(settings).series_id == "BAD").sum() == 1
    summary = {"pull": pulled.as_dict()}
    assert "set aside BAD: 3 of 4 rows unusable" in steps.format_summary(
        {**summary, "run_id": "r", "model": "m", "reason": "x", "series_read": 9, "rows_read": 1, "frequency": "MS", "series_forecast": 8,
         "series_skipped": 0, "champion_version": 1, "rows_sql": 0, "rows_parquet": 0, "database": "db", "parquet": "p"}
    )


def test_a_far_future_row_is_quarantined_and_moves_no_watermark(project):
    """Issue 12, point 2: a row dated 2099 moved the one watermark; later real rows were never pulled."""
    settings, engine = project()
    committed(settings, engine)
    insert(engine, ("S00", "2099-01-01 00:00:00", 1.0))
    pulled = steps.pull_step(settings, "r2")
    assert pulled.quarantined == 1 and pulled.watermark == "2023-12-01T00:00:00"
    steps.commit_pull(settings, "r2", pulled)
    with engine.connect() as connection:
        assert "source.max_future" in connection.execute(sa.text("SELECT reason FROM quarantine")).scalar()
    delete(engine, "ts > '2090-01-01'")
    next_month(engine)
    later = steps.pull_step(settings, "r3")
    assert later.rows_new == 8
    stored = store(settings)
    assert stored.ts.max() == pd.Timestamp("2024-01-01") and len(stored) == 8 * 49


def test_a_deleted_future_row_leaves_the_store_even_when_max_future_allowed_it(project):
    settings, engine = project(max_future="36500D")
    committed(settings, engine)
    insert(engine, ("S00", "2099-01-01 00:00:00", 1.0))
    steps.commit_pull(settings, "r2", steps.pull_step(settings, "r2"))
    assert store(settings).ts.max() == pd.Timestamp("2099-01-01")
    delete(engine, "ts > '2090-01-01'")
    next_month(engine)
    pulled = steps.pull_step(settings, "r3")
    assert (pulled.rows_new, pulled.rows_removed) == (8, 1)
    assert store(settings).ts.max() == pd.Timestamp("2024-01-01") and pulled.watermark == "2024-01-01T00:00:00"


def test_a_new_series_keeps_its_whole_history(project):
    """Issue 12, point 2: a new series loaded with 60 months kept only its 2 newest rows."""
    settings, engine = project()
    committed(settings, engine)
    next_month(engine)
    load_observations(engine, SourceConfig(), synthetic_frame(n_series=1, length=60, start="2019-02-01").assign(series_id="NEW1"))
    pulled = steps.pull_step(settings, "r2")
    assert (pulled.new_series, pulled.rows_new) == (1, 8 + 60)
    assert (store(settings).series_id == "NEW1").sum() == 60


def test_rows_and_series_deleted_from_the_source_leave_the_store(project):
    settings, engine = project()
    committed(settings, engine)
    delete(engine, "series_id = 'S01'")
    delete(engine, "series_id = 'S02' AND ts >= '2023-12-01'")  # the newest row
    delete(engine, "series_id = 'S03' AND ts >= '2021-05-01' AND ts < '2021-05-02'")  # one far back
    pulled = steps.pull_step(settings, "r2")
    assert (pulled.series_removed, pulled.rows_removed) == (1, 48 + 1 + 1)
    stored = store(settings)
    assert "S01" not in set(stored.series_id)
    assert stored[stored.series_id == "S02"].ts.max() == pd.Timestamp("2023-11-01")
    assert pd.Timestamp("2021-05-01") not in set(stored[stored.series_id == "S03"].ts)
    steps.commit_pull(settings, "r2", pulled)
    again = steps.pull_step(settings, "r3")  # nothing changed since: nothing read
    assert (again.rows_pulled, again.series_unchanged) == (0, 7)


def test_a_row_inserted_far_back_is_picked_up(project):
    settings, engine = project()
    frame = synthetic_frame()
    committed(settings, engine, frame[frame.ts != "2021-05-01"])
    insert(engine, ("S04", "2021-05-01 00:00:00", 7.0))
    pulled = steps.pull_step(settings, "r2")
    assert pulled.rows_new == 1 and pulled.series_read_whole == 1
    stored = store(settings)
    assert stored.loc[(stored.series_id == "S04") & (stored.ts == pd.Timestamp("2021-05-01")), "value"].item() == 7.0


def test_a_value_revised_far_back_is_picked_up_without_late_arrival(project):
    settings, engine = project()
    committed(settings, engine)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE observations SET value = -5 WHERE series_id = 'S06' AND ts < '2020-01-02'"))
    pulled = steps.pull_step(settings, "r2")
    assert (pulled.rows_revised, pulled.series_read_whole, pulled.series_unchanged) == (1, 1, 7)
    stored = store(settings)
    assert stored.loc[(stored.series_id == "S06") & (stored.ts == pd.Timestamp("2020-01-01")), "value"].item() == -5


def test_a_sharp_drop_in_series_fails_the_pull_unless_allowed(project):
    """Issue 12, point 1: a run read 2 of 30 series and went on with exit 0."""
    settings, engine = project()
    committed(settings, engine)
    before = store(settings)
    delete(engine, "series_id IN ('S01', 'S02', 'S03')")
    with pytest.raises(RunError, match=r"leave 5 series in the history store of 'observations', 38% fewer than the 8 .*S01, S02, S03.*raise source.max_series_drop \(now 20%\) or run with --allow-series-drop once"):
        steps.pull_step(settings, "r2")
    pd.testing.assert_frame_equal(store(settings), before)
    with pytest.raises(RunError, match="fewer than the 8"):
        steps.pull_step(settings, "r2", full_refresh=True)
    pd.testing.assert_frame_equal(store(settings), before)
    allowed = steps.pull_step(settings, "r3", allow_series_drop=True)
    assert allowed.series_removed == 3 and allowed.series_in_store == 5
    relaxed, _ = project(max_series_drop=0.5)
    delete(engine, "series_id = 'S04'")
    assert steps.pull_step(relaxed, "r4").series_in_store == 4  # 8 committed -> 4: 50% is allowed


def test_a_sharp_drop_in_source_rows_fails_the_pull_unless_allowed(project):
    """A DELETE that kept one row of every series (SQLite compares DATETIME text) emptied the histories."""
    settings, engine = project()
    committed(settings, engine)
    before = store(settings)
    delete(engine, "ts > '2021-06-01'")
    with pytest.raises(RunError, match=r"holds \d+ rows, \d+% fewer than the 384 of the last completed pull; nothing was changed"):
        steps.pull_step(settings, "r2")
    pd.testing.assert_frame_equal(store(settings), before)
    allowed = steps.pull_step(settings, "r3", allow_series_drop=True)
    assert allowed.series_in_store == 8 and allowed.rows_removed > 0


def test_an_incomplete_store_is_never_read_and_the_next_pull_rebuilds_it(project):
    settings, engine = project()
    committed(settings, engine)
    root = history.history_root(settings.storage_root, "observations")
    next(root.glob("g-*/bucket=*/part-0.parquet")).unlink()  # as a killed rebuild or a careless hand could leave it
    assert history.status(root) == "incomplete"
    with pytest.raises(RunError, match="is incomplete .* never read as if complete"):
        steps.prepare_data(engine, settings)
    pulled = steps.pull_step(settings, "r2")
    assert pulled.full_refresh and pulled.refresh_reason == "history store incomplete"
    assert history.status(root) == "complete" and store(settings).series_id.nunique() == 8


def test_a_store_from_before_manifests_is_rebuilt(project):
    settings, engine = project()
    committed(settings, engine)
    root = history.history_root(settings.storage_root, "observations")
    (root / "manifest.json").unlink()
    pulled = steps.pull_step(settings, "r2")
    assert pulled.full_refresh and len(store(settings)) == 8 * 48


def test_stale_series_are_not_forecast(project):
    settings, engine = project(stale_after=12)
    frame = synthetic_frame()
    committed(settings, engine, frame[(frame.series_id != "S00") | (frame.ts <= "2022-12-01")])
    data = steps.prepare_data(engine, settings, drop_stale=True)
    assert list(data.stale) == ["S00"] and "S00" not in data.arrays.timestamps and data.series_read == 8
    assert "S00" in steps.prepare_data(engine, settings).arrays.timestamps  # training still sees its history
    off, _ = project(stale_after=0)
    assert steps.prepare_data(engine, off, drop_stale=True).stale == {}


def test_a_changed_column_type_is_a_clear_error(project):
    settings, engine = project()
    load_observations(engine, SourceConfig(), synthetic_frame())
    pulled = steps.pull_step(settings, "r1")
    steps.commit_pull(settings, "r1", dataclasses.replace(pulled, columns={**pulled.columns, "value": "INTEGER"}))
    with pytest.raises(ConfigError, match=r"source.table: column 'value' of 'observations' changed type from INTEGER to .* --full-refresh"):
        steps.pull_step(settings, "r2")


def test_gap_policies():
    frame = pd.DataFrame({"series_id": "a", "ts": pd.date_range("2024-01-01", periods=5, freq="MS"), "value": [1.0, np.nan, 3.0, np.nan, np.nan]})
    assert fill_gaps(frame, "leave").value.isna().sum() == 3
    assert fill_gaps(frame, "interpolate").value.tolist()[:3] == [1.0, 2.0, 3.0]
    assert fill_gaps(frame, "interpolate").value.isna().sum() == 2  # only inside gaps
    assert fill_gaps(frame, "ffill").value.tolist() == [1.0, 1.0, 3.0, 3.0, 3.0]
    assert fill_gaps(frame, "zero").value.tolist() == [1.0, 0.0, 3.0, 0.0, 0.0]


def test_reads_in_several_chunks_give_what_the_source_holds(project, monkeypatch):
    from forecasting.history import ingestion

    monkeypatch.setattr(ingestion, "CHUNK", 3)
    settings, engine = project(late_arrival="40D")
    frame = synthetic_frame()
    committed(settings, engine, frame[(frame.series_id != "S07") | (frame.ts < "2023-06-01")])  # S07 ends earlier: its own window
    next_month(engine, series=range(7))
    insert(engine, *[("S07", f"2023-{month:02d}-01 00:00:00", 1.0) for month in range(6, 10)])
    load_observations(engine, SourceConfig(), synthetic_frame(n_series=4, length=20, seed=3).assign(series_id=lambda f: "NEW" + f.series_id))
    pulled = steps.pull_step(settings, "r2")
    assert pulled.series_read_window == 8 and pulled.series_read_whole == 4
    with engine.connect() as connection:
        source = pd.read_sql(sa.text("SELECT series_id, ts, value FROM observations ORDER BY series_id, ts"), connection)
    stored = store(settings)
    assert len(stored) == len(source) and (stored.value.to_numpy() == source.value.to_numpy()).all()
    assert (pd.to_datetime(source.ts, format="ISO8601").to_numpy() == stored.ts.to_numpy()).all()


def test_the_store_is_reconciled_with_the_source(project):
    """A series the state says was pulled but the store lacks is read again; one only the store holds goes."""
    settings, engine = project()
    committed(settings, engine)
    root = history.history_root(settings.storage_root, "observations")
    ghost = pd.DataFrame({"series_id": "GHOST", "ts": [pd.Timestamp("2023-12-01")], "value": [1.0]})
    history.merge(root, ghost, {"S02": None})  # S02 lost, GHOST added behind the pull's back
    pulled = steps.pull_step(settings, "r2")
    assert (pulled.series_read_whole, pulled.series_removed) == (1, 1)
    stored = store(settings)
    assert (stored.series_id == "S02").sum() == 48 and "GHOST" not in set(stored.series_id)
