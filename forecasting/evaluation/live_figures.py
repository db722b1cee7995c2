"""A version's live accuracy figures over its latest scored target periods, read from `forecast_errors`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from forecasting.evaluation.live_accuracy import period_label, summary_figures
from forecasting.sources.tables import forecast_errors


@dataclass(frozen=True)
class LiveFigures:
    """A version's live accuracy over its latest scored target periods, beside seasonal naive's on the
    same rows: what the run summary, the Prefect artifact and the report show."""

    version: int
    periods: int
    rows: int
    first_target: str
    last_target: str
    smape: float
    mase: float
    mae: float
    coverage_80: float | None
    coverage_95: float | None
    naive_smape: float
    naive_mase: float
    naive_mae: float

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain data."""
        return asdict(self)


def live_figures(engine: Engine, model_name: str, version: int, window: int) -> LiveFigures | None:
    """`version`'s live sMAPE, MASE, MAE and interval coverage over its latest `window` scored target
    periods, beside seasonal naive's; None when it has no scored rows (or `window` is 0)."""
    frame = latest_scored_rows(engine, model_name, version, window)
    if frame is None:
        return None
    figures = summary_figures(frame)
    targets = pd.to_datetime(frame["target_ts"])
    return LiveFigures(
        version=version, periods=int(targets.nunique()), rows=len(frame),
        first_target=period_label(targets.min()), last_target=period_label(targets.max()), **figures,
    )


def latest_scored_rows(engine: Engine, model_name: str, version: int, window: int) -> pd.DataFrame | None:
    """The version's forecast_errors rows whose target is among its latest `window` scored targets."""
    if window <= 0:
        return None
    errors = forecast_errors
    with engine.connect() as connection:
        latest = connection.execute(
            sa.select(errors.c.target_ts)
            .where(errors.c.model_name == model_name, errors.c.model_version == version)
            .group_by(errors.c.target_ts)
            .order_by(errors.c.target_ts.desc())
            .limit(window)
        ).scalars().all()
        if not latest:
            return None
        result = connection.execute(
            sa.select(errors).where(errors.c.model_name == model_name, errors.c.model_version == version, errors.c.target_ts >= min(latest))
        )
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
