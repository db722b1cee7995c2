"""Run records: deployment, trigger and duration of each run.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("deployment", sa.String(200)))
        batch.add_column(sa.Column("trigger", sa.String(20)))
        batch.add_column(sa.Column("duration_seconds", sa.Float()))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name in ("duration_seconds", "trigger", "deployment"):
            batch.drop_column(name)
