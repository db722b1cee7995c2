"""Every branch of the promotion gate, from scores alone: no database, no training."""

import math

from forecasting.steps.gate import GateFacts, apply_gate


def gate(**changes):
    base = dict(metric="smape", margin=0.0, score=10.0, baseline=12.0, horizon=6, champion=2, champion_horizon=6, champion_score=lambda: 11.0)
    return apply_gate(GateFacts(**{**base, **changes}))


def never():
    raise AssertionError("the champion need not be scored here")


def test_a_better_version_is_promoted_and_a_worse_one_kept():
    better = gate()
    assert better.promote and better.decision == "promoted: smape 10.000 beats champion v2's 11.000 (margin 0%; seasonal naive 12.000)"
    assert better.scores == {
        "holdout_metric": "smape", "holdout_score": 10.0, "baseline_score": 12.0, "champion_score": 11.0, "decision": better.decision,
    }
    worse = gate(champion_score=lambda: 9.0)
    assert not worse.promote and worse.decision.startswith("kept as candidate: smape 10.000 does not beat champion v2's 9.000")


def test_the_margin_must_be_beaten_and_a_tie_keeps_the_champion():
    assert not gate(champion_score=lambda: 10.0).promote
    assert not gate(margin=0.2, champion_score=lambda: 12.0).promote  # needs < 9.6
    assert gate(margin=0.2, champion_score=lambda: 12.6).promote


def test_the_first_version_is_promoted():
    result = gate(champion=None, champion_horizon=None, champion_score=never)
    assert result.promote and result.decision == "promoted: first version (smape 10.000, seasonal naive 12.000)"
    assert "champion_score" not in result.scores


def test_a_score_that_is_not_finite_is_never_promoted():
    result = gate(score=math.inf, champion_score=never)
    assert not result.promote and result.scores["holdout_score"] is None
    assert result.decision == "kept as candidate: its smape on the holdout is inf (not finite), so it cannot be compared; forecasts stay with champion v2"
    assert gate(score=math.nan, champion=None, champion_score=never).decision.endswith("; the model has no champion")


def test_an_unusable_champion_gates_against_seasonal_naive_only():
    result = gate(champion=None, unusable="champion v2 could not be loaded (damaged)", champion_score=never)
    assert result.promote and result.decision == (
        "promoted: champion v2 could not be loaded (damaged); gated against seasonal naive only: smape 10.000 beats seasonal naive 12.000 (margin 0%)"
    )
    assert not gate(champion=None, unusable="x", baseline=9.0, champion_score=never).promote


def test_another_horizon_or_a_champion_score_that_is_not_finite_promotes():
    assert gate(champion_horizon=12, champion_score=never).decision == "promoted: champion v2 forecasts a different horizon (12)"
    result = gate(champion_score=lambda: math.nan, scored_by_deployed=True)
    assert result.promote and result.scores["champion_score"] is None
    assert result.decision.endswith("on the holdout is nan (not finite) (scored by its deployed network: its artifact predates holdout networks)")


def test_a_champion_reading_other_inputs_is_replaced_whatever_its_score():
    # The forecast step refuses a champion whose features differ from the configured ones: keeping it would leave nothing to forecast with.
    result = gate(champion_score=never, inputs_changed="source.future_features ['promo'] (champion v2: [])")
    assert result.promote
    assert result.decision == "promoted: inputs changed (source.future_features ['promo'] (champion v2: [])), the forecast step would refuse champion v2"
    assert not gate(score=math.inf, champion_score=never, inputs_changed="source.features").promote  # nothing finite to promote
