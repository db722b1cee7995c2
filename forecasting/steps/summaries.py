"""Run summaries: what one run pulled, read, trained and wrote, as one typed value, and as text for a person."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from forecasting.config.credentials import masked_url
from forecasting.config.settings import Settings
from forecasting.history.pull_result import PullResult
from forecasting.steps.forecasts import ForecastSummary
from forecasting.steps.mode import ModeDecision
from forecasting.steps.train import TrainSummary


@dataclass(frozen=True)
class Writes:
    """What the write steps did: rows upserted into SQL and Parquet, and the Parquet repair's report."""

    rows_sql: int
    rows_parquet: int
    repaired: dict[str, Any] | None = None


@dataclass(frozen=True)
class RunSummary:
    """One pipeline run of one model: its decision, the pull, what was read, forecast and skipped, the
    version trained (if any), the rows written and where. `as_dict()` is what the flow returns."""

    run_id: str
    model: str
    decision: ModeDecision
    forecast: ForecastSummary
    writes: Writes
    trained: TrainSummary | None = None
    pull: PullResult | None = None
    database: str = ""
    parquet: str = ""
    models: str = ""
    accuracy: dict[str, Any] | None = None  # forecast_errors scoring and live figures (steps.accuracy.with_accuracy)

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain data: the keys `format_summary`, `finish_run` and the CLI's JSON read."""
        forecast = self.forecast
        return {
            "run_id": self.run_id,
            "model": self.model,
            "mode": self.decision.mode,
            "reason": self.decision.reason,
            "pull": self.pull.as_dict() if self.pull else None,
            **{key: value for key, value in asdict(forecast).items() if key not in ("staged", "version")},
            "champion_version": forecast.version,
            "produced_version": self.trained.version if self.trained else None,
            "training": self.trained.as_dict() if self.trained else None,
            "rows_sql": self.writes.rows_sql,
            "rows_parquet": self.writes.rows_parquet,
            "parquet_repair": self.writes.repaired,
            "database": self.database,
            "parquet": self.parquet,
            "models": self.models,
            "accuracy": self.accuracy,
        }


