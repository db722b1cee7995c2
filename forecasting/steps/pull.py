"""Ingestion steps: pull what changed in the source into the history store, and commit the pull state."""

from __future__ import annotations

from typing import Any

from forecasting.history import ingestion
from forecasting.config.settings import Settings
from forecasting.sources.locking import model_lock
from forecasting.runtime.memory import release_memory
from forecasting.runtime.phases import phase
from forecasting.history.pull_result import PullResult
from forecasting.steps.data import open_engine


def source_lock(settings: Settings, engine: Any) -> Any:
    """Pulls into one source's history store take turns (models sharing a source may run at once)."""
    return model_lock(engine, settings.storage_root, f"source.{settings.source.table}", timeout=3600)


def pull_step(settings: Settings, run_id: str, full_refresh: bool = False, allow_series_drop: bool = False) -> PullResult:
    """Pull what changed in the source since the last committed pull into the history store, per
    series (`PullResult` documents the counts); unusable rows go to `quarantine` with a reason. The pull state moves only in `commit_pull`, once the run's
    outputs are committed."""
    engine = open_engine(settings)
    with phase("pull", data=True) as counts, source_lock(settings, engine):
        pulled = ingestion.pull(settings, engine, run_id, full_refresh, allow_series_drop)
        counts.update(rows=pulled.rows_pulled, new_series=pulled.new_series)
    release_memory()  # the pull's frames, before the steps after it
    return pulled


def commit_pull(settings: Settings, run_id: str, pulled: PullResult) -> None:
    """Advance the source's pull state to what `pull_step` returned (called after the run's outputs are committed)."""
    with phase("commit pull", data=True):
        ingestion.commit(settings, open_engine(settings), run_id, pulled)
