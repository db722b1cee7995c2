"""Pulls from the source table into the history store, by per-series state that cannot lose rows.

Each pull starts with one `SELECT series, count(*), min(ts), max(ts) GROUP BY series` on the
source and compares it with what the last committed pull saw of each series (`ingestion_series`):

- a series not seen before is read whole (however old its rows are);
- a series whose count, first or last timestamp changed (or every series, with
  `source.late_arrival`) is re-read after its own `reread_from` (its newest usable observation
  minus `late_arrival`); its stored rows there are replaced by what the source holds, so rows
  deleted there leave the store; when the rows the source holds before `reread_from` are not as
  many as last time (a row inserted or deleted further back), the series is read whole again;
- a series no longer in the source leaves the store;
- an unchanged series is not read at all.

Rows dated later than the run's time plus `source.max_future` are quarantined (a row dated 2099
moves nothing). The new state is staged in a file and committed with the run (`commit`), so a
run that dies is pulled again from the same state. A full refresh (asked for, the first pull, a
store that is not complete, or state from an older version) rebuilds the store aside and swaps it
in whole. A pull that would leave more than `source.max_series_drop` fewer series in the store
than the last committed pull fails, unless allowed.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from forecasting.history import store as history
from forecasting.history.store import ids
from forecasting.config.settings import Settings, SourceConfig
from forecasting.sources.database import read_observations, records, source_summary, table_columns, upsert_frame
from forecasting.history import quarantine
from forecasting.history.quarantine import Examined
from forecasting.sources.tables import ingestion_series, ingestion_state
from forecasting.errors import ConfigError, RunError
from forecasting.model.artifacts import utc_now
from forecasting.storage.locations import make_dirs, read_parquet, write_parquet
from forecasting.history.future_rows import observed_only, pull_future_rows
from forecasting.runtime.progress import Progress
from forecasting.preparation.validation import MAX_LISTED, infer_frequency, screen
from forecasting.history.pull_result import PullResult

CHUNK = 2000  # series keys per IN list (fewer queries; SQLite before 3.32 allows 999 parameters)


def chunk_size(engine: Engine) -> int:
    """Series keys per IN list on this database."""
    import sqlite3

    return 900 if engine.dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 32) else CHUNK
STATE_COLUMNS = ["series_id", "source_rows", "source_first", "source_last", "reread_from", "rows_before", "last_ts", "source_sum", "sum_before"]


def recorded_series(engine: Engine, table: str) -> pd.DataFrame:
    """The per-series state of the last committed pull of `table`."""
    with engine.connect() as connection:
        frame = records(connection.execute(sa.select(*[ingestion_series.c[c] for c in STATE_COLUMNS]).where(ingestion_series.c.source == table)), STATE_COLUMNS)
    for column in ("source_rows", "rows_before", "source_sum", "sum_before"):
        frame[column] = pd.to_numeric(frame[column]).astype("float64")
    for column in ("source_first", "source_last", "reread_from", "last_ts"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
    return frame.set_index("series_id")


def _read_series(engine: Engine, settings: Settings, keys: list[Any], since: dict[str, pd.Timestamp] | None = None) -> pd.DataFrame:
    """Rows of the series with these source keys: all of them, or (with `since`, by series id)
    only those after each series' own time. Keys go in chunks; a chunk reads after its earliest
    time and the rest is filtered here."""
    parts = []
    keyed = sorted(keys, key=lambda k: since[str(k)]) if since else list(keys)
    size = chunk_size(engine)
    with engine.connect() as connection, Progress("pull: read source", len(keyed), "series") as progress:
        for start in range(0, len(keyed), size):
            chunk = keyed[start : start + size]
            lower = min(since[str(k)] for k in chunk) if since else None
            part = read_observations(connection, settings.source, since=lower, series=chunk)
            if since:
                part = part.loc[part["ts"].to_numpy() > per_row(part["series_id"], since)]
            parts.append(part)
            progress.advance(len(chunk), f"{sum(len(p) for p in parts):,} rows")
    if not parts:
        return read_observations_empty(settings)
    return pd.concat(parts, ignore_index=True)


def read_observations_empty(settings: Settings) -> pd.DataFrame:
    """An empty frame shaped like `read_observations`' result."""
    frame = pd.DataFrame({"series_id": pd.Series(dtype=str), "ts": pd.Series(dtype="datetime64[us]"), "value": pd.Series(dtype="float64")})
    for name in settings.source.columns:
        frame[name] = pd.Series(dtype="float64")
    return frame


