"""SQL kept as SQL: Alembic migrations and reporting view definitions (installed as `forecasting.sql`)."""
