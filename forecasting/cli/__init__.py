"""The `forecasting` command line."""
