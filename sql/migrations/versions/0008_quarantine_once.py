"""Quarantine rows stored once: a NULL-safe row key unique per source, first/last seen, resolution.

Existing duplicates (the same source row quarantined again by every pull that re-read it) are
collapsed into one row per (source, series_id, ts, reason): the earliest is kept with its run_id and
created_at (first seen); last_run_id, last_seen_at and value come from the latest; seen_count is the
number of runs that quarantined it. Reasons of rows past max_future written under 0007 held the
run's time ("timestamp later than <time> (source.max_future after the run's time)"), a different
text every run: they get the stable text first, so they collapse too. The collapse is done in SQL
(window functions: SQLite >= 3.25); only the row keys are computed here, a batch of rows at a time.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

import hashlib
import json
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BATCH = 5000
STABLE_LATE = "timestamp later than the run's time plus source.max_future"
# Under 0007: f"timestamp later than {latest_allowed} (source.max_future after the run's time)".
OLD_LATE = ("timestamp later than %", "% (source.max!_future after the run''s time)")
GROUP = "PARTITION BY source, series_id, ts, reason"  # NULLs are equal in a partition


def _row_key(series_id, ts, reason) -> str:
    # Frozen copy of forecasting.history.quarantine.row_key: the rows pulls upsert must find these keys.
    stamp = None if ts is None else (ts if isinstance(ts, datetime) else datetime.fromisoformat(str(ts))).isoformat()
    return hashlib.sha256(json.dumps([None if series_id is None else str(series_id), stamp, str(reason)]).encode()).hexdigest()


def _collapse(connection) -> None:
    """One row per (source, series_id, ts, reason): the first seen kept, the others' last run, time,
    value and number of runs folded into it."""
    run = lambda sql, **params: connection.execute(sa.text(sql), params)  # noqa: E731
    run(
        f"UPDATE quarantine SET reason = :stable WHERE reason LIKE '{OLD_LATE[0]}' AND reason LIKE '{OLD_LATE[1]}' ESCAPE '!'",
        stable=STABLE_LATE,
    )
    run("UPDATE quarantine SET last_run_id = run_id, last_seen_at = created_at, seen_count = 1")
    run(
        "CREATE TEMPORARY TABLE quarantine_0008_rank AS SELECT id, run_id, created_at, value, "
        f"FIRST_VALUE(id) OVER ({GROUP} ORDER BY created_at, id) AS keep_id, "
        f"ROW_NUMBER() OVER ({GROUP} ORDER BY created_at DESC, id DESC) AS from_last, "
        f"COUNT(*) OVER ({GROUP}) AS group_rows FROM quarantine"
    )
    run("DELETE FROM quarantine_0008_rank WHERE group_rows = 1")
    run(
        "CREATE TEMPORARY TABLE quarantine_0008_kept (id INTEGER PRIMARY KEY, last_run_id VARCHAR(64), "
        "last_seen_at TIMESTAMP, value TEXT, seen_count INTEGER)"
    )
    run(
        "INSERT INTO quarantine_0008_kept (id, last_run_id, last_seen_at, value, seen_count) "
        "SELECT r.keep_id, r.run_id, r.created_at, r.value, s.seen FROM quarantine_0008_rank r JOIN "
        "(SELECT keep_id, COUNT(DISTINCT run_id) AS seen FROM quarantine_0008_rank GROUP BY keep_id) s ON s.keep_id = r.keep_id "
        "WHERE r.from_last = 1"
    )
    fold = ", ".join(f"{name} = (SELECT k.{name} FROM quarantine_0008_kept k WHERE k.id = quarantine.id)" for name in ("last_run_id", "last_seen_at", "value", "seen_count"))
    run(f"UPDATE quarantine SET {fold} WHERE id IN (SELECT id FROM quarantine_0008_kept)")
    run("DELETE FROM quarantine WHERE id IN (SELECT id FROM quarantine_0008_rank WHERE id <> keep_id)")
    run("DROP TABLE quarantine_0008_kept")
    run("DROP TABLE quarantine_0008_rank")


def _fill_row_keys(connection) -> None:
    """row_key of every (kept) row, BATCH rows at a time in id order: never the whole table in memory."""
    table = sa.table(
        "quarantine", sa.column("id", sa.Integer()), sa.column("series_id", sa.String()), sa.column("ts", sa.DateTime()),
        sa.column("reason", sa.Text()), sa.column("row_key", sa.String()),
    )
    update = sa.update(table).where(table.c.id == sa.bindparam("row_id")).values(row_key=sa.bindparam("key"))
    last = None
    while True:
        query = sa.select(table.c.id, table.c.series_id, table.c.ts, table.c.reason).order_by(table.c.id).limit(BATCH)
        rows = connection.execute(query if last is None else query.where(table.c.id > last)).fetchall()
        if not rows:
            return
        connection.execute(update, [{"row_id": row.id, "key": _row_key(row.series_id, row.ts, row.reason)} for row in rows])
        last = rows[-1].id


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("row_key", sa.String(64)))
        batch.add_column(sa.Column("last_run_id", sa.String(64)))
        batch.add_column(sa.Column("last_seen_at", sa.DateTime()))
        batch.add_column(sa.Column("seen_count", sa.Integer()))
        batch.add_column(sa.Column("resolved_run_id", sa.String(64)))
        batch.add_column(sa.Column("resolved_at", sa.DateTime()))
    connection = op.get_bind()
    _collapse(connection)
    _fill_row_keys(connection)
    with op.batch_alter_table("quarantine") as batch:
        for name, kind in (("row_key", sa.String(64)), ("last_run_id", sa.String(64)), ("last_seen_at", sa.DateTime()), ("seen_count", sa.Integer())):
            batch.alter_column(name, existing_type=kind, nullable=False)
    op.create_index("ux_quarantine_source_row", "quarantine", ["source", "row_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_quarantine_source_row", table_name="quarantine")
    with op.batch_alter_table("quarantine") as batch:
        for name in ("resolved_at", "resolved_run_id", "seen_count", "last_seen_at", "last_run_id", "row_key"):
            batch.drop_column(name)