def summarise(
    settings: Settings,
    model_name: str,
    run_id: str,
    decision: ModeDecision,
    forecast: ForecastSummary,
    writes: Writes,
    trained: TrainSummary | None = None,
    pull: PullResult | None = None,
) -> RunSummary:
    """The run's summary from what its steps returned, with where the outputs are."""
    return RunSummary(
        run_id=run_id, model=model_name, decision=decision, forecast=forecast, writes=writes, trained=trained, pull=pull,
        database=masked_url(settings.database.url), parquet=str(settings.forecasts_root),
        models=str(settings.storage_root / "models" / model_name),
    )


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a few lines for a person."""
    lines = [f"run {summary['run_id']} of model {summary['model']}: {summary['reason']}"]
    pull = summary.get("pull")
    if pull:
        if pull["full_refresh"]:
            since = f"full refresh: {pull['refresh_reason']}" if pull["refresh_reason"] else "full refresh"
        else:
            since = f"{pull['series_read_whole']} series read whole, {pull['series_read_window']} re-read recent, {pull['series_unchanged']} unchanged"
        lines.append(
            f"  pulled {pull['rows_pulled']} rows ({since}): {pull['rows_new']} new, {pull['rows_revised']} revised, "
            f"{pull['rows_removed']} removed, {pull['new_series']} new series, {pull['series_removed']} series removed, "
            f"{pull['quarantined']} quarantined, {pull['duplicates']} duplicates; watermark {pull['watermark']}"
        )
        if pull["series_set_aside"]:
            lines.append(f"  series set aside (rows quarantined, history kept): {pull['series_set_aside']}")
            for series_id, reason in pull["set_aside_examples"].items():
                lines.append(f"    set aside {series_id}: {reason}")
    lines += [
        f"  series read: {summary['series_read']} ({summary['rows_read']} observations, frequency {summary['frequency']}); "
        f"forecast: {summary['series_forecast']}; skipped: {summary['series_skipped']}",
    ]
    for series_id, reason in summary.get("skipped_examples", {}).items():
        lines.append(f"    skipped {series_id}: {reason}")
    if summary.get("methods"):
        lines.append("  series per method: " + ", ".join(f"{method} {count}" for method, count in summary["methods"].items()))
    if summary.get("series_short_history"):
        lines.append(
            f"  short series: {summary['series_short_history']} shorter than the lookback, forecast from their window padded "
            "with their own rows (method short_history)"
        )
        for series_id, what in summary.get("short_history_examples", {}).items():
            lines.append(f"    short {series_id}: {what}")
    if summary.get("series_constant"):
        lines.append(
            f"  constant series: {summary['series_constant']} forecast as their last value with zero-width intervals, not by the network"
        )
        for series_id, what in summary.get("constant_examples", {}).items():
            lines.append(f"    constant {series_id}: {what}")
    if summary.get("series_stale"):
        lines.append(f"  stale series (not forecast): {summary['series_stale']}")
        for series_id, reason in summary.get("stale_examples", {}).items():
            lines.append(f"    stale {series_id}: {reason}")
    if summary.get("series_out_of_range"):
        factor = f"{summary.get('range_factor', 10):g}"
        lines.append(
            f"  forecasts far out of range: {summary['series_out_of_range']} series forecast more than {factor}x their observed "
            f"range beyond it (written unchanged; check them)"
        )
        for series_id, what in summary.get("out_of_range_examples", {}).items():
            lines.append(f"    out of range {series_id}: {what}")
    trained = summary.get("training")
    if trained:
        layers = ", ".join(
            f"{layer['units']} units" + (f" dropout {layer['dropout']}" if layer["dropout"] else "") + f" {layer['activation']}"
            for layer in trained["layers"]
        )
        metrics = trained["metrics"]
        members = trained.get("members", 1)
        ensemble = f" x {members} members (lookbacks {'/'.join(map(str, trained['member_lookbacks']))}, median)" if members > 1 else ""
        refit = f"; refit on {trained['refit']['windows']} windows" if trained.get("refit") else ""
        seasonal = trained.get("seasonal_series")
        deseasonalized = f", {seasonal} series deseasonalised" if seasonal is not None else ""
        lines.append(
            f"  model: {trained['cell'].upper()} [{layers}]{ensemble}, {trained.get('normalization', 'series')} scaling{deseasonalized}; "
            f"{trained['epochs_run']} epochs run, best epoch {trained['best_epoch']}, "
            f"best validation loss {trained['best_val_loss']:.4f} ({trained['train_windows']} training / {trained['val_windows']} validation windows"
            f"{refit}, {trained['train_seconds']} s)"
        )
        if trained.get("series_too_short"):
            lines.append(
                f"  series too short to train on: {trained['series_too_short']} (fewer than lookback {trained['lookback']} + horizon "
                f"{summary.get('horizon', 'horizon')} observations: no window to train on; forecast all the same)"
            )
        if trained.get("anomalies_left_out"):
            lines.append(f"  anomalies left out of training: {trained['anomalies_left_out']} flagged actuals read as missing (ignore_anomalies)")
        lines.append(
            f"  validation sMAPE: model {metrics['val_smape_model']:.2f}, naive {metrics['val_smape_naive']:.2f}, "
            f"seasonal naive {metrics['val_smape_seasonal_naive']:.2f}"
        )
        if "holdout_smape_blend" in metrics:
            lines.append(
                f"  blend: {blend_text(trained.get('blend_weights') or {})} (holdout sMAPE network {metrics['holdout_smape_network']:.2f}, "
                f"Theta {metrics['holdout_smape_theta']:.2f}, damped trend {metrics['holdout_smape_damped_trend']:.2f}, "
                f"blend {metrics['holdout_smape_blend']:.2f})"
            )
        status = "champion" if trained["promoted"] else "candidate"
        parent = f", fine-tuned from v{trained['parent_version']}" if trained.get("parent_version") else ""
        tuned = f", tuning record {trained['tuning_record']}" if trained.get("tuning_record") else ""
        lines.append(f"  version registered: {trained['version']} ({status}{parent}{tuned}) in {summary['models']}/{trained['version']}")
        lines.append(f"  promotion gate on the latest {summary.get('horizon', 'horizon')} observations of each series: {trained['decision']}")
    else:
        lines.append(f"  model: champion version {summary['champion_version']} (no training in this run)")
    if trained and not trained["promoted"]:
        lines.append(f"  forecasts come from champion version {summary['champion_version']}")
    lines.append(f"  rows written: {summary['rows_sql']} to table forecasts in {summary['database']}")
    lines.append(f"  rows written: {summary['rows_parquet']} to Parquet dataset {summary['parquet']}")
    repaired = summary.get("parquet_repair") or {}
    if repaired.get("fixed"):
        listed = ", ".join(f"{day} {problem}" for day, problem in list(repaired["fixed"].items())[:5])
        more = f", and {len(repaired['fixed']) - 5} more" if len(repaired["fixed"]) > 5 else ""
        lines.append(
            f"  parquet repaired: {repaired['origins_repaired']} origins rebuilt from table forecasts "
            f"({repaired['rows_rebuilt']} rows: {listed}{more})"
        )
    accuracy = summary.get("accuracy")
    if accuracy:
        lines.append(accuracy_line(accuracy, summary))
    if summary.get("origins"):
        lines.append(f"  forecast origins: {', '.join(summary['origins'])}")
    return "\n".join(lines)


def blend_text(weights: dict[str, float]) -> str:
    """The blend's shares in words: `network 0.4, Theta 0.3, damped trend 0.3` (`network alone` without weights)."""
    used = {name: weight for name, weight in weights.items() if weight > 0}
    if not used:
        return "network alone"
    names = {"theta": "Theta", "damped_trend": "damped trend"}
    parts = [f"network {round(1 - sum(used.values()), 2):g}"] + [f"{names.get(name, name)} {weight:g}" for name, weight in used.items()]
    return ", ".join(parts)


