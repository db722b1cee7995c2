"""Rolling-origin backtest scores.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backtests",
        sa.Column("backtest_id", sa.String(32), primary_key=True),
        sa.Column("window_number", sa.Integer(), primary_key=True),
        sa.Column("method", sa.String(20), primary_key=True),
        sa.Column("step", sa.Integer(), primary_key=True),
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("model_version", sa.Integer()),
        sa.Column("run_id", sa.String(64)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("forecast_origin", sa.DateTime()),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("step_size", sa.Integer(), nullable=False),
        sa.Column("series", sa.Integer()),
        sa.Column("mae", sa.Float()),
        sa.Column("rmse", sa.Float()),
        sa.Column("smape", sa.Float()),
        sa.Column("mase", sa.Float()),
        sa.Column("intervals", sa.Text()),
    )
    op.create_index("ix_backtests_model", "backtests", ["model_name", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_backtests_model", table_name="backtests")
    op.drop_table("backtests")
