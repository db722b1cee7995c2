"""Scoring as actuals arrive: after each run's pull, every stored forecast row whose actual is now in the
history store and was not scored yet (or whose actual was revised, or whose forecast was rewritten) is
scored into `forecast_errors`; and the champion's live accuracy the mode policy reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from forecasting.config.credentials import redact
from forecasting.config.settings import Settings
from forecasting.evaluation.live_accuracy import (
    KEY,
    LiveAccuracy,
    live_accuracy,
    needs_scoring,
    period_label,
    score_rows,
)
from forecasting.evaluation.live_figures import latest_scored_rows, live_figures
from forecasting.history import store as history
from forecasting.model.defaults import default_season, effective_season
from forecasting.preparation.future_rows import observed_only
from forecasting.preparation.validation import infer_frequency
from forecasting.report.render import run_report
from forecasting.runtime.clock import utc_now
from forecasting.runtime.phases import timed
from forecasting.sources.tables import forecast_errors
from forecasting.sources.upserts import upsert_frame
from forecasting.storage.locations import share_link
from forecasting.steps.data import open_engine, recorded_frequency

ANOMALIES_SHOWN = 5
FORECAST_COLUMNS = [*KEY[:1], "model_version", *KEY[1:], "step", "yhat", "yhat_lower_80", "yhat_upper_80", "yhat_lower_95", "yhat_upper_95"]


@dataclass(frozen=True)
class ScoringSummary:
    """What `score_step` did: rows scored for the first time, re-scored (revised actual or rewritten
    forecast), removed (their actual left the source), and the rows scored in all for the model."""

    scored: int
    rescored: int
    removed: int
    total: int
    anomalies: int = 0  # actuals this run scored outside the 95% interval of their newest forecast
    anomaly_examples: list[dict[str, Any]] = field(default_factory=list)  # the newest of them (ANOMALIES_SHOWN)

    def as_dict(self) -> dict[str, Any]:
        """The counts as plain data."""
        return asdict(self)


def _candidates(connection: Connection, model_name: str, newest: pd.Timestamp) -> pd.DataFrame:
    """The model's forecast rows whose target is at or before the newest observation, with their stored
    scores' yhat and actual (NaN where not scored)."""
    forecasts = sa.Table("forecasts", sa.MetaData(), autoload_with=connection)
    errors = forecast_errors
    columns = [forecasts.c[name] for name in FORECAST_COLUMNS if name in forecasts.c]
    join = forecasts.outerjoin(errors, sa.and_(*(forecasts.c[name] == errors.c[name] for name in KEY)))
    query = (
        sa.select(*columns, errors.c.yhat.label("scored_yhat"), errors.c.actual.label("scored_actual"))
        .select_from(join)
        .where(forecasts.c.model_name == model_name, forecasts.c.target_ts <= newest.to_pydatetime())
    )
    result = connection.execute(query)
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    for name in ("scored_yhat", "scored_actual"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame


def score_forecasts(engine: Engine, settings: Settings, model_name: str, run_id: str) -> ScoringSummary:
    """Score the model's stored forecasts whose actuals arrived (see the module), in one transaction,
    bulk-written like the forecasts; idempotent: a second call scores nothing."""
    observed = observed_only(history.read(history.history_root(settings.storage_root, settings.source.table), columns=["series_id", "ts", "value"]))
    with engine.begin() as connection:
        if observed.empty:
            return ScoringSummary(0, 0, 0, _count(connection, model_name))
        newest = pd.Timestamp(observed["ts"].max())
        candidates = _candidates(connection, model_name, newest)
        if candidates.empty:
            return ScoringSummary(0, 0, 0, _count(connection, model_name))
        todo, gone = needs_scoring(candidates, observed)
        rescored = 0
        if not todo.empty:
            frequency = infer_frequency(observed, settings.source.frequency or recorded_frequency(connection, settings.source.table))
            # The season the model's gate used; a model no longer configured keeps the frequency's.
            config = settings.models.get(model_name)
            season = effective_season(config, frequency) if config is not None else default_season(frequency)
            scored = score_rows(todo, observed, frequency, season)
            keys = scored[KEY].merge(candidates.loc[candidates["scored_actual"].notna(), KEY].assign(seen=True), on=KEY, how="left")
            rescored = int(keys["seen"].fillna(False).astype(bool).sum())
            scored["run_id"] = run_id
            scored["scored_at"] = pd.Timestamp(utc_now())
            scored["inside_80"] = scored["inside_80"].astype(object)
            scored["inside_95"] = scored["inside_95"].astype(object)
            scored["interval_distance"] = scored["interval_distance"].astype("float64")
            upsert_frame(connection, forecast_errors, scored, key=KEY)
        else:
            scored = todo
        for row in gone.itertuples(index=False):
            connection.execute(
                sa.delete(forecast_errors).where(*(forecast_errors.c[name] == _plain(getattr(row, name)) for name in KEY))
            )
        touched = pd.concat([pd.to_datetime(scored["target_ts"]), pd.to_datetime(gone["target_ts"])]) if len(scored) or len(gone) else None
        if touched is not None:
            flag_anomalies(connection, model_name, pd.Timestamp(touched.min()))
        count, examples = run_anomalies(connection, model_name, run_id)
        return ScoringSummary(len(scored) - rescored, rescored, len(gone), _count(connection, model_name), count, examples)


def flag_anomalies(connection: Connection, model_name: str, since: pd.Timestamp) -> None:
    """Set `anomaly` on the model's scored rows whose target is at or after `since`: on the row of the
    newest origin that forecast the period (the smallest step), `NOT inside_95` (NULL without a 95%
    interval); NULL on older origins' rows, so each actual is judged once, by its latest forecast."""
    e = forecast_errors
    older = forecast_errors.alias("newer")
    newest = (
        sa.select(sa.func.max(older.c.forecast_origin))
        .where(older.c.model_name == e.c.model_name, older.c.series_id == e.c.series_id, older.c.target_ts == e.c.target_ts)
        .scalar_subquery()
    )
    flag = sa.case((e.c.forecast_origin == newest, sa.not_(e.c.inside_95)), else_=sa.null())
    connection.execute(sa.update(e).where(e.c.model_name == model_name, e.c.target_ts >= since.to_pydatetime()).values(anomaly=flag))


def run_anomalies(connection: Connection, model_name: str, run_id: str, limit: int = ANOMALIES_SHOWN) -> tuple[int, list[dict[str, Any]]]:
    """How many anomalies the run scored (view `anomalies`), and the newest `limit` of them, farthest out first
    within a period, as plain data (period and origin as text)."""
    view = sa.table("anomalies", *(sa.column(name) for name in ANOMALY_COLUMNS))
    where = (view.c.model_name == model_name, view.c.run_id == run_id)
    count = int(connection.execute(sa.select(sa.func.count()).select_from(view).where(*where)).scalar() or 0)
    if not count:
        return 0, []
    rows = connection.execute(
        sa.select(*(view.c[name] for name in ANOMALY_COLUMNS)).where(*where)
        .order_by(view.c.target_ts.desc(), view.c.interval_distance.desc(), view.c.series_id).limit(limit)
    ).mappings().all()
    return count, [_anomaly(row) for row in rows]


ANOMALY_COLUMNS = ["model_name", "series_id", "target_ts", "actual", "yhat", "lower_95", "upper_95", "interval_distance", "direction",
                   "model_version", "forecast_origin", "step", "run_id"]


def _anomaly(row: Any) -> dict[str, Any]:
    plain = {name: row[name] for name in ("series_id", "actual", "yhat", "lower_95", "upper_95", "interval_distance", "direction", "model_version", "step")}
    distance = plain["interval_distance"]
    plain["interval_distance"] = None if distance is None else float(distance)
    return {**plain, "period": period_label(row["target_ts"]), "origin": period_label(row["forecast_origin"])}


def _plain(value: Any) -> Any:
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


def _count(connection: Connection, model_name: str) -> int:
    return int(connection.execute(sa.select(sa.func.count()).where(forecast_errors.c.model_name == model_name)).scalar() or 0)


@timed("score", data=True)
def score_step(settings: Settings, model_name: str, run_id: str) -> ScoringSummary:
    """Score the model's forecasts whose actuals arrived with this run's pull (`score_forecasts`)."""
    return score_forecasts(open_engine(settings), settings, model_name, run_id)


def champion_live_accuracy(engine: Engine, model_name: str, version: int, metric: str, window: int) -> LiveAccuracy | None:
    """The version's live `metric` over its latest `window` scored target periods, beside seasonal
    naive's on the same rows (`accuracy.live_accuracy`); None when it has no scored rows yet."""
    frame = latest_scored_rows(engine, model_name, version, window)
    return None if frame is None else live_accuracy(frame, metric, window)


def with_accuracy(settings: Settings, summary: Any, scoring: ScoringSummary, report: str | None = None) -> Any:
    """The run's summary (`RunSummary`) with this run's scoring, the forecasting version's live figures
    over `promotion.live_window` target periods (the latest 3 when that is 0) and the report's path."""
    window = settings.model(summary.model).promotion.live_window or 3
    live = live_figures(open_engine(settings), summary.model, summary.forecast.version, window)
    return replace(summary, accuracy={"scoring": scoring.as_dict(), "live": live.as_dict() if live else None, "report": report})


@timed("report", data=True)
def report_step(settings: Settings, model_name: str) -> str:
    """Write the model's HTML report to `<storage>/reports/<model>/latest.html` (and the day's dated copy);
    returns its path, or why it was not written: the forecasts are already stored, so a report that
    cannot be drawn is said in the summary rather than failing the run."""
    try:
        return run_report(open_engine(settings), settings, model_name)
    except Exception as error:  # noqa: BLE001
        return f"not written ({redact(f'{type(error).__name__}: {error}', settings.database.url)})"


def report_link(settings: Settings, report: str | None) -> str | None:
    """A link people can open to the report the run wrote (`report_step`'s path): a presigned URL living
    `report.link_expiry_hours` on an object store, a file:// URL on the local disk; None when no report
    was written. Kept out of the runs row and the logs: only the run's Prefect artifact shows it."""
    if not report or report.startswith("not written"):
        return None
    return share_link(settings.locate(report), settings.report.link_expiry_hours * 3600)


def live_markdown(summary: dict[str, Any], link: str | None = None) -> str | None:
    """The run's live figures and report (a link to it when there is one) as markdown (the flow's
    `<model>-live-accuracy` artifact)."""
    accuracy = summary.get("accuracy") or {}
    live, report = accuracy.get("live"), accuracy.get("report")
    if not live and not report:
        return None
    shown = f"[open the report]({link}) (`{report}`)" if link else f"`{report}`"
    lines = [f"**Model {summary['model']}**: report {shown}", ""]
    if live:
        lines += [
            f"Live accuracy of v{live['version']} over {live['periods']} target period{'s' if live['periods'] != 1 else ''} ({live['first_target']} to "
            f"{live['last_target']}, {live['rows']} rows):",
            "",
            "| figure | model | seasonal naive |",
            "|---|---|---|",
            *(f"| {name} | {_number(live[key])} | {_number(live['naive_' + key])} |" for name, key in (("sMAPE", "smape"), ("MASE", "mase"), ("MAE", "mae"))),
            *(f"| coverage {level}% | {_number(live[f'coverage_{level}'])} | nominal {level} |" for level in (80, 95)),
        ]
    else:
        lines.append("No forecast of the champion has met its actual yet.")
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
