"""Quarantine rows stored once: a NULL-safe row key unique per source, first/last seen, resolution.

Existing duplicates (the same source row quarantined again by every pull that re-read it) are
collapsed into one row per (source, series_id, ts, reason): the earliest is kept with its run_id and
created_at (first seen); last_run_id, last_seen_at and value come from the latest; seen_count is the
number of runs that quarantined it.

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

CHUNK = 500


def _row_key(series_id, ts, reason) -> str:
    # Frozen copy of forecasting.quarantine.row_key: the rows pulls upsert must find these keys.
    stamp = None if ts is None else (ts if isinstance(ts, datetime) else datetime.fromisoformat(str(ts))).isoformat()
    return hashlib.sha256(json.dumps([None if series_id is None else str(series_id), stamp, str(reason)]).encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("row_key", sa.String(64)))
        batch.add_column(sa.Column("last_run_id", sa.String(64)))
        batch.add_column(sa.Column("last_seen_at", sa.DateTime()))
        batch.add_column(sa.Column("seen_count", sa.Integer()))
        batch.add_column(sa.Column("resolved_run_id", sa.String(64)))
        batch.add_column(sa.Column("resolved_at", sa.DateTime()))
    table = sa.table(
        "quarantine", sa.column("id", sa.Integer()), sa.column("run_id", sa.String()), sa.column("source", sa.String()),
        sa.column("series_id", sa.String()), sa.column("ts", sa.DateTime()), sa.column("value", sa.Text()),
        sa.column("reason", sa.Text()), sa.column("created_at", sa.DateTime()), sa.column("row_key", sa.String()),
        sa.column("last_run_id", sa.String()), sa.column("last_seen_at", sa.DateTime()), sa.column("seen_count", sa.Integer()),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(table.c.id, table.c.run_id, table.c.source, table.c.series_id, table.c.ts, table.c.value, table.c.reason, table.c.created_at)
        .order_by(table.c.created_at, table.c.id)
    ).fetchall()
    groups: dict[tuple[str, str], list] = {}
    for row in rows:
        groups.setdefault((row.source, _row_key(row.series_id, row.ts, row.reason)), []).append(row)
    duplicates, kept = [], []
    for (_source, key), group in groups.items():
        first, last = group[0], group[-1]
        kept.append({
            "keep": first.id, "key": key, "last_run": last.run_id, "last_seen": last.created_at, "last_value": last.value,
            "seen": len({row.run_id for row in group}),
        })
        duplicates += [row.id for row in group[1:]]
    update = sa.update(table).where(table.c.id == sa.bindparam("keep")).values(
        row_key=sa.bindparam("key"), last_run_id=sa.bindparam("last_run"), last_seen_at=sa.bindparam("last_seen"),
        value=sa.bindparam("last_value"), seen_count=sa.bindparam("seen"),
    )
    for start in range(0, len(kept), CHUNK):
        connection.execute(update, kept[start : start + CHUNK])
    for start in range(0, len(duplicates), CHUNK):
        connection.execute(sa.delete(table).where(table.c.id.in_(duplicates[start : start + CHUNK])))
    with op.batch_alter_table("quarantine") as batch:
        for name, kind in (("row_key", sa.String(64)), ("last_run_id", sa.String(64)), ("last_seen_at", sa.DateTime()), ("seen_count", sa.Integer())):
            batch.alter_column(name, existing_type=kind, nullable=False)
    op.create_index("ux_quarantine_source_row", "quarantine", ["source", "row_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_quarantine_source_row", table_name="quarantine")
    with op.batch_alter_table("quarantine") as batch:
        for name in ("resolved_at", "resolved_run_id", "seen_count", "last_seen_at", "last_run_id", "row_key"):
            batch.drop_column(name)
