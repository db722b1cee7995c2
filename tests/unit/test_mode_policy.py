"""Every branch of the mode policy, from facts alone: no database, no training."""

import pytest

from forecasting.config.model_settings import PromotionConfig
from forecasting.steps.mode import ModeDecision, ModeFacts, choose_mode

PROMOTION = PromotionConfig(metric="smape", retrain_every_days=7, drift_tolerance=0.2)


def facts(**changes) -> ModeFacts:
    base = dict(
        model_name="m", champion=3, trained_on="champion v3", since="2024-06-01", champion_age_days=1.0,
        promotion_metric="smape", promotion_score=10.0, new_observations=lambda: (12, 2), recent_score=lambda: 11.0,
    )
    return ModeFacts(**{**base, **changes})


def never():
    raise AssertionError("this fact is not needed for the decision")


@pytest.mark.parametrize("requested", ["retrain", "forecast"])
def test_retrain_and_forecast_are_taken_as_requested_without_looking_at_anything(requested):
    assert choose_mode(requested, facts(new_observations=never, recent_score=never), PROMOTION) == ModeDecision(requested, f"{requested}: requested")


def test_without_a_champion_the_model_is_retrained():
    assert choose_mode("auto", facts(champion=None), PROMOTION) == ModeDecision("retrain", "retrain: model m has no champion yet")
    assert choose_mode("fine-tune", facts(champion=None), PROMOTION) == ModeDecision(
        "retrain", "retrain: fine-tune requested, but model m has no champion to continue from yet"
    )


def test_fine_tune_requested_continues_on_new_data_and_forecasts_without_it():
    assert choose_mode("fine-tune", facts(recent_score=never), PROMOTION) == ModeDecision(
        "fine-tune", "fine-tune: requested; 12 new observations for 2 series since 2024-06-01 (champion v3)"
    )
    assert choose_mode("fine-tune", facts(new_observations=lambda: (0, 0)), PROMOTION) == ModeDecision(
        "forecast", "forecast: fine-tune requested, but nothing is newer than 2024-06-01, the data of champion v3"
    )


def test_auto_retrains_an_old_champion_before_looking_at_new_data():
    decision = choose_mode("auto", facts(champion_age_days=8.25, new_observations=never), PROMOTION)
    assert decision == ModeDecision("retrain", "retrain: champion v3 is 8.2 days old (retrain_every_days 7)")
    assert choose_mode("auto", facts(champion_age_days=100), PROMOTION.model_copy(update={"retrain_every_days": None})).mode == "fine-tune"


def test_auto_forecasts_only_without_new_observations():
    assert choose_mode("auto", facts(new_observations=lambda: (0, 0), recent_score=never), PROMOTION) == ModeDecision(
        "forecast", "forecast: no observations newer than 2024-06-01, the data of champion v3"
    )


def test_auto_fine_tunes_on_new_data_unless_the_champion_drifted():
    assert choose_mode("auto", facts(new_observations=lambda: (1, 1)), PROMOTION) == ModeDecision(
        "fine-tune", "fine-tune: 1 new observation for 1 series since 2024-06-01 (champion v3)"
    )
    assert choose_mode("auto", facts(recent_score=lambda: 12.0), PROMOTION).mode == "fine-tune"  # 20%: within tolerance
    drifted = choose_mode("auto", facts(recent_score=lambda: 12.5), PROMOTION)
    assert drifted == ModeDecision(
        "retrain",
        "retrain: champion v3's recent smape 12.500 is 25% worse than 10.000 at promotion (tolerance 20%); "
        "12 new observations for 2 series since 2024-06-01",
    )


def test_auto_retrains_a_champion_that_cannot_be_loaded():
    decision = choose_mode("auto", facts(recent_score=lambda: "checksum mismatch"), PROMOTION)
    assert decision == ModeDecision(
        "retrain", "retrain: champion v3 could not be loaded (checksum mismatch); 12 new observations for 2 series since 2024-06-01"
    )


def test_drift_is_not_checked_against_another_metric_or_a_missing_score():
    assert choose_mode("auto", facts(promotion_metric="mase", recent_score=never), PROMOTION).mode == "fine-tune"
    assert choose_mode("auto", facts(promotion_score=None, recent_score=never), PROMOTION).mode == "fine-tune"


def test_a_decision_serialises_to_the_flow_boundary():
    assert ModeDecision("forecast", "why").as_dict() == {"mode": "forecast", "reason": "why"}


