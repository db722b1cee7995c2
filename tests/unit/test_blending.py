"""Blending the network's forecast with the classical one: the weight chosen on the holdout, forecasts and
intervals moved together, the weight kept by a saved version."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from forecasting.config.settings import ModelConfig, SourceConfig
from forecasting.model.inputs import InputSpec
from forecasting.model.blending import blend_frame, blended, choose_weights, classical_for, interval_scales
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.model.prediction import HoldoutForecasts, predict
from forecasting.preparation.windows import to_series_arrays
from tests.support.data import TINY_MODEL, promotion_frame, synthetic_frame


def holdout_of(actual: np.ndarray, predicted: np.ndarray) -> HoldoutForecasts:
    rows = len(actual)
    return HoldoutForecasts([f"s{i}" for i in range(rows)], actual, predicted, actual, np.ones(rows), [np.ones(3)] * rows, [])


def test_the_weights_go_to_whichever_forecasts_the_holdout_favours():
    actual = np.full((4, 3), 100.0)
    close, far = np.full((4, 3), 101.0), np.full((4, 3), 130.0)
    assert choose_weights(holdout_of(actual, far), {"theta": close, "damped_trend": far})[0] == {"theta": 1.0, "damped_trend": 0.0}
    assert choose_weights(holdout_of(actual, close), {"theta": far, "damped_trend": far})[0] == {"theta": 0.0, "damped_trend": 0.0}
    # Errors of opposite sign cancel in a blend: the middle wins over every method alone.
    low, high = np.full((4, 3), 90.0), np.full((4, 3), 110.0)
    weights, scores = choose_weights(holdout_of(actual, low), {"theta": high, "damped_trend": np.full((4, 3), 200.0)})
    assert weights == {"theta": 0.5, "damped_trend": 0.0}
    assert scores["holdout_smape_blend"] < min(scores[f"holdout_smape_{name}"] for name in ("network", "theta", "damped_trend"))
    fixed, _ = choose_weights(holdout_of(actual, low), {"theta": high, "damped_trend": far}, {"theta": 0.2, "damped_trend": 0.1})
    assert fixed == {"theta": 0.2, "damped_trend": 0.1}


def test_blending_moves_intervals_with_the_forecast_and_keeps_them_above_zero():
    frame = pd.DataFrame({
        "series_id": ["a", "a", "b", "b"], "step": [1, 2, 1, 2], "yhat": [10.0, 10.0, 4.0, 4.0],
        "yhat_lower_80": [8.0, 7.0, 1.0, 0.5], "yhat_upper_80": [12.0, 13.0, 7.0, 8.0],
    })
    classical = {"theta": {"a": np.array([20.0, 30.0]), "b": np.array([0.0, 0.0])}, "damped_trend": {"a": np.array([10.0, 10.0]), "b": np.array([4.0, 4.0])}}
    out = blend_frame(frame, classical, {"theta": 0.5, "damped_trend": 0.25}, {80: 1.0}, floor={"b"})
    np.testing.assert_allclose(out["yhat"], [0.25 * 10 + 10 + 2.5, 0.25 * 10 + 15 + 2.5, 1.0 + 0 + 1.0, 2.0])
    np.testing.assert_allclose(out["yhat_upper_80"] - out["yhat"], frame["yhat_upper_80"] - frame["yhat"])
    np.testing.assert_allclose(out["yhat_lower_80"][2:], [0.0, 0.0])  # b's bounds stop at zero
    assert frame["yhat"].tolist() == [10.0, 10.0, 4.0, 4.0]  # the frame given is left as it was
    np.testing.assert_allclose(blended(np.array([1.0, 2.0]), {"theta": np.array([np.nan, 4.0])}, {"theta": 0.5}), [1.0, 3.0])
    narrower = blend_frame(frame, classical, {"theta": 0.5, "damped_trend": 0.25}, {80: 0.5}, floor=set())
    np.testing.assert_allclose(narrower["yhat_upper_80"] - narrower["yhat"], 0.5 * (frame["yhat_upper_80"] - frame["yhat"]))


def test_interval_scales_make_the_moved_bounds_cover_their_level_of_the_holdout():
    rng = np.random.default_rng(1)
    actual = 100 + rng.normal(0, 10, size=(400, 6))
    network = actual + rng.normal(0, 10, size=actual.shape)  # the network errs twice as much as the blend below
    holdout = holdout_of(actual, network)
    holdout.bounds = {80: (network - 20.0, network + 20.0), 95: (network - 30.0, network + 30.0)}
    blend = actual + rng.normal(0, 5, size=actual.shape)
    scales = interval_scales(holdout, blend)
    for level, (lower, upper) in holdout.bounds.items():
        moved_lower, moved_upper = blend - scales[level] * (network - lower), blend + scales[level] * (upper - network)
        covered = np.mean((actual >= moved_lower) & (actual <= moved_upper)) * 100
        assert level <= covered <= level + 0.5 and scales[level] < 0.6


def test_a_blend_config_adds_up_to_at_most_one():
    with pytest.raises(ValueError, match="add up to more than 1"):
        ModelConfig(**{**TINY_MODEL, "blend": {"theta": 0.7, "damped_trend": 0.4}})


@pytest.fixture(scope="module")
def trained():
    arrays = to_series_arrays(synthetic_frame(), [])
    return arrays, RecurrentForecaster.fit(arrays, ModelConfig(**TINY_MODEL))


def test_a_trained_forecaster_chooses_its_weights_on_the_holdout_and_keeps_them(trained, tmp_path):
    arrays, outcome = trained
    forecaster = outcome.forecaster
    metrics = outcome.report.metrics
    assert sum(forecaster.blend_weights.values()) <= 1.0 and outcome.holdout.blend_weights == forecaster.blend_weights
    assert outcome.report.details["blend_weights"] == forecaster.blend_weights
    # The chosen blend scores no worse on the holdout than the network alone (the network alone costs 2).
    assert metrics["holdout_smape_blend"] / metrics["holdout_smape_network"] + metrics["holdout_mase_blend"] / metrics["holdout_mase_network"] <= 2 + 1e-9
    forecaster.save(tmp_path)
    loaded = RecurrentForecaster.load(tmp_path)
    assert loaded.blend_weights == forecaster.blend_weights
    assert loaded.interval_scales == forecaster.interval_scales and set(forecaster.interval_scales) <= {80, 95}
    assert loaded.holdout_forecaster().blend_weights == forecaster.blend_weights


def test_no_weights_forecast_what_the_network_alone_does_and_fixed_weights_are_kept(trained):
    arrays, outcome = trained
    forecaster = outcome.forecaster
    network_only = predict(forecaster.network, forecaster.scaler.copy(), arrays, forecaster.lookback, forecaster.horizon, "MS",
                           dict(forecaster.interval_halfwidths), forecaster.season).forecasts
    pd.testing.assert_frame_equal(replace(forecaster, blend_weights={}).predict(arrays).forecasts, network_only)
    all_classical = replace(forecaster, blend_weights={"theta": 1.0}).predict(arrays).forecasts
    assert not np.allclose(all_classical["yhat"], network_only["yhat"])
    fixed = RecurrentForecaster.fit(arrays, ModelConfig(**{**TINY_MODEL, "blend": {"theta": 0.3}}))
    assert fixed.forecaster.blend_weights == {"theta": 0.3}


def test_a_model_reading_future_inputs_is_not_blended_unless_asked():
    frame = promotion_frame()
    observed = frame[frame["value"].notna()]
    source = SourceConfig(future_features=["promo"])
    spec = InputSpec.requested(source, ModelConfig(**TINY_MODEL))
    data = spec.prepare(observed, frame[frame["value"].isna()], source, "MS")
    outcome = RecurrentForecaster.fit(data, ModelConfig(**TINY_MODEL), future_features=("promo",))
    assert outcome.forecaster.blend_weights == {}


def test_a_history_too_short_for_its_season_keeps_the_network_forecast_and_interval():
    index = pd.date_range("2026-01-01", periods=60, freq="D")
    long, short = 100 + 10 * np.sin(np.arange(60) * 2 * np.pi / 7), np.full(15, 50.0)
    classical = classical_for([long, short], [index, index[:15]], horizon=3, season=7, frequency="D")
    assert np.isfinite(classical["theta"][0]).all() and np.isnan(classical["theta"][1]).all()  # 15 days: under three weeks
    frame = pd.DataFrame({"series_id": ["new"] * 3, "step": [1, 2, 3], "yhat": [60.0] * 3, "yhat_lower_80": [50.0] * 3, "yhat_upper_80": [70.0] * 3})
    by_series = {name: {"new": values[1]} for name, values in classical.items()}
    out = blend_frame(frame, by_series, {"theta": 0.5}, {80: 0.5}, floor={"new"})
    pd.testing.assert_frame_equal(out, frame)
