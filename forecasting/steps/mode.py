"""The mode policy: which mode a run takes and why. `choose_mode` decides from facts alone (unit-tested
without a database or a training); `decide_mode` gathers the facts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pandas as pd

from forecasting.config.model_settings import PromotionConfig
from forecasting.config.settings import Settings, SourceConfig
from forecasting.errors import RunError
from forecasting.evaluation.live_accuracy import LiveAccuracy, is_finite
from forecasting.publishing.registry import (
    champion_version,
    load_version,
    newest_version,
    version_row,
)
from forecasting.runtime.clock import utc_now
from forecasting.steps.data import newer_observations, open_engine, prepare_data
from forecasting.steps.scoring import champion_live_accuracy

Mode = Literal["auto", "retrain", "fine-tune", "forecast"]
MODES: tuple[str, ...] = ("auto", "retrain", "fine-tune", "forecast")  # what `--mode` accepts
TRAINING_MODES: tuple[str, ...] = ("retrain", "fine-tune")  # the modes that train a version
RECORDED_MODES: tuple[str, ...] = (*MODES, "tune", "backtest")  # what a `runs` row may say


@dataclass(frozen=True)
class ModeDecision:
    """The mode a run takes (`retrain`, `fine-tune` or `forecast`) and one sentence saying why."""

    mode: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        """{"mode", "reason"}, as the flow's summary and the `runs` row carry them."""
        return asdict(self)


@dataclass(frozen=True)
class ModeFacts:
    """What the mode depends on. `new_observations()` gives (observations, series) newer than the
    watermark; `recent_score()` the champion's current holdout score, or why it could not be loaded
    (a text); `live()` the champion's live accuracy over the latest `promotion.live_window` target periods
    in `promotion.metric` beside seasonal naive's (None before any of its forecasts met an actual); each
    is only called where the decision needs it."""

    model_name: str
    champion: int | None
    trained_on: str = ""  # which version's data "new" is measured from, for the reason
    since: str = ""  # that version's data watermark, for the reason
    champion_age_days: float = 0.0
    promotion_metric: str | None = None  # the metric of the champion's score at promotion
    promotion_score: float | None = None  # that score
    new_observations: Callable[[], tuple[int, int]] = lambda: (0, 0)
    recent_score: Callable[[], float | str] = lambda: float("nan")
    live: Callable[[], LiveAccuracy | None] = lambda: None
    inputs_changed: Callable[[], str | None] = lambda: None  # see `changed_inputs`


def changed_inputs(champion: Any, source: SourceConfig, calendar: bool | None = None) -> str | None:
    """What differs between the inputs a loaded version reads and the configured ones (source.features,
    source.future_features and, given `calendar`, the model's calendar option and source.holidays; the
    forecast step accepts a champion with other holidays, as it builds its own), or None."""
    changes = [
        f"source.{key} {list(getattr(source, key))} (champion v{champion.version}: {list(getattr(champion, key))})"
        for key in ("features", "future_features")
        if list(getattr(champion, key)) != list(getattr(source, key))
    ]
    if calendar is not None and bool(champion.calendar) != calendar:
        changes.append(f"calendar {str(calendar).lower()} (champion v{champion.version}: {str(bool(champion.calendar)).lower()})")
    if calendar is not None and list(getattr(champion, "holidays", ())) != list(source.holidays):
        changes.append(f"source.holidays {list(source.holidays)} (champion v{champion.version}: {list(getattr(champion, 'holidays', ()))})")
    return "; ".join(changes) or None


def choose_mode(requested: str, facts: ModeFacts, promotion: PromotionConfig) -> ModeDecision:
    """The mode to run and why, from facts alone.

    `retrain` and `forecast` are taken as requested. `fine-tune` and `auto` retrain when the inputs
    the champion reads (features, future features, calendar) differ from the configured ones.
    `fine-tune` falls back to retrain without a champion and to forecast without new observations. `auto`: no champion -> retrain; champion older
    than `promotion.retrain_every_days` -> retrain; new observations -> fine-tune, unless the champion's
    live error over the latest `promotion.live_window` target periods grew more than
    `promotion.drift_tolerance` over its holdout score at promotion, or is worse than seasonal naive's on
    the same rows, or its error on the latest holdout grew more than that tolerance (then retrain; also
    when the champion cannot be loaded); none -> forecast only."""
    if requested in ("retrain", "forecast"):
        return ModeDecision(requested, f"{requested}: requested")
    if facts.champion is None:
        if requested == "fine-tune":
            return ModeDecision("retrain", f"retrain: fine-tune requested, but model {facts.model_name} has no champion to continue from yet")
        return ModeDecision("retrain", f"retrain: model {facts.model_name} has no champion yet")
    champion = facts.champion
    changed = facts.inputs_changed()
    if changed:  # a fine-tuned champion keeps its inputs, which the forecast step would refuse
        return ModeDecision("retrain", f"retrain: the inputs changed since champion v{champion} was trained: {changed}")
    if requested == "fine-tune":
        count, series = facts.new_observations()
        if not count:
            return ModeDecision("forecast", f"forecast: fine-tune requested, but nothing is newer than {facts.since}, the data of {facts.trained_on}")
        return ModeDecision("fine-tune", f"fine-tune: requested; {_observations(count, series)} since {facts.since} ({facts.trained_on})")
    if promotion.retrain_every_days is not None and facts.champion_age_days > promotion.retrain_every_days:
        return ModeDecision(
            "retrain", f"retrain: champion v{champion} is {facts.champion_age_days:.1f} days old (retrain_every_days {promotion.retrain_every_days:g})"
        )
    count, series = facts.new_observations()
    if not count:
        return ModeDecision("forecast", f"forecast: no observations newer than {facts.since}, the data of {facts.trained_on}")
    new_data = f"{_observations(count, series)} since {facts.since}"
    live = _live_drift(facts, promotion)
    if live:
        return ModeDecision("retrain", f"retrain: {live}; {new_data}")
    if facts.promotion_score is not None and facts.promotion_metric == promotion.metric:
        recent = facts.recent_score()
        if isinstance(recent, str):
            return ModeDecision("retrain", f"retrain: champion v{champion} could not be loaded ({recent}); {new_data}")
        if recent > facts.promotion_score * (1 + promotion.drift_tolerance):
            growth = recent / facts.promotion_score - 1 if facts.promotion_score else float("inf")
            return ModeDecision(
                "retrain",
                f"retrain: champion v{champion}'s recent {facts.promotion_metric} {recent:.3f} is {growth:.0%} worse than "
                f"{facts.promotion_score:.3f} at promotion (tolerance {promotion.drift_tolerance:.0%}); {new_data}",
            )
    return ModeDecision("fine-tune", f"fine-tune: {new_data} ({facts.trained_on})")