def per_row(series_ids: pd.Series, times: Any) -> np.ndarray:
    """Each row's time from a per-series mapping (dict or Series), NaT where there is none."""
    mapping = pd.Series(times, dtype="datetime64[us]") if isinstance(times, dict) else times.astype("datetime64[us]")
    return mapping.reindex(series_ids.to_numpy()).to_numpy()


def _same(a: pd.Series, b: pd.Series) -> pd.Series:
    """Elementwise equality of sums, within rounding (a database may add in another order)."""
    a, b = a.astype("float64"), b.reindex(a.index).astype("float64")
    close = np.isclose(a.to_numpy(), b.to_numpy(), rtol=1e-9, atol=1e-9, equal_nan=True)
    return pd.Series(close, index=a.index)


def _examples(ids: Any) -> str:
    ids = sorted(map(str, ids))
    return ", ".join(ids[:MAX_LISTED]) + (f" and {len(ids) - MAX_LISTED} more" if len(ids) > MAX_LISTED else "")


def check_series_drop(settings: Settings, before: int, after: int, gone: Any, allow: bool, rows: tuple[int, int] = (0, 0)) -> None:
    """Fail when the store would hold sharply fewer series than after the last committed pull, or
    when the source holds sharply fewer rows than it did then (`rows`: then, now)."""
    limit = settings.source.max_series_drop
    if allow:
        return
    if before and after < before and (before - after) / before > limit:
        drop = (before - after) / before
        missing = f" ({len(gone)} series no longer in the source, e.g. {_examples(gone)})" if len(gone) else ""
        raise RunError(
            f"the pull would leave {after} series in the history store of {settings.source.table!r}, {drop:.0%} fewer than the {before} "
            f"of the last completed pull{missing}; nothing was changed. If that is intended, raise source.max_series_drop "
            f"(now {limit:.0%}) or run with --allow-series-drop once"
        )
    rows_then, rows_now = rows
    if rows_then and rows_now < rows_then and (rows_then - rows_now) / rows_then > limit:
        raise RunError(
            f"the source {settings.source.table!r} holds {rows_now} rows, {(rows_then - rows_now) / rows_then:.0%} fewer than the "
            f"{rows_then} of the last completed pull; nothing was changed. If the rows really were deleted, raise "
            f"source.max_series_drop (now {limit:.0%}) or run with --allow-series-drop once"
        )


def check_source_columns(source: SourceConfig, columns: dict[str, str], recorded: dict[str, str] | None) -> None:
    """Fail clearly when a column the job reads disappeared or changed type since the last pull."""
    if recorded is None:
        return
    for name in [source.series, source.time, source.target, *source.columns]:
        if name in recorded and name in columns and columns[name] != recorded[name]:
            raise ConfigError(
                f"source.table: column {name!r} of {source.table!r} changed type from {recorded[name]} to {columns[name]} "
                "since the last pull; check the data, then run with --full-refresh"
            )


