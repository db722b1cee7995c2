"""Anomaly flags on arriving actuals: forecast_errors.interval_distance and .anomaly, and the view anomalies.

Rows scored before are filled in place: interval_distance from the 95% bounds of their forecast row in
`forecasts` (NULL where that row has none), anomaly on the newest origin's row of each period.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-14
"""

from importlib.resources import files

import sqlalchemy as sa
from alembic import op

from forecasting.sql.migrations.view_history import ANOMALIES_0010, FORECAST_VS_ACTUAL_0007

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

DEPENDENT_VIEWS = ("forecast_vs_actual", "accuracy_by_version_step", "accuracy_by_period")

KEY_MATCH = """f.model_name = forecast_errors.model_name AND f.series_id = forecast_errors.series_id
   AND f.forecast_origin = forecast_errors.forecast_origin AND f.target_ts = forecast_errors.target_ts"""

# Half-widths of the 95% band outside it (0 inside; NULL without a band or with a zero-width one), as
# forecasting.evaluation.live_accuracy.interval_distance computes it for new rows.
FILL_DISTANCE = f"""
UPDATE forecast_errors SET interval_distance = (
    SELECT CASE
        WHEN f.yhat_lower_95 IS NULL OR f.yhat_upper_95 IS NULL THEN NULL
        WHEN forecast_errors.actual >= f.yhat_lower_95 AND forecast_errors.actual <= f.yhat_upper_95 THEN 0.0
        WHEN f.yhat_upper_95 <= f.yhat_lower_95 THEN NULL
        WHEN forecast_errors.actual > f.yhat_upper_95
            THEN (forecast_errors.actual - f.yhat_upper_95) / ((f.yhat_upper_95 - f.yhat_lower_95) / 2.0)
        ELSE (f.yhat_lower_95 - forecast_errors.actual) / ((f.yhat_upper_95 - f.yhat_lower_95) / 2.0)
    END
    FROM forecasts AS f
    WHERE {KEY_MATCH}
)
"""

# The same rule as forecasting.steps.scoring.flag_anomalies.
FILL_ANOMALY = """
UPDATE forecast_errors SET anomaly = CASE
    WHEN forecast_origin = (
        SELECT MAX(o.forecast_origin) FROM forecast_errors AS o
        WHERE o.model_name = forecast_errors.model_name AND o.series_id = forecast_errors.series_id
          AND o.target_ts = forecast_errors.target_ts
    ) THEN NOT inside_95
    ELSE NULL
END
"""


def upgrade() -> None:
    with op.batch_alter_table("forecast_errors") as batch:
        batch.add_column(sa.Column("interval_distance", sa.Float()))
        batch.add_column(sa.Column("anomaly", sa.Boolean()))
    columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("forecasts")}
    if {"yhat_lower_95", "yhat_upper_95"} <= columns:
        op.execute(FILL_DISTANCE)
    op.execute(FILL_ANOMALY)
    op.execute("DROP VIEW IF EXISTS anomalies")
    op.execute(ANOMALIES_0010)  # as it was then: sql/views/anomalies.sql now reads forecasts.method (0011)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS anomalies")
    for view in DEPENDENT_VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {view}")
    with op.batch_alter_table("forecast_errors") as batch:
        batch.drop_column("anomaly")
        batch.drop_column("interval_distance")
    op.execute(FORECAST_VS_ACTUAL_0007)
    for view in DEPENDENT_VIEWS[1:]:
        op.execute(files("forecasting.sql").joinpath(f"views/{view}.sql").read_text())
