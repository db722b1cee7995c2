"""Per-series ingestion state: what the last committed pull saw of each series in the source.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingestion_series",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("series_id", sa.String(200), primary_key=True),
        sa.Column("source_rows", sa.Integer(), nullable=False),
        sa.Column("source_first", sa.DateTime()),
        sa.Column("source_last", sa.DateTime()),
        sa.Column("reread_from", sa.DateTime()),
        sa.Column("rows_before", sa.Integer()),
        sa.Column("source_sum", sa.Float()),
        sa.Column("sum_before", sa.Float()),
        sa.Column("last_ts", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("run_id", sa.String(64)),
    )


def downgrade() -> None:
    op.drop_table("ingestion_series")