def pull(settings: Settings, engine: Engine, run_id: str, full_refresh: bool = False, allow_series_drop: bool = False) -> PullResult:
    """Pull what changed in the source into the history store; returns its counts and the staged
    state (`PullResult`), which `commit` records once the run's outputs are committed."""
    from forecasting.steps.data import STAGING

    source = settings.source
    root = history.history_root(settings.storage_root, source.table)
    late = pd.Timedelta(source.late_arrival)
    with engine.connect() as connection:
        columns = {name: str(kind) for name, kind in (table_columns(connection, source.table) or {}).items()}
        state = connection.execute(sa.select(ingestion_state).where(ingestion_state.c.source == source.table)).mappings().first()
    check_source_columns(source, columns, json.loads(state["columns"]) if state and state["columns"] else None)
    recorded = recorded_series(engine, source.table)
    store_status = history.status(root)
    reason = (
        "requested" if full_refresh
        else "first pull" if state is None or state["watermark"] is None
        else f"history store {store_status}" if store_status != "complete"
        else "no per-series state yet (store from an older version)" if recorded.empty
        else "the configured columns changed since the store was written" if source.columns and not set(source.columns) <= history.stored_columns(root)
        else None
    )
    with engine.connect() as connection:
        summary = source_summary(connection, source).set_index("series_id")
    # Rows without a series id belong to no series: read (and quarantined) on every pull, never stored.
    unkeyed, summary = bool(summary.index.isna().any()), summary.loc[summary.index.notna()]
    latest_allowed = pd.Timestamp(utc_now()) + pd.Timedelta(source.max_future)
    stored = history.read(root, columns=["series_id", "ts", "value"]) if store_status == "complete" else None
    before = len(recorded) if len(recorded) else (int(stored["series_id"].nunique()) if stored is not None else 0)

    window: dict[str, pd.Timestamp] = {}
    gone: list[str] = []
    if reason is not None:
        frame = _read_all(engine, settings)
        full_ids = set(summary.index)
    else:
        known = summary.index.intersection(recorded.index)
        new_ids = set(summary.index.difference(recorded.index))
        stored_ids = ids(stored)
        # The store is reconciled with the source too: a series it holds that the source lost goes.
        gone = sorted(set(recorded.index.difference(summary.index)) | (stored_ids - set(summary.index)))
        old = recorded.loc[known]
        now = summary.loc[known]
        changed = (
            (now["rows"] != old["source_rows"]) | (now["first"] != old["source_first"]) | (now["last"] != old["source_last"])
            | ~_same(now["total"], old["source_sum"])
        )
        # Read whole: a changed first timestamp (older history loaded), a newest row deleted, no
        # usable rows yet, or a late_arrival grown past the recorded window (what the source holds
        # before the window was not recorded).
        whole = (
            (now["first"] != old["source_first"]) | (now["last"] < old["source_last"]) | old["reread_from"].isna()
            | (old["last_ts"] - late < old["reread_from"])
            | (old["last_ts"].notna() & ~old.index.isin(list(stored_ids)))  # recorded, yet missing from the store
        )
        # Future rows (after each series' last target) can be revised without moving the summary: re-read them always.
        to_window = (changed | (late > pd.Timedelta(0)) | bool(source.future_features)) & ~whole
        window = old.loc[to_window.to_numpy(), "reread_from"].to_dict()
        full_ids = new_ids | set(known[whole.to_numpy()])
        windowed = _read_series(engine, settings, list(summary.loc[list(window), "key"]), since=window) if window else read_observations_empty(settings)
        # What the source holds at or before reread_from (rows, sum of values) must be as last time;
        # else something was inserted, deleted or revised further back, and the series is read whole.
        grouped = windowed.groupby("series_id")
        counts = grouped.size().reindex(list(window), fill_value=0)
        sums = grouped["value"].sum().reindex(list(window), fill_value=0.0)
        rows_before = summary.loc[list(window), "rows"] - counts
        sum_before = summary.loc[list(window), "total"] - sums
        recorded_window = recorded.loc[list(window)]
        differs = (rows_before != recorded_window["rows_before"]) | ~_same(sum_before, recorded_window["sum_before"])
        moved = list(differs.index[differs.to_numpy()])
        for sid in moved:
            del window[sid]
        full_ids |= set(moved)
        windowed = windowed.loc[windowed["series_id"].isin(list(window)).to_numpy()]
        whole_rows = _read_series(engine, settings, list(summary.loc[sorted(full_ids), "key"])) if full_ids else read_observations_empty(settings)
        frame = pd.concat([windowed, whole_rows], ignore_index=True) if len(whole_rows) else windowed
        if unkeyed:
            frame = pd.concat([frame, _read_series(engine, settings, [None])], ignore_index=True)
    frequency = source.frequency or (state["frequency"] if state else None)
    if frequency is None:
        frequency = infer_frequency(frame) if len(frame) else None

    # Each series is judged over the rows it will have: pulled plus those kept in the store.
    stored_rows = None
    if reason is None and stored is not None and window:
        cut = per_row(stored["series_id"], window)
        kept = stored.loc[(stored["ts"].to_numpy() <= cut) & ~np.isnat(cut)]
        stored_rows = kept.groupby("series_id").size()
    future = pull_future_rows(source.future_features, frame, recorded.loc[list(window), "last_ts"] if window else None, source.max_future_periods)
    screening = screen(frame, frequency, source.max_quarantined_fraction, stored_rows, source.on_bad_series, latest_allowed, future) if frequency and len(frame) else None
    clean = screening.clean if screening else frame
    skipped = screening.skipped if screening else {}

    replace_after: dict[str, pd.Timestamp | None] = {}
    if reason is None:
        replace_after = {sid: None for sid in full_ids if sid not in skipped}
        replace_after.update({sid: t for sid, t in window.items() if sid not in skipped})
        replace_after.update({sid: None for sid in gone})
        stored_series = ids(stored) if stored is not None else set()
        after_ids = (stored_series - set(gone)) | ids(clean)
    else:
        after_ids = ids(clean)
        if skipped and stored is not None:
            # A series set aside keeps the history it had, even through a rebuild.
            carried_ids = set(skipped) & ids(stored)
            after_ids |= set(carried_ids)
        gone = sorted(set(recorded.index) - set(summary.index)) if len(recorded) else []
    rows_then = int(recorded["source_rows"].sum()) if len(recorded) else 0
    check_series_drop(settings, before, len(after_ids), gone, allow_series_drop, (rows_then, int(summary["rows"].sum())))

    # Each bad row stored once; rows this pull re-read and found usable (or gone) stop being current.
    examined = Examined(reason is not None, full_ids | set(gone), window, unkeyed=True) if screening is not None or frame.empty else Examined(False)
    quarantine.record(engine, source.table, run_id, screening.quarantined if screening is not None else pd.DataFrame(), examined, utc_now())

    if reason is None:
        stats = history.merge(root, clean, replace_after)
    else:
        keep = None
        if skipped and store_status == "complete":
            keep = history.read(root)
            keep = keep.loc[keep["series_id"].isin(list(skipped)).to_numpy()]
        with history.Rebuild(root) as rebuild:
            stats = rebuild.merge(pd.concat([clean, keep], ignore_index=True) if keep is not None and len(keep) else clean)
            rebuild.commit()

    # The state the next pull starts from, committed with the run.
    nothing_merged = reason is None and not replace_after and clean.empty
    after = stored if nothing_merged and stored is not None else history.read(root, columns=["series_id", "ts", "value"])
    after = observed_only(after)  # future rows neither move the watermark nor a series' last observation
    last_ts = after.groupby("series_id")["ts"].max() if len(after) else pd.Series(dtype="datetime64[us]")
    advanced = [sid for sid in summary.index if sid not in skipped]
    if reason is None:
        advanced = [sid for sid in advanced if sid in full_ids or sid in window]
    new_state = summary.loc[advanced, ["rows", "first", "last", "total"]].rename(
        columns={"rows": "source_rows", "first": "source_first", "last": "source_last", "total": "source_sum"}
    )
    new_state["last_ts"] = last_ts.reindex(new_state.index).astype("datetime64[us]")
    reread = new_state["last_ts"] - late
    if window:
        previous = pd.Series(window).reindex(new_state.index).astype("datetime64[us]")
        reread = reread.where(previous.isna() | (reread >= previous), previous)
    new_state["reread_from"] = reread
    read_after = frame.loc[frame["series_id"].isin(new_state.index).to_numpy()]
    bound = per_row(read_after["series_id"], new_state["reread_from"])
    tail = read_after.loc[(read_after["ts"].to_numpy() > bound) | np.isnat(bound)].groupby("series_id")
    has_window = new_state["reread_from"].notna()
    new_state["rows_before"] = (new_state["source_rows"] - tail.size().reindex(new_state.index, fill_value=0)).where(has_window)
    new_state["sum_before"] = (new_state["source_sum"] - tail["value"].sum().reindex(new_state.index, fill_value=0.0)).where(has_window)
    # Only what changed is staged: series not read (unchanged) or set aside keep their recorded
    # state; series gone lose theirs; a full refresh replaces the whole state.
    staged = new_state.rename_axis("series_id").reset_index().assign(gone=False)
    if reason is None and gone:
        staged = pd.concat([staged, pd.DataFrame({"series_id": gone, "gone": True})], ignore_index=True)
    staging = settings.storage_root / STAGING
    make_dirs(staging)
    state_file = staging / f"{run_id}-pull-state.parquet"
    write_parquet(staged, state_file)

    watermark = after["ts"].max() if len(after) else None
    return PullResult(
        full_refresh=reason is not None,
        refresh_reason=reason,
        series_read_whole=len(full_ids),
        series_read_window=len(window),
        series_unchanged=0 if reason is not None else int(len(summary) - len(full_ids) - len(window)),
        rows_pulled=len(frame),
        rows_new=stats.rows_new,
        rows_revised=stats.rows_revised,
        rows_removed=stats.rows_removed,
        new_series=stats.new_series if reason is None else len(ids(clean) - set(recorded.index)),
        series_removed=len(gone) if reason is None else len(set(recorded.index) - after_ids),
        removed_examples=tuple(sorted(gone)[:MAX_LISTED]),
        series_in_store=int(after["series_id"].nunique()) if len(after) else 0,
        quarantined=int(len(screening.quarantined)) if screening else 0,
        duplicates=screening.duplicates if screening else 0,
        series_set_aside=len(skipped),
        set_aside_examples=dict(sorted(skipped.items())[:MAX_LISTED]),
        watermark=pd.Timestamp(watermark).isoformat() if watermark is not None else None,
        frequency=frequency,
        columns=columns,
        state_file=str(state_file),
        state_replace=reason is not None,
    )


