"""How the job is configured: forecasting.toml as strict pydantic models, and the Prefect deployments it defines."""
