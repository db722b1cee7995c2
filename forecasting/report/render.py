"""`forecasting report`: one self-contained HTML file (charts embedded as PNG data, no network or server
needed to open it) showing a model's runs, versions, live accuracy against seasonal naive, selected
series and quarantine counts. Every run also writes `<storage>/reports/<model>/latest.html` and a dated copy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from forecasting.config.settings import Settings
from forecasting.evaluation.live_figures import live_figures
from forecasting.report.contents import ReportData, gather
from forecasting.runtime.clock import utc_now
from forecasting.storage.files import replace_atomically
from forecasting.storage.locations import make_dirs

REPORTS = "reports"  # <storage>/reports/<model>/latest.html and <YYYY-MM-DD>.html
DEFAULT_TOP = 5


@dataclass(frozen=True)
class Report:
    """A rendered report: its HTML, the number of charts in it, and the series charted."""

    html: str
    charts: int
    series: list[str]


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return "–"
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def _when(value: Any) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    stamp = pd.Timestamp(value)
    return str(stamp.date()) if stamp == stamp.normalize() else stamp.strftime("%Y-%m-%d %H:%M")


def _step_version(data: ReportData) -> int | None:
    """The version whose accuracy by step is charted: the champion when it has scored rows, else the one with most."""
    if data.by_step.empty:
        return None
    totals = data.by_step[data.by_step["step"] == 0].set_index("model_version")["scored"]
    return int(data.champion) if data.champion in totals.index else int(totals.idxmax())


def _methods_by_origin(forecasts: pd.DataFrame) -> list[tuple[str, str]]:
    """(method, origin) per forecast origin of one series, oldest first; empty when every row is `network`
    (or the rows predate the column), so a chart says how it was forecast only when that is news."""
    if "method" not in forecasts or forecasts.empty or (forecasts["method"] == "network").all():
        return []
    firsts = forecasts.sort_values("forecast_origin").groupby("forecast_origin", sort=True)["method"].first()
    return [(str(method), _when(origin)) for origin, method in firsts.items()]


def render(data: ReportData, live: dict[str, Any] | None, generated: datetime | None = None) -> Report:
    """The report's HTML from its data and the champion's live figures (`evaluation.live_figures.LiveFigures.as_dict()`)."""
    from jinja2 import Environment, PackageLoader, select_autoescape  # lazy: jinja2

    from forecasting.report import charts as report_charts  # lazy: matplotlib

    charts: dict[str, Any] = {"series": []}
    version = _step_version(data)
    if version is not None:
        charts["by_step"] = report_charts.accuracy_by_step(data.by_step, version)
        charts["over_time"] = report_charts.accuracy_over_time(data.by_period, data.levels)
    scores = data.series_scores.set_index("series_id") if len(data.series_scores) else None
    histories = data.histories.assign(series_id=data.histories["series_id"].astype(str)) if len(data.histories) else data.histories
    planned = data.planned.assign(series_id=data.planned["series_id"].astype(str)) if len(data.planned) else data.planned
    for series_id in data.series:
        history = histories[histories["series_id"] == series_id] if len(histories) else pd.DataFrame(columns=["ts", "value"])
        forecasts = data.forecasts[data.forecasts["series_id"].astype(str) == series_id]
        score = scores.loc[series_id] if scores is not None and series_id in scores.index else None
        charts["series"].append({
            "series_id": series_id,
            "png": report_charts.series_chart(
                series_id, history, forecasts, data.levels, planned=planned.loc[planned["series_id"] == series_id, "ts"] if len(planned) else None,
                planned_label=data.planned_label,
            ),
            "scored": int(score["scored"]) if score is not None else 0,
            "mase": float(score["mase"]) if score is not None and pd.notna(score["mase"]) else None,
            "naive_mase": float(score["naive_mase"]) if score is not None and pd.notna(score["naive_mase"]) else None,
            "methods": _methods_by_origin(forecasts),
        })
    step_rows = []
    if version is not None:
        step_rows = data.by_step.sort_values(["model_version", "step"], ascending=[False, True]).to_dict("records")
    environment = Environment(loader=PackageLoader("forecasting.report", "templates"), autoescape=select_autoescape(["html", "j2"]))
    html = environment.get_template("report.html.j2").render(
        d=data, live=live, charts=charts, step_rows=step_rows, step_version=version, fmt=_fmt, when=_when,
        generated=(generated or utc_now()).strftime("%Y-%m-%d %H:%M"),
    )
    count = len(charts["series"]) + (2 if version is not None else 0)
    return Report(html=html, charts=count, series=list(data.series))


def build_report(engine: Engine, settings: Settings, model: str, series: list[str] | None = None, top: int = DEFAULT_TOP) -> Report:
    """Gather and render the report of `model` (the worst `top` series by live scaled error, plus `series`)."""
    data = gather(engine, settings, model, series, top)
    live = None
    if data.champion is not None:
        window = settings.model(model).promotion.live_window or 3
        figures = live_figures(engine, model, int(data.champion), window)
        live = figures.as_dict() if figures else None
    return render(data, live)


def write_html(path: Path, html: str) -> None:
    """Write the HTML atomically (a temporary file renamed over `path`; on an object store, one upload)."""
    make_dirs(path.parent)
    replace_atomically(path, lambda temporary: temporary.write_text(html, encoding="utf-8"))


def run_report(engine: Engine, settings: Settings, model: str) -> str:
    """The report a run writes: `<storage>/reports/<model>/latest.html`, the day's dated copy and, with
    `report.local_copy`, `<local_copy>/<model>.html`; returns the latest's path."""
    report = build_report(engine, settings, model)
    folder = settings.storage_root / REPORTS / model
    write_html(folder / f"{utc_now():%Y-%m-%d}.html", report.html)
    write_html(folder / "latest.html", report.html)
    if settings.report.local_copy:
        write_html(local_copy_path(settings, model), report.html)
    return str(folder / "latest.html")


def local_copy_path(settings: Settings, model: str) -> Path:
    """Where `report.local_copy` puts the model's report: `<local_copy>/<model>.html`."""
    return Path(str(settings.report.local_copy)) / f"{model}.html"