def _read_all(engine: Engine, settings: Settings) -> pd.DataFrame:
    with engine.connect() as connection, Progress("pull: read whole source table", 1, "queries") as progress:
        frame = read_observations(connection, settings.source)
        progress.advance(1, f"{len(frame):,} rows")
        return frame


def commit(settings: Settings, engine: Engine, run_id: str, pulled: PullResult) -> None:
    """Record what the run pulled (global watermark and per-series state) in one transaction."""
    table = settings.source.table
    values = {
        "watermark": pd.Timestamp(pulled.watermark).to_pydatetime() if pulled.watermark else None,
        "frequency": pulled.frequency,
        "columns": json.dumps(pulled.columns, sort_keys=True),
        "updated_at": utc_now(),
        "run_id": run_id,
    }
    state_file = pulled.state_file
    state_path = settings.locate(state_file) if state_file else None
    staged = read_parquet(state_path) if state_path is not None and state_path.exists() else None
    rows: list[dict[str, Any]] = []
    if staged is not None:
        now = utc_now()
        for record in staged.loc[~staged["gone"].to_numpy(dtype=bool)].to_dict(orient="records"):
            row: dict[str, Any] = {"source": table, "updated_at": now, "run_id": run_id}
            for name in STATE_COLUMNS:
                value = record[name]
                if name in ("source_sum", "sum_before"):
                    row[name] = None if pd.isna(value) else float(value)
                elif name in ("source_rows", "rows_before"):
                    row[name] = None if pd.isna(value) else int(value)
                elif name == "series_id":
                    row[name] = str(value)
                else:
                    row[name] = None if pd.isna(value) else pd.Timestamp(value).to_pydatetime()
            rows.append(row)
    with engine.begin() as connection:
        updated = connection.execute(sa.update(ingestion_state).where(ingestion_state.c.source == table).values(**values))
        if updated.rowcount == 0:
            connection.execute(sa.insert(ingestion_state).values(source=table, **values))
        if staged is not None:
            mine = ingestion_series.c.source == table
            if pulled.state_replace:
                connection.execute(sa.delete(ingestion_series).where(mine))
            else:
                gone = [str(sid) for sid in staged.loc[staged["gone"].to_numpy(dtype=bool), "series_id"]]
                size = chunk_size(engine)
                for start in range(0, len(gone), size):
                    connection.execute(sa.delete(ingestion_series).where(mine, ingestion_series.c.series_id.in_(gone[start : start + size])))
            if rows:  # COPY and one upsert on PostgreSQL
                upsert_frame(connection, ingestion_series, pd.DataFrame(rows), key=["source", "series_id"])
    if state_path is not None:
        state_path.unlink(missing_ok=True)
