"""What `forecasting report` shows, gathered from the job's tables and the history store into one frozen value."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from forecasting.history import store as history
from forecasting.preparation.future_rows import observed_only
from forecasting.config.settings import Settings
from forecasting.errors import ConfigError
from forecasting.sources.tables import forecast_errors, ingestion_state, model_aliases, model_versions, quarantine, runs

RUNS_SHOWN = 10
ANOMALIES_SHOWN = 10
ANOMALY_COLUMNS = ("series_id", "target_ts", "actual", "yhat", "lower_95", "upper_95", "interval_distance", "direction", "model_version",
                   "forecast_origin", "method")
METHOD_SERIES_NAMED = 10  # series named per method other than `network` in the report's method line


@dataclass(frozen=True)
class ReportData:
    """Everything the report renders: the model's champion and data watermark, its last runs, its versions
    with the gate's scores, the live accuracy by step and by target period (empty frames before any actual
    arrived), the charted series' histories, forecasts and scores, and the quarantine counts."""

    model: str
    champion: int | None
    watermark: str | None
    runs: pd.DataFrame
    versions: pd.DataFrame
    by_step: pd.DataFrame
    by_period: pd.DataFrame
    series: list[str]
    series_note: str
    histories: pd.DataFrame
    forecasts: pd.DataFrame
    series_scores: pd.DataFrame
    quarantine: pd.DataFrame
    levels: tuple[int, ...] = (80, 95)
    # The charted series' periods where a future feature is set (non-zero), past and planned: series_id, ts.
    planned: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["series_id", "ts"]))
    planned_label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # The newest anomalies (view `anomalies`, at most ANOMALIES_SHOWN), newest period first.
    anomalies: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(ANOMALY_COLUMNS)))
    # How each series' newest forecast was made (view `forecast_latest`, column `method`): series_id, method.
    methods: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["series_id", "method"]))

    @property
    def method_counts(self) -> list[tuple[str, int, list[str]]]:
        """Per method of the newest forecasts, `network` first: the number of series and, for other methods,
        the first METHOD_SERIES_NAMED of them by id."""
        found = []
        for method, group in self.methods.groupby("method", sort=False):
            named = [] if method == "network" else sorted(group["series_id"].astype(str))[:METHOD_SERIES_NAMED]
            found.append((str(method), int(group["series_id"].nunique()), named))
        return sorted(found, key=lambda item: (item[0] != "network", item[0]))

    @property
    def has_actuals(self) -> bool:
        """Whether any forecast of the model has met its actual."""
        return not self.by_step.empty


def _frame(connection: Connection, query: Any) -> pd.DataFrame:
    result = connection.execute(query)
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _view(connection: Connection, view: str, model: str, order: str) -> pd.DataFrame:
    table = sa.table(view, sa.column("model_name"), sa.column(order))
    return _frame(connection, sa.select(sa.text("*")).select_from(table).where(table.c.model_name == model).order_by(table.c[order]))


def newest_anomalies(connection: Connection, model: str, limit: int = ANOMALIES_SHOWN) -> pd.DataFrame:
    """The model's newest anomalies (view `anomalies`): latest period first, farthest out first within one."""
    view = sa.table("anomalies", sa.column("model_name"), *(sa.column(name) for name in ANOMALY_COLUMNS))
    query = (sa.select(*(view.c[name] for name in ANOMALY_COLUMNS)).where(view.c.model_name == model)
             .order_by(view.c.target_ts.desc(), view.c.interval_distance.desc(), view.c.series_id).limit(limit))
    return _frame(connection, query)


def _series_scores(connection: Connection, model: str) -> pd.DataFrame:
    """Per series: scored rows and mean scaled error (model and seasonal naive), worst first."""
    e = forecast_errors.c
    query = (
        sa.select(e.series_id, sa.func.count().label("scored"), sa.func.avg(e.scaled_error).label("mase"),
                  sa.func.avg(e.naive_scaled_error).label("naive_mase"))
        .where(e.model_name == model)
        .group_by(e.series_id)
    )
    frame = _frame(connection, query)
    return frame.sort_values(["mase", "series_id"], ascending=[False, True], na_position="last", ignore_index=True)


def _pick_series(known: list[str], scores: pd.DataFrame, named: list[str], top: int) -> tuple[list[str], str]:
    missing = [sid for sid in named if sid not in known]
    if missing:
        raise ConfigError(f"--series: {', '.join(repr(s) for s in missing)} {'has' if len(missing) == 1 else 'have'} no forecasts of this model")
    if scores["mase"].notna().any():
        worst = [sid for sid in scores.loc[scores["mase"].notna(), "series_id"].astype(str)][:top]
        note = f"the {len(worst)} series with the highest live scaled error (MASE)" if worst else ""
    else:
        worst = sorted(known)[:top]
        note = f"no live errors yet: the first {len(worst)} series by id" if worst else ""
    chosen = list(dict.fromkeys([*worst, *named]))
    if named:
        note = f"{note}, and {', '.join(named)} as asked" if note else f"{', '.join(named)} as asked"
    return chosen, note