def accuracy_line(accuracy: dict[str, Any], summary: dict[str, Any] | None = None) -> str:
    scoring = accuracy["scoring"]
    line = (
        f"  forecasts scored against arrived actuals: {scoring['scored']} new, {scoring['rescored']} re-scored, "
        f"{scoring['removed']} removed; {scoring['total']} in table forecast_errors"
    )
    if scoring.get("anomalies"):
        line += "\n" + anomalies_line(scoring)
    live = accuracy.get("live")
    if live:
        line += (
            f"\n  live accuracy of v{live['version']} over {live['periods']} target period{'s' if live['periods'] != 1 else ''} "
            f"({live['first_target']} to {live['last_target']}, {live['rows']} rows): "
            f"sMAPE {live['smape']:.2f} (seasonal naive {live['naive_smape']:.2f}), MASE {live['mase']:.3f} "
            f"(seasonal naive {live['naive_mase']:.3f}), coverage 80% {_percent(live['coverage_80'])}, 95% {_percent(live['coverage_95'])}"
        )
    elif summary is not None and summary.get("champion_version") is not None:
        line += "\n  " + _no_live_figures(summary)
    if accuracy.get("report"):
        line += f"\n  report: {accuracy['report']}"
    return line


def anomalies_line(scoring: dict[str, Any]) -> str:
    """The anomalies this run's scoring found (`ScoringSummary.anomalies`), with the newest few."""
    count = scoring["anomalies"]
    shown = scoring.get("anomaly_examples") or []
    listed = "; ".join(
        f"{a['series_id']} {a['period']} actual {a['actual']:g} {a['direction']} 95% [{a['lower_95']:g}, {a['upper_95']:g}]"
        + (f" by {a['interval_distance']:.2f} half-widths" if a["interval_distance"] is not None else "")
        + f" (v{a['model_version']}, origin {a['origin']})"
        for a in shown
    )
    more = f"; and {count - len(shown)} more" if count > len(shown) else ""
    return (
        f"  anomalies: {count} arriving actual{'s' if count != 1 else ''} outside the 95% interval of the newest forecast "
        f"(view anomalies): {listed}{more}"
    )


def _no_live_figures(summary: dict[str, Any]) -> str:
    """Why the run has no live figures to show: the forecasting version has no forecast scored yet."""
    version = summary["champion_version"]
    trained = summary.get("training") or {}
    if trained.get("promoted") and trained.get("version") == version:
        why = "it became the champion in this run, so no forecast of it has met an actual"
    else:
        why = "none of its forecasts has met its actual yet"
    return f"live accuracy of v{version}: none yet ({why}); its figures appear once the periods it forecast arrive"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def summary_json(summary: dict[str, Any]) -> str:
    """The summary as one JSON line (sorted keys; dates and numbers as text where JSON has no type)."""
    return json.dumps(summary, default=str, sort_keys=True)


def format_tuning(result: dict[str, Any]) -> str:
    """A tuning result (`TuneSummary.as_dict()`) as a few lines for a person."""
    hp = result["hyperparameters"]
    layers = ", ".join(f"{layer['units']} units dropout {layer['dropout']} {layer['activation']}" for layer in hp["layers"])
    return "\n".join(
        [
            f"{result['tuner']} search: {result['trials_run_now']} trials run now, {result['trials_completed']} completed in all "
            f"({result['seconds']} s), state in {result['directory']}",
            f"  best validation loss {result['best_val_loss']:.4f}: lookback {hp['lookback']}, learning rate {hp['learning_rate']:g}, layers [{layers}]",
            f"  stored as tuning record {result['tuning_record']}; the next retrain uses it",
        ]
    )


def scores_table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for a table of the run's scores: holdout (gate) and validation, model vs baselines."""
    trained = summary.get("training")
    if not trained:
        return []
    gate, metrics = trained["holdout"], trained["metrics"]
    rows = [
        {"set": "holdout", "metric": gate["holdout_metric"], "new_version": gate.get("holdout_score"),
         "champion": gate.get("champion_score"), "seasonal_naive": gate.get("baseline_score")},
        {"set": "validation", "metric": "smape", "new_version": metrics["val_smape_model"], "champion": None,
         "seasonal_naive": metrics["val_smape_seasonal_naive"]},
        {"set": "validation", "metric": "mae", "new_version": metrics["val_mae_model"], "champion": None,
         "seasonal_naive": metrics["val_mae_seasonal_naive"]},
    ]
    return [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()} for row in rows]
