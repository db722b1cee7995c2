"""Incremental ingestion: pull watermarks per source, quarantined rows, pull counts on runs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingestion_state",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("watermark", sa.DateTime()),
        sa.Column("frequency", sa.String(20)),
        sa.Column("columns", sa.Text()),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("run_id", sa.String(64)),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("series_id", sa.String(200)),
        sa.Column("ts", sa.DateTime()),
        sa.Column("value", sa.Text()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_quarantine_run", "quarantine", ["run_id"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("rows_pulled", sa.Integer()))
        batch.add_column(sa.Column("new_series", sa.Integer()))
        batch.add_column(sa.Column("revised_values", sa.Integer()))
        batch.add_column(sa.Column("quarantined", sa.Integer()))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name in ("quarantined", "revised_values", "new_series", "rows_pulled"):
            batch.drop_column(name)
    op.drop_index("ix_quarantine_run", table_name="quarantine")
    op.drop_table("quarantine")
    op.drop_table("ingestion_state")
