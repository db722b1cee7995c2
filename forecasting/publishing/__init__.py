"""Where forecasts and models go: the model registry, the Parquet forecast dataset and its repair from SQL."""
