"""Initial schema: observations, forecasts, model registry, runs, forecast_latest view.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


FORECAST_LATEST = """
CREATE VIEW forecast_latest AS
SELECT f.*
FROM forecasts AS f
JOIN (
    SELECT model_name, series_id, MAX(forecast_origin) AS forecast_origin
    FROM forecasts
    GROUP BY model_name, series_id
) AS latest
  ON f.model_name = latest.model_name
 AND f.series_id = latest.series_id
 AND f.forecast_origin = latest.forecast_origin
"""


def upgrade() -> None:
    # A table (or view) the user made under the default source table's name before `init` is their
    # source, used as it is (`forecasting.sources.schema.migrate` checked its columns first). Where the
    # configured source is another table, the default one is not created at all (it would stay empty).
    wanted = context.config.attributes.get("create_default_source", True)
    if wanted and not sa.inspect(op.get_bind()).has_table("observations"):
        op.create_table(
            "observations",
            sa.Column("series_id", sa.String(200), primary_key=True),
            sa.Column("ts", sa.DateTime(), primary_key=True),
            sa.Column("value", sa.Float(), nullable=True),
        )
    op.create_table(
        "forecasts",
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.String(200), nullable=False),
        sa.Column("forecast_origin", sa.DateTime(), nullable=False),
        sa.Column("target_ts", sa.DateTime(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("yhat", sa.Float(), nullable=False),
        sa.Column("yhat_lower_80", sa.Float()),
        sa.Column("yhat_upper_80", sa.Float()),
        sa.Column("yhat_lower_95", sa.Float()),
        sa.Column("yhat_upper_95", sa.Float()),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("model_name", "series_id", "forecast_origin", "target_ts", name="pk_forecasts"),
    )
    op.create_index("ix_forecasts_model_origin", "forecasts", ["model_name", "forecast_origin"])
    op.create_table(
        "model_versions",
        sa.Column("model_name", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("cell", sa.String(10), nullable=False),
        sa.Column("artifact_path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("format_version", sa.Integer(), nullable=False),
        sa.Column("data_watermark", sa.DateTime()),
        sa.Column("train_start", sa.DateTime()),
        sa.Column("train_end", sa.DateTime()),
        sa.Column("parent_version", sa.Integer()),
        sa.Column("metrics", sa.Text()),
    )
    op.create_table(
        "model_aliases",
        sa.Column("model_name", sa.String(64), primary_key=True),
        sa.Column("alias", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("flow_run_id", sa.String(64)),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime()),
        sa.Column("champion_version", sa.Integer()),
        sa.Column("produced_version", sa.Integer()),
        sa.Column("series_read", sa.Integer()),
        sa.Column("series_forecast", sa.Integer()),
        sa.Column("series_skipped", sa.Integer()),
        sa.Column("rows_sql", sa.Integer()),
        sa.Column("rows_parquet", sa.Integer()),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_runs_model_started", "runs", ["model_name", "started_at"])
    op.execute(FORECAST_LATEST)  # as it was then: sql/views/forecast_latest.sql now reads later tables (0009)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS forecast_latest")
    op.drop_table("runs")
    op.drop_table("model_aliases")
    op.drop_table("model_versions")
    op.drop_index("ix_forecasts_model_origin", table_name="forecasts")
    op.drop_table("forecasts")
    if sa.inspect(op.get_bind()).has_table("observations"):
        op.drop_table("observations")
