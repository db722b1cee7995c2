"""The checks of `forecasting check` (`dry_run`) that no model's settings change: the database (it
connects), the job's tables, the source table's configured columns and their types, the source's rows
(series, frequency, rows that would be set aside), the storage (written only by a probe removed at
once) and the Prefect API when `PREFECT_API_URL` names one. Each is a `Check`, ok or a problem; none
writes to the job's tables or storage.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
from sqlalchemy.engine import Engine

from forecasting.config.credentials import masked_url, parse_url, redact, url_origin
from forecasting.config.settings import Settings
from forecasting.errors import ConfigError, ForecastingError, InputError
from forecasting.preparation.future_rows import pull_future_rows, split_future
from forecasting.preparation.validation import infer_frequency, screen
from forecasting.runtime.clock import utc_now
from forecasting.runtime.orchestrator import API_URL_ENV, answers
from forecasting.sources.database import check_column_types, connect_checked, read_observations
from forecasting.steps.data import recorded_frequency
from forecasting.steps.run_records import check_tables
from forecasting.storage.locations import check_reachable, is_remote


@dataclass(frozen=True)
class Check:
    """One thing checked: its name, what was found, and whether it would make a run fail
    (`exit_code`: 2 for the config or the data, 1 for what is unreachable)."""

    name: str
    text: str
    problem: bool = False
    exit_code: int = 0

    def line(self) -> str:
        """`ok       name: text` or `problem  name: text`, one line."""
        return f"{'problem' if self.problem else 'ok':<8} {self.name}: {' '.join(self.text.split())}"


def failed(name: str, error: ForecastingError | str, exit_code: int | None = None, url: Any = None) -> Check:
    """The problem `error` (its message, the database password redacted) under `name`."""
    code = exit_code if exit_code is not None else getattr(error, "exit_code", 2)
    return Check(name, redact(str(error), url), problem=True, exit_code=code)


@dataclass(frozen=True)
class SourceRows:
    """What the source holds, read and screened as a first pull would: observations, future rows, frequency."""

    observed: pd.DataFrame
    ahead: pd.DataFrame
    frequency: str


def check_database(settings: Settings) -> tuple[Engine | None, Check]:
    url = settings.database.url
    try:
        parsed = parse_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") and not Path(parsed.database).exists():
            return None, failed("database", ConfigError(f"{url_origin()}: the SQLite database {parsed.database} does not exist yet; run `forecasting init`"))
        engine = connect_checked(url, settings.database.schema_name)
    except ForecastingError as error:
        return None, failed("database", error, url=url)
    where = f", schema {settings.database.schema_name}" if settings.database.schema_name else ""
    return engine, Check("database", f"connected to {masked_url(engine)}{where}")


def check_job_tables(engine: Engine, settings: Settings, model_names: list[str]) -> Check:
    try:
        for name in model_names:
            check_tables(engine, settings, name)
    except ForecastingError as error:
        return failed("tables", error, url=settings.database.url)
    return Check("tables", "the job's tables are there and current" + (f" (interval columns of {', '.join(model_names)})" if model_names else ""))


def check_source_columns(engine: Engine, settings: Settings) -> Check:
    source = settings.source
    try:
        with engine.connect() as connection:
            types = check_column_types(connection, source)
    except ForecastingError as error:
        return failed("source", error, url=settings.database.url)
    roles = [(source.series, "series"), (source.time, "time"), (source.target, "target")]
    roles += [(name, "feature") for name in source.features] + [(name, "future feature") for name in source.future_features]
    return Check("source", f"table {source.table}: " + ", ".join(f"{role} {name} ({types[name]})" for name, role in roles))


def check_rows(engine: Engine, settings: Settings) -> tuple[SourceRows | None, Check]:
    """The source's rows screened as a pull screens them; the check says how many and what would be set aside."""
    source = settings.source
    try:
        with engine.connect() as connection:
            frame = read_observations(connection, source)
            recorded = recorded_frequency(connection, source.table)
        if not frame["value"].notna().any():
            raise InputError(f"source table {source.table!r} holds no observations (no row with a {source.target}); load some with `forecasting load FILE`")
        origin = "source.frequency" if source.frequency else "recorded by the last pull" if recorded else "inferred from the data"
        frequency = infer_frequency(frame.loc[frame["value"].notna().to_numpy()], source.frequency or recorded)
        latest = pd.Timestamp(utc_now()) + pd.Timedelta(source.max_future)
        future = pull_future_rows(source.future_features, frame, None, source.max_future_periods)
        screened = screen(frame, frequency, source.max_quarantined_fraction, None, source.on_bad_series, latest, future)
    except ForecastingError as error:
        return None, failed("data", error, exit_code=2, url=settings.database.url)
    observed, ahead = split_future(screened.clean)
    reasons = _reasons(screened.quarantined)
    if observed.empty:
        return None, failed("data", InputError(
            f"source table {source.table!r}: none of its {len(frame):,} rows is usable; all would be quarantined "
            f"(most: {reasons.index[0]}, {int(reasons.iloc[0]):,})" if len(reasons) else f"source table {source.table!r} holds no usable observations"
        ))  # fmt: skip
    text = (
        f"{observed['series_id'].nunique():,} series, {len(observed):,} observations from {_when(observed['ts'].min())} to {_when(observed['ts'].max())}, "
        f"frequency {frequency} ({origin})"
    )
    if len(ahead):
        text += f", {len(ahead):,} future rows"
    if len(screened.quarantined):
        text += f"; {len(screened.quarantined):,} rows would be quarantined (most: {reasons.index[0]}, {int(reasons.iloc[0]):,})"
    if screened.skipped:
        text += f"; {len(screened.skipped):,} series set aside (source.on_bad_series = \"skip\")"
    if screened.duplicates:
        text += f"; {screened.duplicates:,} duplicated rows (the last kept)"
    return SourceRows(observed, ahead, frequency), Check("data", text)


