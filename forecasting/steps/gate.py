"""The promotion gate: whether a newly trained version replaces the champion, from scores alone
(unit-tested without a database or a training)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GateFacts:
    """What the gate compares. `score` and `baseline`: the new version's and seasonal naive's
    `metric` on the latest holdout. `champion`: the champion's version number (None: no champion,
    or one that could not be loaded, then `unusable` says why); `champion_horizon` its horizon;
    `champion_score()` its score on the same holdout, only called when needed; `scored_by_deployed`:
    that score comes from its deployed network (artifacts from before holdout networks);
    `inputs_changed`: how the champion's input columns differ from the configured ones (the forecast
    step would refuse it), None when they are the same."""

    metric: str
    margin: float
    score: float
    baseline: float
    horizon: int
    champion: int | None = None
    champion_horizon: int | None = None
    unusable: str | None = None
    scored_by_deployed: bool = False
    champion_score: Callable[[], float] = field(default=lambda: float("nan"))
    inputs_changed: str | None = None


@dataclass(frozen=True)
class GateResult:
    """Whether to promote, the sentence saying why, and the scores stored with the version."""

    promote: bool
    decision: str
    scores: dict[str, Any]  # holdout_metric, holdout_score, baseline_score, champion_score (where scored), decision


def finite(value: float) -> float | None:
    """A score to store: None instead of inf or NaN (the decision says why)."""
    return float(value) if math.isfinite(value) else None


def apply_gate(facts: GateFacts) -> GateResult:
    """Promote a version that beats the champion by `margin` on the holdout (against seasonal naive
    when the champion cannot be loaded); the first version is promoted unless its score is not
    finite, and so is one whose champion forecasts another horizon, scores not finite, or reads other
    input columns than the configured ones (`inputs_changed`: the forecast step would refuse it)."""
    metric, score, baseline = facts.metric, facts.score, facts.baseline
    scores: dict[str, Any] = {"holdout_metric": metric, "holdout_score": finite(score), "baseline_score": finite(baseline)}
    if not math.isfinite(score):
        promote = False
        decision = (
            f"kept as candidate: its {metric} on the holdout is {score} (not finite), so it cannot be compared"
            + (f"; forecasts stay with champion v{facts.champion}" if facts.champion is not None else "; the model has no champion")
        )
    elif facts.inputs_changed is not None and facts.champion is not None:
        promote = True  # keeping the champion would leave nothing the forecast step accepts
        decision = f"promoted: inputs changed ({facts.inputs_changed}), the forecast step would refuse champion v{facts.champion}"
    elif facts.unusable is not None:
        promote = bool(score < baseline * (1 - facts.margin))
        decision = (
            f"{'promoted' if promote else 'kept as candidate'}: {facts.unusable}; gated against seasonal naive only: {metric} "
            f"{score:.3f} {'beats' if promote else 'does not beat'} seasonal naive {baseline:.3f} (margin {facts.margin:.0%})"
        )
    elif facts.champion is None:
        promote, decision = True, f"promoted: first version ({metric} {score:.3f}, seasonal naive {baseline:.3f})"
    elif facts.champion_horizon != facts.horizon:
        promote, decision = True, f"promoted: champion v{facts.champion} forecasts a different horizon ({facts.champion_horizon})"
    else:
        old = facts.champion_score()
        scores["champion_score"] = finite(old)
        scored_by = " (scored by its deployed network: its artifact predates holdout networks)" if facts.scored_by_deployed else ""
        if not math.isfinite(old):
            promote = True
            decision = f"promoted: {metric} {score:.3f}; champion v{facts.champion}'s {metric} on the holdout is {old} (not finite){scored_by}"
        else:
            promote = bool(score < old * (1 - facts.margin))
            verdict, relation = ("promoted", "beats") if promote else ("kept as candidate", "does not beat")
            decision = (
                f"{verdict}: {metric} {score:.3f} {relation} champion v{facts.champion}'s {old:.3f}{scored_by}"
                f" (margin {facts.margin:.0%}; seasonal naive {baseline:.3f})"
            )
    return GateResult(promote, decision, {**scores, "decision": decision})
