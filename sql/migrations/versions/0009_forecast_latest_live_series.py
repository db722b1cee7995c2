"""forecast_latest leaves out series the source no longer holds (deleted or renamed there), once a
committed pull has seen them gone; their rows stay in `forecasts`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from importlib.resources import files

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OLD_FORECAST_LATEST = """
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
    op.execute("DROP VIEW IF EXISTS forecast_latest")
    op.execute(files("forecasting.sql").joinpath("views/forecast_latest.sql").read_text())


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS forecast_latest")
    op.execute(OLD_FORECAST_LATEST)
