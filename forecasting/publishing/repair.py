"""Keeping a model's Parquet forecasts dataset equal to the `forecasts` table, origin date by origin date.

SQL is written first in every run and is the source of truth; the Parquet dataset is its copy. The
check is cheap: one GROUP BY query for the rows and newest `created_at` per origin in SQL, and the
row count and `created_at` statistics in each partition file's Parquet footer (the data is not
read). Partitions that are missing, unreadable, hold a different number of rows or older rows than
SQL (SQL took a rewrite of the origin that Parquet missed) are rebuilt from SQL with an atomic
replacement. Partitions with no
rows in SQL at all are reported and left as they are (nothing is deleted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from forecasting.sources.tables import interval_columns
from forecasting.publishing.forecast_dataset import forecasts_root, partition_footers, replace_partition

DATE_FORMAT = "%Y-%m-%d"


@dataclass
class RepairReport:
    """What a check of one model's Parquet dataset found and fixed."""

    model_name: str
    origins_checked: int = 0
    # origin date -> what was wrong: "missing", "unreadable", "row-count mismatch (parquet N, sql M)" or "stale (...)"
    fixed: dict[str, str] = field(default_factory=dict)
    rows_rebuilt: int = 0
    parquet_only: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as plain values (for run summaries and JSON)."""
        return {
            "origins_checked": self.origins_checked,
            "origins_repaired": len(self.fixed),
            "fixed": dict(self.fixed),
            "rows_rebuilt": self.rows_rebuilt,
            "parquet_only": list(self.parquet_only),
        }


def _forecasts_table(connection: Connection) -> sa.Table:
    return sa.Table("forecasts", sa.MetaData(), autoload_with=connection)


def sql_origin_counts(connection: Connection, model_name: str) -> dict[str, tuple[int, datetime]]:
    """Per origin date, the model's rows in the `forecasts` table and their newest `created_at`
    (one GROUP BY on the indexed origin)."""
    table = _forecasts_table(connection)
    rows = connection.execute(
        sa.select(table.c.forecast_origin, sa.func.count(), sa.func.max(table.c.created_at))
        .where(table.c.model_name == model_name)
        .group_by(table.c.forecast_origin)
    ).all()
    counts: dict[str, tuple[int, datetime]] = {}
    for origin, count, created in rows:
        day = pd.Timestamp(origin).strftime(DATE_FORMAT)  # several origins a day (hourly data) share a partition
        created = pd.Timestamp(created).to_pydatetime()
        earlier = counts.get(day)
        counts[day] = (int(count), created) if earlier is None else (earlier[0] + int(count), max(earlier[1], created))
    return counts


def _sql_partition(connection: Connection, model_name: str, origin_date: str, levels: list[int] | None) -> pd.DataFrame:
    """The model's SQL rows of one origin date, shaped like the rows `forecast_step` stages."""
    table = _forecasts_table(connection)
    names = [c.name for c in table.c]
    wanted_intervals = {column for level in (levels or []) for column in interval_columns(level)}
    columns = [
        name for name in names
        if name != "model_name" and (not name.startswith(("yhat_lower_", "yhat_upper_")) or levels is None or name in wanted_intervals)
    ]
    day = pd.Timestamp(origin_date)
    result = connection.execute(
        sa.select(*(table.c[name] for name in columns)).where(
            table.c.model_name == model_name,
            table.c.forecast_origin >= day.to_pydatetime(),
            table.c.forecast_origin < (day + pd.Timedelta(days=1)).to_pydatetime(),
        )
    )
    frame = pd.DataFrame(result.mappings().all(), columns=columns)
    for column in ("forecast_origin", "target_ts", "created_at"):
        frame[column] = pd.to_datetime(frame[column])
    for column in ("model_version", "step"):
        frame[column] = frame[column].astype("int64")
    for column in columns:
        if column == "yhat" or column.startswith(("yhat_lower_", "yhat_upper_")):
            frame[column] = frame[column].astype("float64")
    return frame


def repair_parquet(
    engine: Engine, storage_root: Path, model_name: str, levels: list[int] | None = None, dataset: Path | None = None
) -> RepairReport:
    """Compare the model's partitions with SQL (rows and newest `created_at` per origin date) and
    rebuild from SQL every partition that is missing, unreadable, short or stale. `levels`: the
    interval levels whose columns the partitions carry (None: every interval column of the table).
    The caller holds the model's lock (a run does; `forecasting repair` takes it). `dataset`: the
    dataset's folder when not `<storage>/forecasts` (`storage.forecasts`)."""
    report = RepairReport(model_name)
    with engine.connect() as connection:
        expected = sql_origin_counts(connection, model_name)
    found = partition_footers(storage_root, model_name, dataset)
    report.origins_checked = len(expected)
    report.parquet_only = sorted(set(found) - set(expected))
    for origin_date, (rows, created) in sorted(expected.items()):
        stored = found.get(origin_date, "missing")
        if stored == "missing":
            problem = "missing"
        elif stored is None:
            problem = "unreadable"
        elif stored[0] != rows:
            problem = f"row-count mismatch (parquet {stored[0]}, sql {rows})"
        elif stored[1] is not None and pd.Timestamp(stored[1]) != pd.Timestamp(created):
            problem = f"stale (newest row written {pd.Timestamp(stored[1])} in parquet, {pd.Timestamp(created)} in sql)"
        else:
            continue
        with engine.connect() as connection:
            frame = _sql_partition(connection, model_name, origin_date, levels)
        report.rows_rebuilt += replace_partition(storage_root, model_name, origin_date, frame, dataset)
        report.fixed[origin_date] = problem
    return report


def format_repair(report: RepairReport, storage_root: Path, dataset: Path | None = None) -> str:
    """The report for a person: one line when nothing needed fixing, else one line per origin date."""
    where = forecasts_root(storage_root, dataset)
    if not report.fixed:
        lines = [
            f"parquet dataset of model {report.model_name} matches table forecasts: {report.origins_checked} origin "
            f"date{'s' if report.origins_checked != 1 else ''} checked in {where}, nothing to repair"
        ]
    else:
        lines = [
            f"parquet dataset of model {report.model_name}: rebuilt {len(report.fixed)} of {report.origins_checked} origin "
            f"dates from table forecasts ({report.rows_rebuilt} rows) in {where}"
        ]
        lines += [f"  {origin_date}: rebuilt {problem}" for origin_date, problem in sorted(report.fixed.items())]
    lines += [f"  {origin_date}: in Parquet only (no rows in table forecasts), left as it is" for origin_date in report.parquet_only]
    return "\n".join(lines)
