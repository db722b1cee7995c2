"""The time every table stores: UTC without a time zone."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    """The current UTC time without a time zone (how every table stores times)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
