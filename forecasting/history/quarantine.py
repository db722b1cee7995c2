"""The quarantine table: each unusable source row stored once, with when it was first and last seen.

A quarantined row is identified by (source, series_id, ts, reason): `row_key` is a SHA-256 digest of
the JSON list [series_id, ts in ISO form, reason], with JSON null for a missing series id or time, so
a key is always present and NOT NULL (SQL unique indexes treat NULLs as distinct, which would let a
row without a series id or time be inserted again on every pull), "None" as text and a missing value
never collide, and the unique index on (source, row_key) stays small however long the reason is.
Rows the pull re-reads (the `late_arrival` window, the plan rows of `future_features`) are upserted:
`last_run_id`, `last_seen_at`, `seen_count` and `value` move; `run_id` and `created_at` stay those of
the run that first saw the row. A row that a pull re-read and found usable (fixed, or deleted from
the source) is marked resolved (`resolved_run_id`, `resolved_at`) and kept as history; it becomes
current again if it turns bad again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from forecasting.sources.tables import quarantine

CHUNK = 500  # rows per statement (SQLite before 3.32 allows 999 parameters)


def row_key(series_id: Any, ts: Any, reason: str) -> str:
    """The digest identifying a quarantined row of a source (migration 0008 computes the same)."""
    series = None if series_id is None or (isinstance(series_id, float) and np.isnan(series_id)) else str(series_id)
    stamp = None if ts is None or pd.isna(ts) else pd.Timestamp(ts).to_pydatetime().isoformat()
    return hashlib.sha256(json.dumps([series, stamp, str(reason)]).encode()).hexdigest()


def _insert(connection: Connection) -> Any:
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(quarantine)


def record(engine: Engine, source: str, run_id: str, rows: pd.DataFrame, examined: Examined, now: Any) -> None:
    """Upsert this pull's quarantined `rows` (series_id, ts, value, reason) of `source`, and mark the
    current rows this pull re-read (`examined`) but did not quarantine again as resolved."""
    values = []
    for row in rows.itertuples():
        ts = None if pd.isna(row.ts) else pd.Timestamp(row.ts).to_pydatetime()
        values.append({
            "run_id": run_id, "source": source, "series_id": None if pd.isna(row.series_id) else str(row.series_id), "ts": ts,
            "value": row.value, "reason": row.reason, "created_at": now, "row_key": row_key(row.series_id, ts, row.reason),
            "last_run_id": run_id, "last_seen_at": now, "seen_count": 1, "resolved_run_id": None, "resolved_at": None,
        })
    values = list({v["row_key"]: v for v in values}.values())  # one statement may not touch a row twice
    keys = {v["row_key"] for v in values}
    with engine.begin() as connection:
        if values:
            statement = _insert(connection)
            q = quarantine.c
            statement = statement.on_conflict_do_update(
                index_elements=[q.source, q.row_key],
                set_={
                    "value": statement.excluded.value, "last_run_id": statement.excluded.last_run_id,
                    "last_seen_at": statement.excluded.last_seen_at, "resolved_run_id": None, "resolved_at": None,
                    # A run retried after a failure re-reads the same rows: counted once.
                    "seen_count": sa.case((q.last_run_id == statement.excluded.last_run_id, q.seen_count), else_=q.seen_count + 1),
                },
            )
            for start in range(0, len(values), CHUNK):
                connection.execute(statement, values[start : start + CHUNK])
        _resolve(connection, source, run_id, keys, examined, now)


class Examined:
    """Which stored quarantine rows a pull re-read: all (a full refresh), or per series the whole
    series (`whole`, series gone from the source included) or its rows after a time (`after`), and
    whether it read every row without a series id (`unkeyed`)."""

    def __init__(self, everything: bool, whole: Iterable[str] = (), after: Mapping[str, Any] | None = None, unkeyed: bool = False) -> None:
        self.everything = everything
        self.unkeyed = unkeyed
        self.whole = {str(s) for s in whole}
        self.after = {str(s): pd.Timestamp(t) for s, t in (after or {}).items() if t is not None and not pd.isna(t)}

    def covers(self, series_id: Any, ts: Any) -> bool:
        """Whether the pull re-read the source row at (series_id, ts)."""
        if self.everything:
            return True
        if series_id is None:
            return self.unkeyed
        if str(series_id) in self.whole:
            return True
        bound = self.after.get(str(series_id))
        return bound is not None and ts is not None and not pd.isna(ts) and pd.Timestamp(ts) > bound


def _resolve(connection: Connection, source: str, run_id: str, current: set[str], examined: Examined, now: Any) -> None:
    fixed = [row for row in open_rows(connection, source) if row.row_key not in current and examined.covers(row.series_id, row.ts)]
    mark_resolved(connection, run_id, fixed, now)


def open_rows(connection: Connection, source: str) -> list[Any]:
    """The source's current (unresolved) quarantine rows: id, series_id, ts, row_key and when last seen by whom."""
    q = quarantine.c
    return connection.execute(
        sa.select(q.id, q.series_id, q.ts, q.row_key, q.last_run_id, q.last_seen_at).where(q.source == source, q.resolved_at.is_(None))
    ).fetchall()


def mark_resolved(connection: Connection, run_id: str, rows: list[Any], now: Any) -> None:
    """Mark these `open_rows` resolved, each only while no other pull has seen it since it was read (a
    run pulling the same source at once may just have quarantined it again); in id order, so two runs
    lock rows in the same order."""
    q = quarantine.c
    statement = (
        sa.update(quarantine)
        .where(q.id == sa.bindparam("row_id"), q.last_run_id == sa.bindparam("seen_run"), q.last_seen_at == sa.bindparam("seen_at"), q.resolved_at.is_(None))
        .values(resolved_run_id=run_id, resolved_at=now)
    )
    params = [{"row_id": row.id, "seen_run": row.last_run_id, "seen_at": row.last_seen_at} for row in sorted(rows, key=lambda row: row.id)]
    for start in range(0, len(params), CHUNK):
        connection.execute(statement, params[start : start + CHUNK])
