"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from forecasting.sources.database import create_db_engine
from forecasting.sources.schema import migrate


@pytest.fixture
def project(database_url, settings_for):
    """`project(**source)`: settings with a monthly source (plus `source` keys) and a migrated database engine."""
    def build(**source):
        settings, _ = settings_for(database_url, source={"frequency": "MS", **source})
        engine = create_db_engine(settings.database.url)
        migrate(engine)
        return settings, engine

    return build
