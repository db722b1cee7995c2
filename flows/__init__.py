"""Prefect flows: thin wiring of `forecasting` library steps."""
