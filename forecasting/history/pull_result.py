"""What one pull of the source did: counts for people and run records, and the staged state the
commit advances to."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class PullResult:
    """One pull of the source into the history store (`forecasting.history.ingestion.pull`).

    Counts: rows read from the source (`rows_pulled`) and what they did to the store (`rows_new`,
    `rows_revised`, `rows_removed`), series new, removed (with up to ten `removed_examples`), read
    whole, re-read from their window or unchanged, set aside by `source.on_bad_series = "skip"`
    (with reasons in `set_aside_examples`), rows quarantined and duplicates dropped.
    State: whether it was a full refresh and why, the store's newest timestamp (`watermark`, ISO),
    the frequency, the source's column types, and the staged per-series state file that
    `forecasting.history.ingestion.commit` records (`state_replace`: it replaces the whole state)."""

    full_refresh: bool
    refresh_reason: str | None
    series_read_whole: int
    series_read_window: int
    series_unchanged: int
    rows_pulled: int
    rows_new: int
    rows_revised: int
    rows_removed: int
    new_series: int
    series_removed: int
    series_in_store: int
    quarantined: int
    duplicates: int
    series_set_aside: int
    watermark: str | None
    frequency: str | None
    state_file: str
    state_replace: bool
    removed_examples: tuple[str, ...] = ()
    set_aside_examples: dict[str, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The counts as plain data (what a run's summary and its JSON carry); the source's column
        types and the staged state's file stay out."""
        data = asdict(self)
        for internal in ("columns", "state_file", "state_replace"):
            del data[internal]
        data["removed_examples"] = list(self.removed_examples)
        return data
