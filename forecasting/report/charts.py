"""The report's charts, drawn with matplotlib (Agg, no display, no pyplot state) as PNG images for data URIs."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

MODEL_COLOR, NAIVE_COLOR, ACTUAL_COLOR = "#1f5fa8", "#b0561c", "#222222"
PLAN_COLOR = "#2e9e4f"  # the periods where a future feature (a promotion) is set
WIDTH, HEIGHT, DPI = 9.0, 3.3, 100


def _figure(rows: int = 1, height: float = HEIGHT):  # -> (Figure, axes)

    figure = Figure(figsize=(WIDTH, height * rows), dpi=DPI, layout="constrained")
    axes = figure.subplots(rows, 1, squeeze=False)[:, 0]
    for axis in axes:
        axis.grid(True, color="#dddddd", linewidth=0.6)
        axis.spines[["top", "right"]].set_visible(False)
    return figure, axes


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def accuracy_by_step(by_step: pd.DataFrame, version: int) -> str:
    """Live MASE and sMAPE per forecast step of one version, seasonal naive beside them."""
    rows = by_step[(by_step["model_version"] == version) & (by_step["step"] > 0)].sort_values("step")
    figure, axes = _figure(2, HEIGHT * 0.8)
    for axis, metric, label in ((axes[0], "mase", "MASE (mean scaled error)"), (axes[1], "smape", "sMAPE (%)")):
        axis.plot(rows["step"], rows[metric], marker="o", color=MODEL_COLOR, label=f"v{version}")
        axis.plot(rows["step"], rows[f"naive_{metric}"], marker="s", linestyle="--", color=NAIVE_COLOR, label="seasonal naive")
        axis.set_ylabel(label)
        axis.set_ylim(bottom=0)
        axis.legend(loc="best", fontsize=8, frameon=False)
    axes[1].set_xlabel("forecast step (periods after the origin)")
    steps = rows["step"]
    for axis in axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(steps):  # whole steps on the axis, also when one step alone is scored yet
            first, last = int(steps.min()), int(steps.max())
            axis.set_xlim(first - 0.5, last + 0.5)
            if last - first < 24:
                axis.set_xticks(np.arange(first, last + 1))
    axes[0].set_title(f"Live accuracy of v{version} by forecast step", loc="left", fontsize=11)
    return _png(figure)


def accuracy_over_time(by_period: pd.DataFrame, levels: tuple[int, ...]) -> str:
    """Live MASE per target period (all versions and steps), seasonal naive beside it; interval coverage
    per period against the nominal levels."""
    rows = by_period.assign(target_ts=pd.to_datetime(by_period["target_ts"])).sort_values("target_ts")
    # Periods as labels: a date axis would tick days between monthly points.
    rows["target_ts"] = [_period(value) for value in rows["target_ts"]]
    figure, axes = _figure(2, HEIGHT * 0.8)
    axes[0].plot(rows["target_ts"], rows["mase"], marker="o", color=MODEL_COLOR, label="model")
    axes[0].plot(rows["target_ts"], rows["naive_mase"], marker="s", linestyle="--", color=NAIVE_COLOR, label="seasonal naive")
    axes[0].set_ylabel("MASE")
    axes[0].set_ylim(bottom=0)
    axes[0].set_title("Live accuracy by target period (every origin whose forecast reached it)", loc="left", fontsize=11)
    axes[0].legend(loc="best", fontsize=8, frameon=False)
    for level, color in zip(levels, ("#2e8b57", "#6a3d9a", "#888888")):
        column = f"coverage_{level}"
        if column in rows:
            axes[1].plot(rows["target_ts"], rows[column], marker="o", color=color, label=f"{level}% interval")
            axes[1].axhline(level, color=color, linestyle=":", linewidth=1)
    axes[1].set_ylabel("actuals inside (%)")
    axes[1].set_ylim(0, 105)
    axes[1].legend(loc="best", fontsize=8, frameon=False)
    axes[1].set_xlabel("target period (dotted: nominal level)")
    for axis in axes:
        axis.tick_params(axis="x", labelrotation=45 if len(rows) > 8 else 0, labelsize=8)
        if len(rows) > 24:
            axis.xaxis.set_major_locator(MaxNLocator(12))
    return _png(figure)


def _period(value: pd.Timestamp) -> str:
    stamp = pd.Timestamp(value)
    if stamp != stamp.normalize():
        return stamp.strftime("%Y-%m-%d %H:%M")
    return stamp.strftime("%Y-%m") if stamp.day == 1 else stamp.strftime("%Y-%m-%d")


def series_chart(
    series_id: str, history: pd.DataFrame, forecasts: pd.DataFrame, levels: tuple[int, ...], context: int = 36,
    planned: pd.Series | None = None, planned_label: str = "",
) -> str:
    """One series: its recent history, every stored origin's forecast (older origins as thinner, fainter
    lines; the newest with its interval bands, so overlapping bands do not hide each other), the
    actuals that arrived after the first origin, marked, and the periods where a future feature is set
    (`planned`: their timestamps), shaded."""
    figure, axes = _figure(1)
    axis = axes[0]
    history = history.assign(ts=pd.to_datetime(history["ts"])).sort_values("ts")
    forecasts = forecasts.assign(
        target_ts=pd.to_datetime(forecasts["target_ts"]), forecast_origin=pd.to_datetime(forecasts["forecast_origin"])
    )
    origins = sorted(forecasts["forecast_origin"].unique())
    first_origin = origins[0] if origins else history["ts"].max()
    before = history[history["ts"] <= first_origin].tail(context)
    after = history[history["ts"] > first_origin]
    axis.plot(before["ts"], before["value"], color=ACTUAL_COLOR, linewidth=1.2, label="history")
    if len(after):
        joined = pd.concat([before.tail(1), after])
        axis.plot(joined["ts"], joined["value"], color=ACTUAL_COLOR, linewidth=1.2)
        axis.scatter(after["ts"], after["value"], color=ACTUAL_COLOR, s=18, zorder=5, label="actuals since the first origin")
    alphas = np.linspace(0.35, 1.0, len(origins)) if len(origins) > 1 else [1.0]
    for number, (origin, alpha) in enumerate(zip(origins, alphas)):
        rows = forecasts[forecasts["forecast_origin"] == origin].sort_values("target_ts")
        newest = number == len(origins) - 1
        for level, shade in zip(sorted(levels, reverse=True), (0.15, 0.3, 0.4)):
            lower, upper = f"yhat_lower_{level}", f"yhat_upper_{level}"
            if newest and lower in rows and rows[lower].notna().any():
                axis.fill_between(rows["target_ts"], rows[lower], rows[upper], color=MODEL_COLOR, alpha=shade, linewidth=0,
                                  label=f"{level}% interval")
        axis.plot(rows["target_ts"], rows["yhat"], color=MODEL_COLOR, alpha=alpha, linewidth=1.6 if newest else 1.0,
                  label=f"forecast from {pd.Timestamp(origin).date()}" if newest else ("older origins" if number == 0 else None))
    if planned is not None and len(planned):
        _shade_periods(axis, pd.to_datetime(pd.Series(planned)), before["ts"].min() if len(before) else None, history["ts"], planned_label)
    axis.set_title(f"Series {series_id}: {len(origins)} stored forecast origin{'s' if len(origins) != 1 else ''}", loc="left", fontsize=11)
    axis.legend(loc="best", fontsize=8, frameon=False, ncols=2)
    return _png(figure)


def _shade_periods(axis, periods: pd.Series, start, times: pd.Series, label: str) -> None:
    """Shade each period (a timestamp, half the typical spacing either side) from `start` on; one legend entry."""
    spacing = times.sort_values().diff().median() if len(times) > 1 else pd.Timedelta(days=1)
    half = (spacing if pd.notna(spacing) else pd.Timedelta(days=1)) / 2
    shown = periods[periods >= start] if start is not None else periods
    for number, ts in enumerate(sorted(shown.unique())):
        axis.axvspan(ts - half, ts + half, color=PLAN_COLOR, alpha=0.18, linewidth=0, label=f"{label or 'future feature'} set" if number == 0 else None)