def live(score: float, naive: float = 99.0, metric: str = "smape", periods: int = 3, rows: int = 90):
    from forecasting.evaluation.live_accuracy import LiveAccuracy

    return lambda: LiveAccuracy(metric, score, naive, periods, rows, "2026-01-01", "2026-03-01")


def test_auto_retrains_when_the_live_error_grew_beyond_the_tolerance_over_the_holdout_score():
    decision = choose_mode("auto", facts(live=live(12.5), recent_score=never), PROMOTION)
    assert decision == ModeDecision(
        "retrain",
        "retrain: champion v3's live sMAPE 12.500 over the latest 3 target periods (2026-01-01 to 2026-03-01, 90 rows) is 25% worse "
        "than its holdout sMAPE 10.000 at promotion (tolerance 20%); 12 new observations for 2 series since 2024-06-01",
    )
    assert choose_mode("auto", facts(live=live(12.0)), PROMOTION).mode == "fine-tune"  # 20%: within tolerance


def test_auto_retrains_when_the_live_error_is_worse_than_seasonal_naive_on_the_same_rows():
    decision = choose_mode("auto", facts(live=live(9.0, naive=8.5, periods=1, rows=30), recent_score=never), PROMOTION)
    assert decision == ModeDecision(
        "retrain",
        "retrain: champion v3's live sMAPE 9.000 over the latest 1 target period (2026-01-01 to 2026-03-01, 30 rows) is worse than "
        "seasonal naive's 8.500; 12 new observations for 2 series since 2024-06-01",
    )
    # Without a holdout score at promotion, the seasonal-naive signal still counts.
    assert choose_mode("auto", facts(promotion_score=None, live=live(9.0, naive=8.5)), PROMOTION).mode == "retrain"
    assert choose_mode("auto", facts(live=live(9.0, naive=9.0)), PROMOTION).mode == "fine-tune"  # a tie is not worse


def test_live_drift_is_read_only_with_new_data_in_the_same_metric_and_with_a_window():
    assert choose_mode("auto", facts(new_observations=lambda: (0, 0), live=never), PROMOTION).mode == "forecast"
    assert choose_mode("auto", facts(champion_age_days=8.5, live=never), PROMOTION).mode == "retrain"
    assert choose_mode("auto", facts(live=live(50.0, metric="mase")), PROMOTION).mode == "fine-tune"
    assert choose_mode("auto", facts(live=live(float("nan"))), PROMOTION).mode == "fine-tune"
    assert choose_mode("auto", facts(live=never), PROMOTION.model_copy(update={"live_window": 0})).mode == "fine-tune"
    assert choose_mode("fine-tune", facts(live=never), PROMOTION).mode == "fine-tune"  # requested: taken without the policy's signals
    assert choose_mode("auto", facts(live=lambda: None), PROMOTION).mode == "fine-tune"  # no live rows yet


def test_live_window_is_a_validated_promotion_key():
    from pydantic import ValidationError

    assert PromotionConfig().live_window == 3
    with pytest.raises(ValidationError):
        PromotionConfig(live_window=-1)
    with pytest.raises(ValidationError):
        PromotionConfig(live_windows=3)


@pytest.mark.parametrize("requested", ["auto", "fine-tune"])
def test_changed_inputs_retrain_instead_of_fine_tuning_a_champion_the_forecast_would_refuse(requested):
    changed = "source.future_features ['promo'] (champion v3: [])"
    decision = choose_mode(requested, facts(inputs_changed=lambda: changed, new_observations=never, recent_score=never), PROMOTION)
    assert decision == ModeDecision("retrain", f"retrain: the inputs changed since champion v3 was trained: {changed}")
    assert choose_mode(requested, facts(inputs_changed=lambda: None), PROMOTION).mode == "fine-tune"


def test_changed_inputs_name_each_input_that_differs():
    from types import SimpleNamespace

    from forecasting.config.settings import SourceConfig
    from forecasting.steps.mode import changed_inputs

    champion = SimpleNamespace(version=3, features=("price",), future_features=(), calendar=False)
    assert changed_inputs(champion, SourceConfig(features=["price"])) is None
    assert changed_inputs(champion, SourceConfig(features=["price"]), calendar=False) is None
    assert changed_inputs(champion, SourceConfig(features=[], future_features=["promo"]), calendar=True) == (
        "source.features [] (champion v3: ['price']); source.future_features ['promo'] (champion v3: []); calendar true (champion v3: false)"
    )
