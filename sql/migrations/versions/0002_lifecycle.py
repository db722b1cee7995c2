"""Model lifecycle: promotion scores on versions, champion history, tuning records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("mode", sa.String(20)))
        batch.add_column(sa.Column("holdout_metric", sa.String(20)))
        batch.add_column(sa.Column("holdout_score", sa.Float()))
        batch.add_column(sa.Column("champion_score", sa.Float()))
        batch.add_column(sa.Column("baseline_score", sa.Float()))
        batch.add_column(sa.Column("decision", sa.Text()))
        batch.add_column(sa.Column("tuning_record", sa.Integer()))
    op.create_table(
        "model_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("from_version", sa.Integer()),
        sa.Column("to_version", sa.Integer()),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.Text()),
    )
    op.create_index("ix_model_events_model", "model_events", ["model_name", "id"])
    op.create_table(
        "tuning_records",
        sa.Column("model_name", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("tuner", sa.String(20), nullable=False),
        sa.Column("hyperparameters", sa.Text(), nullable=False),
        sa.Column("best_score", sa.Float()),
        sa.Column("trials", sa.Integer()),
        sa.Column("directory", sa.Text()),
    )


def downgrade() -> None:
    op.drop_table("tuning_records")
    op.drop_index("ix_model_events_model", table_name="model_events")
    op.drop_table("model_events")
    with op.batch_alter_table("model_versions") as batch:
        for name in ("tuning_record", "decision", "baseline_score", "champion_score", "holdout_score", "holdout_metric", "mode"):
            batch.drop_column(name)