def _reasons(quarantined: pd.DataFrame) -> pd.Series:
    """How many rows would be quarantined for each reason, most first; a row's own reason before the
    one it has only because its series was set aside."""
    counts = quarantined["reason"].value_counts()
    aside = counts.index.str.startswith("series set aside")
    return pd.concat([counts[~aside], counts[aside]])


def _when(stamp: pd.Timestamp) -> str:
    """A timestamp as a person reads it: the date alone at midnight."""
    return str(stamp.date()) if stamp == stamp.normalize() else str(stamp)


def check_storage_places(settings: Settings) -> Iterator[Check]:
    """The storage root (and `storage.forecasts`, when apart): a local folder is written to only by a
    temporary file removed at once (one that is not there yet is not created); an object store gets
    one probe object, written, read and removed."""
    places = [("storage.root", lambda: settings.storage_root)]
    if settings.storage.forecasts:
        places.append(("storage.forecasts", lambda: settings.forecasts_root))
    for key, where in places:
        try:
            root = where()
            if is_remote(root):
                check_reachable(root, key)
                yield Check("storage", f"{key} {root} is reachable (a probe object was written, read and removed)")
            else:
                yield Check("storage", f"{key} {_local_folder(Path(root), key)}")
        except ForecastingError as error:
            yield failed("storage", error)


def _local_folder(root: Path, key: str) -> str:
    """What a local storage folder is like for the job; a ConfigError when it cannot be written to."""
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{key}: {root} is a file, not a folder")
    existing = root
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{key}: {existing}, a parent of {root}, is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ConfigError(f"{key}: cannot write to {existing} ({error.strerror or error})") from None
    if existing == root:
        return f"{root} is a folder this process can write to"
    return f"{root} is not there yet; `forecasting init` (or the first run) creates it in {existing}, which this process can write to"


def check_prefect() -> Check:
    """The Prefect API of `$PREFECT_API_URL` answers its health check (no Prefect import: an HTTP GET)."""
    given = os.environ.get(API_URL_ENV, "").strip()
    if not given:
        return Check(
            "prefect", f"{API_URL_ENV} is not set: run, tune and backtest start a temporary Prefect server of their own; "
            "schedules need a running one (docs/scheduling.md)"
        )  # fmt: skip
    parts = urlsplit(given)
    shown = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))  # never a user or password
    if answers(given):
        return Check("prefect", f"the Prefect API at {shown} ({API_URL_ENV}) answers")
    return failed(
        "prefect", f"{API_URL_ENV}: the Prefect API at {shown} does not answer its health check; start it (`prefect server start`) "
        f"or fix {API_URL_ENV}", exit_code=1,
    )  # fmt: skip
