"""What every `forecasting` command shares: the settings and config path of its arguments, and its
database connection (remembered, so that any later error line names the database without its password)."""

from __future__ import annotations

import argparse
from typing import Any

from forecasting.config.credentials import masked_url
from forecasting.config.settings import find_config_path, load_settings
from forecasting.sources.database import connect_checked


def settings_of(args: argparse.Namespace) -> Any:
    return load_settings(args.config)


def config_path_of(args: argparse.Namespace) -> str:
    return str(find_config_path(args.config))


# The database the current command uses (masked), named in its error line; and its URL, to redact.
DATABASE: dict[str, str] = {}


def connect(settings: Any) -> Any:
    """connect_checked, remembering the database so that any later error line names it."""
    DATABASE.update(url=settings.database.url, masked=masked_url(settings.database.url))
    return connect_checked(settings.database.url, settings.database.schema_name)