def _live_drift(facts: ModeFacts, promotion: PromotionConfig) -> str | None:
    """Why the champion's live accuracy calls for a retrain (the figures), or None."""
    if promotion.live_window <= 0:
        return None
    live = facts.live()
    if live is None or live.metric != promotion.metric or not is_finite(live.score):
        return None
    name = _METRIC_NAMES.get(live.metric, live.metric)
    window = (
        f"over the latest {live.periods} target period{'s' if live.periods != 1 else ''} "
        f"({live.first_target} to {live.last_target}, {live.rows} rows)"
    )
    score = facts.promotion_score
    if facts.promotion_metric == live.metric and is_finite(score) and live.score > score * (1 + promotion.drift_tolerance):
        growth = f"{live.score / score - 1:.0%} worse than" if score else "above"
        return (
            f"champion v{facts.champion}'s live {name} {live.score:.3f} {window} is {growth} its holdout {name} "
            f"{score:.3f} at promotion (tolerance {promotion.drift_tolerance:.0%})"
        )
    if is_finite(live.naive_score) and live.score > live.naive_score:
        return f"champion v{facts.champion}'s live {name} {live.score:.3f} {window} is worse than seasonal naive's {live.naive_score:.3f}"
    return None


_METRIC_NAMES = {"smape": "sMAPE", "mase": "MASE", "mae": "MAE"}


def _observations(count: int, series: int) -> str:
    return f"{count} new observation{'s' if count != 1 else ''} for {series} series"


def decide_mode(settings: Settings, model_name: str, requested: str) -> ModeDecision:
    """The mode to run and why (see `choose_mode`), from the registry and the history store.

    "New observations" are those newer than the data watermark of the newest version trained
    (champion or candidate), so a candidate that was not promoted is not trained again on the same data."""
    if requested in ("retrain", "forecast"):
        return choose_mode(requested, ModeFacts(model_name, None), settings.model(model_name).promotion)
    engine = open_engine(settings)
    with engine.connect() as connection:
        champion = champion_version(connection, model_name)
    if champion is None:
        return choose_mode(requested, ModeFacts(model_name, None), settings.model(model_name).promotion)
    row = version_row(engine, model_name, champion)
    promotion = settings.model(model_name).promotion
    newest = newest_version(engine, model_name) or row
    trained_on = f"champion v{champion}" if newest["version"] == champion else f"{newest['status']} v{newest['version']}; champion v{champion}"

    loaded_versions: list[Any] = []

    def load() -> Any:
        if not loaded_versions:
            loaded_versions.append(load_version(engine, model_name, champion))
        return loaded_versions[0]

    def inputs_changed() -> str | None:
        try:
            return changed_inputs(load(), settings.source, settings.model(model_name).calendar)
        except RunError:
            return None  # recent_score() says why it cannot be loaded

    def recent_score() -> float | str:
        try:
            loaded = load()
            # The network the promotion score came from (out of sample), where the artifact keeps it.
            scorer = loaded.holdout_forecaster() or loaded
        except RunError as error:
            return str(error)
        data = prepare_data(engine, settings, inputs=loaded.inputs)
        return scorer.score_holdout(data.arrays, row["holdout_metric"])["score"]

    facts = ModeFacts(
        model_name=model_name,
        champion=champion,
        trained_on=trained_on,
        since=_format_watermark(str(newest["data_watermark"])),
        champion_age_days=(utc_now() - row["created_at"]).total_seconds() / 86400,
        promotion_metric=row["holdout_metric"],
        promotion_score=row["holdout_score"],
        new_observations=lambda: newer_observations(settings, newest["data_watermark"]),
        recent_score=recent_score,
        live=lambda: champion_live_accuracy(engine, model_name, champion, promotion.metric, promotion.live_window),
        inputs_changed=inputs_changed,
    )
    return choose_mode(requested, facts, promotion)


def _format_watermark(value: str | None) -> str:
    return str(pd.Timestamp(value).date()) if value and pd.Timestamp(value) == pd.Timestamp(value).normalize() else str(value)
