"""The `[report]` table of forecasting.toml: how people reach the HTML report a run writes."""

from __future__ import annotations

from pydantic import Field, field_validator

from forecasting.config.model_settings import StrictModel
from forecasting.storage.locations import is_url

MAX_LINK_HOURS = 168  # 7 days: the longest an S3 presigned URL (signature version 4) may live


class ReportConfig(StrictModel):
    # Lifetime of the presigned URL the run's Prefect artifact links to when the storage is an object store.
    link_expiry_hours: int = Field(default=72, ge=1, le=MAX_LINK_HOURS)
    # A local folder where each run also writes `<model>.html` (a share people open); None: no copy.
    local_copy: str | None = None

    @field_validator("local_copy")
    @classmethod
    def _local_folder(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("is empty; name a local folder (relative to the config file's folder, or absolute), or leave it out")
        if value is not None and is_url(value):
            raise ValueError("must be a local folder, not a URL (the report itself is already in storage.root)")
        return value
