"""Issue 27, point 7: a plan row (target empty, future features set) meets its arriving actual. Both
ways work: the plan row UPDATEd with its value, or a new row INSERTed beside it; where both rows are in
the source the one with a value wins, whichever the source returns first; between two rows with
values, the last read wins (the existing rule: `validation.duplicated_keys`)."""

import numpy as np
import pandas as pd
import sqlalchemy as sa

from forecasting import steps
from forecasting.history import store as history
from forecasting.preparation.validation import duplicated_keys
from forecasting.sources.database import create_db_engine
from forecasting.sources.schema import migrate

FIRST_PLANNED = pd.Timestamp("2020-01-01")


def source_with_plans(database_url, settings_for):
    """A source table `sales` of the user's own, without a key on (series, time), so a second row for one
    period can be inserted: 4 series observed for 24 months, then 3 planned months (promo set, value NULL)."""
    settings, _ = settings_for(database_url, source={"table": "sales", "frequency": "MS", "future_features": ["promo"]})
    engine = create_db_engine(settings.database.url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE sales (series_id VARCHAR(200), ts TIMESTAMP, value DOUBLE PRECISION, promo DOUBLE PRECISION)"))
    migrate(engine, source=settings.source)
    rng = np.random.default_rng(7)
    rows = []
    for series in ("A", "B", "C", "D"):
        for month, ts in enumerate(pd.date_range("2018-01-01", periods=27, freq="MS")):
            rows.append({"s": series, "t": ts.to_pydatetime(), "v": None if month >= 24 else float(100 + rng.normal()), "p": float(month % 4 == 0)})
    insert(engine, rows)
    return settings, engine


def insert(engine, rows):
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO sales (series_id, ts, value, promo) VALUES (:s, :t, :v, :p)"), rows)


def pull(settings, run_id):
    result = steps.pull_step(settings, run_id)
    steps.commit_pull(settings, run_id, result)
    return result


def test_an_arriving_actual_replaces_its_plan_row_whether_updated_or_inserted(database_url, settings_for):
    settings, engine = source_with_plans(database_url, settings_for)
    first = pull(settings, "r1")
    store = history.read(history.history_root(settings.storage_root, "sales"))
    assert first.quarantined == 0 and int(store["value"].isna().sum()) == 4 * 3  # the plans are future rows
    with engine.connect() as connection:
        assert not sa.inspect(connection).has_table("observations")  # issue 27.8c: no unused default table

    when = FIRST_PLANNED.to_pydatetime()
    with engine.begin() as connection:  # A: the plan row UPDATEd with its value
        connection.execute(sa.text("UPDATE sales SET value = 111.0 WHERE series_id = 'A' AND ts = :t"), {"t": when})
    insert(engine, [{"s": "B", "t": when, "v": 222.0, "p": 0.0}])  # B: a new row INSERTed after the plan row
    with engine.begin() as connection:  # C: the actual's row read before the plan row (the plan row re-sent after it)
        connection.execute(sa.text("DELETE FROM sales WHERE series_id = 'C' AND ts = :t"), {"t": when})
    insert(engine, [{"s": "C", "t": when, "v": 333.0, "p": 0.0}, {"s": "C", "t": when, "v": None, "p": 0.0}])
    second = pull(settings, "r2")

    store = history.read(history.history_root(settings.storage_root, "sales"))
    at = store[store["ts"] == FIRST_PLANNED].set_index("series_id")
    assert not store.duplicated(["series_id", "ts"]).any()
    assert at["value"].drop("D").to_dict() == {"A": 111.0, "B": 222.0, "C": 333.0} and np.isnan(at.loc["D", "value"])
    assert second.quarantined == 0 and second.duplicates == 2
    assert pd.Timestamp(second.watermark) == FIRST_PLANNED
    data = steps.prepare_data(engine, settings)  # the arrived month is an observation, the other plans stay future rows
    assert {sid: len(values) for sid, values in data.arrays.values.items()} == {"A": 25, "B": 25, "C": 25, "D": 24}
    assert len(data.arrays.future["A"]) == 2 and len(data.arrays.future["D"]) == 3


def test_which_row_of_one_series_and_time_is_kept():
    nan = float("nan")
    frame = pd.DataFrame({
        "series_id": ["plan-first", "plan-first", "plan-last", "plan-last", "two-values", "two-values", "single"],
        "ts": pd.to_datetime(["2020-01-01"] * 7),
        "value": [nan, 1.0, 2.0, nan, 3.0, 4.0, 5.0],
    })
    kept = frame.loc[~duplicated_keys(frame)]
    assert kept.set_index("series_id")["value"].to_dict() == {"plan-first": 1.0, "plan-last": 2.0, "two-values": 4.0, "single": 5.0}
