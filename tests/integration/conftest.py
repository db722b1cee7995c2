"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from forecasting.sources.database import create_db_engine
from forecasting.sources.loading import load_observations
from forecasting.sources.schema import migrate
from forecasting.sources.tables import FORECAST_KEY
from forecasting.sources.upserts import upsert_frame
from tests.support.data import pull, synthetic_frame
from tests.support.scoring import ORIGIN_INDEX, forecast_frame


@pytest.fixture
def project(database_url, settings_for):
    """`project(**source)`: settings with a monthly source (plus `source` keys) and a migrated database engine."""
    def build(**source):
        settings, _ = settings_for(database_url, source={"frequency": "MS", **source})
        engine = create_db_engine(settings.database.url)
        migrate(engine)
        return settings, engine

    return build


@pytest.fixture
def scenario(database_url, settings_for):
    """Three monthly series loaded up to month 30 (the forecast origin), forecasts for months 31-36 stored."""
    settings, _ = settings_for(database_url)
    engine = create_db_engine(database_url)
    migrate(engine)
    full = synthetic_frame(n_series=3, length=36, seed=3)
    months = full.groupby("series_id").cumcount()
    load_observations(engine, settings.source, full[months <= ORIGIN_INDEX])
    pull(settings)
    forecasts = forecast_frame(full, ORIGIN_INDEX)
    with engine.begin() as connection:
        upsert_frame(connection, sa.Table("forecasts", sa.MetaData(), autoload_with=connection), forecasts, key=FORECAST_KEY)
    return settings, engine, full, months, forecasts
