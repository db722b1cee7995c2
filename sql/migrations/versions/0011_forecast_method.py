"""How each forecast row was made: forecasts.method (`network`, `short_history`, `constant`), and the
views that list forecast columns show it.

Rows written before are filled in place: `constant` where their 95% interval has zero width at the
forecast (a constant series, `prediction.constant_value`), `network` otherwise; no row before this
migration came from a padded window (series shorter than the lookback were skipped).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from importlib.resources import files

import sqlalchemy as sa
from alembic import op

from forecasting.sql.migrations.view_history import ANOMALIES_0010, FORECAST_VS_ACTUAL_0007

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The views on forecasts: forecast_latest selects f.* (PostgreSQL expands it when the view is made); the others name method.
VIEWS = ("forecast_latest", "forecast_vs_actual", "anomalies")

FILL_CONSTANT = """
UPDATE forecasts SET method = 'constant'
WHERE yhat_lower_95 IS NOT NULL AND yhat_lower_95 = yhat AND yhat_upper_95 = yhat
"""


def _recreate(views: tuple[str, ...]) -> None:
    for view in views:
        op.execute(files("forecasting.sql").joinpath(f"views/{view}.sql").read_text())


def upgrade() -> None:
    for view in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {view}")
    op.add_column("forecasts", sa.Column("method", sa.String(32), nullable=False, server_default="network"))
    columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("forecasts")}
    if {"yhat_lower_95", "yhat_upper_95"} <= columns:
        op.execute(FILL_CONSTANT)
    _recreate(VIEWS)


def downgrade() -> None:
    for view in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {view}")
    with op.batch_alter_table("forecasts") as batch:
        batch.drop_column("method")
    _recreate(("forecast_latest",))
    op.execute(FORECAST_VS_ACTUAL_0007)
    op.execute(ANOMALIES_0010)
