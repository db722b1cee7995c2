"""Reading what a step works on: the database engine and the pulled history, prepared as regular series."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from forecasting.config.settings import Settings
from forecasting.errors import RunError
from forecasting.history import store as history
from forecasting.model.inputs import InputSpec
from forecasting.preparation.exclusions import without_points
from forecasting.preparation.future_rows import observed_only, split_future
from forecasting.preparation.validation import infer_frequency
from forecasting.preparation.windows import SeriesArrays
from forecasting.runtime.memory import release_memory
from forecasting.runtime.phases import phase
from forecasting.sources.database import create_db_engine
from forecasting.sources.tables import forecast_errors, ingestion_state


def open_engine(settings: Settings) -> Engine:
    """An engine for the configured database. Connection failures surface as SQLAlchemy errors,
    which the flow's database tasks retry; the CLI checks reachability up front (`connect_checked`)."""
    return create_db_engine(settings.database.url, settings.database.schema_name)


@dataclass(frozen=True)
class PreparedData:
    """The pulled series on a regular grid, their frequency, what was read, and the stale series left out."""

    arrays: SeriesArrays
    frequency: str
    series_read: int
    rows_read: int
    stale: dict[str, str] = field(default_factory=dict)  # series left out (drop_stale) -> why
    anomalies_left_out: int = 0  # flagged actuals set to missing (prepare_data's anomalies_of)


def prepare_data(
    engine: Engine, settings: Settings, inputs: InputSpec | None = None, drop_stale: bool = False, anomalies_of: str | None = None
) -> PreparedData:
    """The pulled observations (the local history store) as the arrays `inputs` read (a trained
    forecaster's `inputs`, or `InputSpec.requested` for a model not trained yet; default: the source's
    features and future features, no calendar), built by `InputSpec.prepare`: each series on a
    regular grid of the inputs', configured, recorded or inferred frequency, gaps handled per
    `source.gaps`; the rows after each series' last observation are future rows, read only for the
    future features (`forecasting.preparation.future_inputs`). With `drop_stale`, series whose last
    observation is `source.stale_after` or more periods before the newest one are left out (and listed).
    With `anomalies_of` (a model's name, where it sets `ignore_anomalies`), the actuals flagged as that
    model's anomalies in `forecast_errors` are missing values (`preparation.exclusions`)."""
    with phase("prepare", data=True) as counts:
        prepared = _prepare(engine, settings, inputs or InputSpec.requested(settings.source), drop_stale, anomalies_of)
        counts.update(series=len(prepared.arrays.values), rows=prepared.rows_read)
    release_memory()  # the whole store's frames, before the arrays are used
    return prepared


def _prepare(engine: Engine, settings: Settings, inputs: InputSpec, drop_stale: bool, anomalies_of: str | None) -> PreparedData:
    # Future rows take no part in frequency, staleness or gap filling: they are split off first.
    # Shared: the preparation only reads the frame, and the arrays' timestamps stay views of the kept store.
    frame, ahead = split_future(history.read(history.history_root(settings.storage_root, settings.source.table), shared=True))
    if frame.empty:
        raise RunError(
            f"no observations have been pulled from {settings.source.table!r} yet; load some with `forecasting load FILE` "
            "and run the pipeline (it pulls first)"
        )
    frequency = infer_frequency(frame, inputs.frequency or settings.source.frequency or _frequency_of_last_pull(engine, settings))
    series_read, rows_read = int(frame["series_id"].nunique()), len(frame)
    stale = stale_series(frame, frequency, settings.source.stale_after) if drop_stale else {}
    if stale:
        frame = frame.loc[~frame["series_id"].isin(list(stale)).to_numpy()]
    left_out = 0
    if anomalies_of is not None:
        # After split_future: a flagged newest observation stays an observation (missing), not a future row.
        frame, left_out = without_points(frame, flagged_actuals(engine, anomalies_of))
    return PreparedData(
        arrays=inputs.prepare(frame, ahead, settings.source, frequency),
        frequency=frequency,
        series_read=series_read,
        rows_read=rows_read,
        stale=stale,
        anomalies_left_out=left_out,
    )


def flagged_actuals(engine: Engine, model_name: str) -> pd.DataFrame:
    """The (series_id, ts) of the actuals flagged as the model's anomalies (`forecast_errors.anomaly`)."""
    e = forecast_errors.c
    with engine.connect() as connection:
        rows = connection.execute(sa.select(e.series_id, e.target_ts).where(e.model_name == model_name, e.anomaly.is_(True)).distinct()).all()
    return pd.DataFrame(rows, columns=["series_id", "ts"])


def stale_series(frame: pd.DataFrame, frequency: str, periods: int) -> dict[str, str]:
    """Series whose last observation is `periods` or more periods before the newest of all (0: none)."""
    if periods <= 0 or frame.empty:
        return {}
    last = frame.groupby("series_id")["ts"].max()
    newest = last.max()
    cutoff = newest - periods * pd.tseries.frequencies.to_offset(frequency)
    old = last[last <= cutoff].sort_values()
    return {str(sid): f"last observation {ts}, {periods}+ periods (source.stale_after) before the newest, {newest}" for sid, ts in old.items()}


def newer_observations(settings: Settings, watermark: object) -> tuple[int, int]:
    """(observations, series) in the history store newer than `watermark`."""
    newer = observed_only(history.read(history.history_root(settings.storage_root, settings.source.table), newer_than=watermark))
    return int(len(newer)), int(newer["series_id"].nunique()) if len(newer) else 0


def recorded_frequency(connection: Connection, table: str) -> str | None:
    """The frequency the last pull of `table` recorded (None before the first pull, or without the job's tables)."""
    try:
        return connection.execute(sa.select(ingestion_state.c.frequency).where(ingestion_state.c.source == table)).scalar()
    except sa.exc.SQLAlchemyError:
        connection.rollback()
        return None


def _frequency_of_last_pull(engine: Engine, settings: Settings) -> str | None:
    with engine.connect() as connection:
        return recorded_frequency(connection, settings.source.table)
