"""Forecast accuracy as actuals arrive: table forecast_errors and the accuracy views.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from importlib.resources import files

import sqlalchemy as sa
from alembic import op

from forecasting.sql.migrations.view_history import FORECAST_VS_ACTUAL_0007

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

VIEWS = ("forecast_vs_actual", "accuracy_by_version_step", "accuracy_by_period")


def upgrade() -> None:
    op.create_table(
        "forecast_errors",
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.String(200), nullable=False),
        sa.Column("forecast_origin", sa.DateTime(), nullable=False),
        sa.Column("target_ts", sa.DateTime(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("yhat", sa.Float(), nullable=False),
        sa.Column("actual", sa.Float(), nullable=False),
        sa.Column("error", sa.Float(), nullable=False),
        sa.Column("abs_error", sa.Float(), nullable=False),
        sa.Column("smape_term", sa.Float(), nullable=False),
        sa.Column("scale", sa.Float()),
        sa.Column("scaled_error", sa.Float()),
        sa.Column("inside_80", sa.Boolean()),
        sa.Column("inside_95", sa.Boolean()),
        sa.Column("naive_yhat", sa.Float()),
        sa.Column("naive_error", sa.Float()),
        sa.Column("naive_abs_error", sa.Float()),
        sa.Column("naive_smape_term", sa.Float()),
        sa.Column("naive_scaled_error", sa.Float()),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("scored_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("model_name", "series_id", "forecast_origin", "target_ts", name="pk_forecast_errors"),
    )
    op.create_index("ix_forecast_errors_model_target", "forecast_errors", ["model_name", "target_ts"])
    op.execute(FORECAST_VS_ACTUAL_0007)  # as it was then: sql/views/forecast_vs_actual.sql now reads forecasts.method (0011)
    for view in VIEWS[1:]:
        op.execute(files("forecasting.sql").joinpath(f"views/{view}.sql").read_text())


def downgrade() -> None:
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    op.drop_index("ix_forecast_errors_model_target", table_name="forecast_errors")
    op.drop_table("forecast_errors")