def gather(engine: Engine, settings: Settings, model: str, named: list[str] | None = None, top: int = 5) -> ReportData:
    """The report's data for `model`; a ConfigError naming it when the model is not configured, has no
    forecasts yet, or a named series has none."""
    levels = tuple(sorted(settings.model(model).intervals))
    named = list(dict.fromkeys(named or []))
    with engine.connect() as connection:
        forecasts_table = sa.Table("forecasts", sa.MetaData(), autoload_with=connection)
        f = forecasts_table.c
        known = [str(s) for s in connection.execute(sa.select(f.series_id).where(f.model_name == model).distinct()).scalars()]
        if not known:
            raise ConfigError(f"model {model!r} has no forecasts yet in table forecasts; run `forecasting run --model {model}` first")
        champion = connection.execute(
            sa.select(model_aliases.c.version).where(model_aliases.c.model_name == model, model_aliases.c.alias == "champion")
        ).scalar()
        watermark = connection.execute(sa.select(ingestion_state.c.watermark).where(ingestion_state.c.source == settings.source.table)).scalar()
        r = runs.c
        run_rows = _frame(connection, sa.select(r.started_at, r.mode, r.reason, r.duration_seconds, r.status, r.produced_version, r.error)
                          .where(r.model_name == model).order_by(r.started_at.desc()).limit(RUNS_SHOWN))
        # A running run has no reason or error yet: empty, not pandas' "nan", in the table.
        run_rows[["reason", "error"]] = run_rows[["reason", "error"]].astype(object).where(run_rows[["reason", "error"]].notna(), None)
        v = model_versions.c
        versions = _frame(connection, sa.select(v.version, v.status, v.mode, v.created_at, v.data_watermark, v.holdout_metric,
                                                v.holdout_score, v.champion_score, v.baseline_score, v.decision)
                          .where(v.model_name == model).order_by(v.version.desc()))
        by_step = _view(connection, "accuracy_by_version_step", model, "step")
        by_period = _view(connection, "accuracy_by_period", model, "target_ts")
        scores = _series_scores(connection, model)
        chosen, note = _pick_series(known, scores, named, top)
        columns = [f[name] for name in ("series_id", "forecast_origin", "target_ts", "step", "yhat", "method") if name in f]
        columns += [f[name] for level in levels for name in (f"yhat_lower_{level}", f"yhat_upper_{level}") if name in f]
        forecasts = _frame(connection, sa.select(*columns).where(f.model_name == model, f.series_id.in_(chosen))) if chosen else pd.DataFrame()
        quarantined = quarantine_counts(connection, settings.source.table)
        anomalies = newest_anomalies(connection, model)
        methods = newest_methods(connection, model)
    features = list(settings.source.future_features)
    rows = history.read(history.history_root(settings.storage_root, settings.source.table), columns=["series_id", "ts", "value", *features], series=chosen)
    histories = observed_only(rows[["series_id", "ts", "value"]])
    return ReportData(
        model=model, champion=champion, watermark=str(watermark) if watermark is not None else None, runs=run_rows,
        versions=versions, by_step=by_step, by_period=by_period, series=chosen, series_note=note, histories=histories,
        forecasts=forecasts, series_scores=scores, quarantine=quarantined, levels=levels,
        planned=planned_periods(rows, features), planned_label=" or ".join(features), anomalies=anomalies,
        methods=methods,
    )


def newest_methods(connection: Connection, model: str) -> pd.DataFrame:
    """Each series' method in its newest forecast (view `forecast_latest`): series_id, method."""
    view = sa.table("forecast_latest", sa.column("model_name"), sa.column("series_id"), sa.column("method"))
    return _frame(connection, sa.select(view.c.series_id, view.c.method).where(view.c.model_name == model).distinct()
                  .order_by(view.c.series_id, view.c.method))


def planned_periods(rows: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The (series_id, ts) of the rows (observed or planned) where any future feature is set: finite and not zero."""
    if not features or rows.empty:
        return pd.DataFrame(columns=["series_id", "ts"])
    values = rows[features].to_numpy(dtype="float64")
    is_set = (pd.notna(values) & (values != 0)).any(axis=1)
    return rows.loc[is_set, ["series_id", "ts"]].reset_index(drop=True)


def quarantine_counts(connection: Connection, source: str) -> pd.DataFrame:
    """Per reason: source rows quarantined now (`rows`), those since resolved, and when one was last seen."""
    q = quarantine.c
    current = sa.func.sum(sa.case((q.resolved_at.is_(None), 1), else_=0))
    resolved = sa.func.sum(sa.case((q.resolved_at.is_(None), 0), else_=1))
    query = (sa.select(q.reason, current.label("rows"), resolved.label("resolved"), sa.func.max(q.last_seen_at).label("latest"))
             .where(q.source == source).group_by(q.reason).order_by(current.desc(), q.reason))
    return _frame(connection, query)
