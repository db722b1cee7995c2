"""Blending the network's forecast with Theta's: the weight chosen on the holdout, forecasts and
intervals moved together, the weight kept by a saved version."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from forecasting.config.settings import ModelConfig, SourceConfig
from forecasting.model.inputs import InputSpec
from forecasting.model.blending import blend_frame, blended, choose_theta_weight
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.model.prediction import HoldoutForecasts, predict
from forecasting.preparation.windows import to_series_arrays
from tests.support.data import TINY_MODEL, promotion_frame, synthetic_frame


def holdout_of(actual: np.ndarray, predicted: np.ndarray) -> HoldoutForecasts:
    rows = len(actual)
    return HoldoutForecasts([f"s{i}" for i in range(rows)], actual, predicted, actual, np.ones(rows), [np.ones(3)] * rows, [])


def test_the_weight_goes_to_whichever_forecast_the_holdout_favours():
    actual = np.full((4, 3), 100.0)
    close, far = np.full((4, 3), 101.0), np.full((4, 3), 130.0)
    assert choose_theta_weight(holdout_of(actual, far), close)[0] == 1.0
    assert choose_theta_weight(holdout_of(actual, close), far)[0] == 0.0
    # Errors of opposite sign cancel in a blend: the middle wins over both.
    weight, scores = choose_theta_weight(holdout_of(actual, np.full((4, 3), 90.0)), np.full((4, 3), 110.0))
    assert weight == 0.5 and scores["holdout_smape_blend"] < min(scores["holdout_smape_network"], scores["holdout_smape_theta"])


def test_blending_moves_intervals_with_the_forecast_and_keeps_them_above_zero():
    frame = pd.DataFrame({
        "series_id": ["a", "a", "b", "b"], "step": [1, 2, 1, 2], "yhat": [10.0, 10.0, 4.0, 4.0],
        "yhat_lower_80": [8.0, 7.0, 1.0, 0.5], "yhat_upper_80": [12.0, 13.0, 7.0, 8.0],
    })
    out = blend_frame(frame, {"a": np.array([20.0, 30.0]), "b": np.array([0.0, 0.0])}, 0.5, [80], floor={"b"})
    np.testing.assert_allclose(out["yhat"], [15.0, 20.0, 2.0, 2.0])
    np.testing.assert_allclose(out["yhat_upper_80"] - out["yhat"], frame["yhat_upper_80"] - frame["yhat"])
    np.testing.assert_allclose(out["yhat_lower_80"], [13.0, 17.0, 0.0, 0.0])  # b's bounds stop at zero
    assert frame["yhat"].tolist() == [10.0, 10.0, 4.0, 4.0]  # the frame given is left as it was
    np.testing.assert_allclose(blended(np.array([1.0, 2.0]), np.array([np.nan, 4.0]), 0.5), [1.0, 3.0])


@pytest.fixture(scope="module")
def trained():
    arrays = to_series_arrays(synthetic_frame(), [])
    return arrays, RecurrentForecaster.fit(arrays, ModelConfig(**TINY_MODEL))


def test_a_trained_forecaster_chooses_its_weight_on_the_holdout_and_keeps_it(trained, tmp_path):
    arrays, outcome = trained
    forecaster = outcome.forecaster
    metrics = outcome.report.metrics
    assert 0.0 <= forecaster.theta_weight <= 1.0 and outcome.holdout.theta_weight == forecaster.theta_weight
    assert outcome.report.details["theta_weight"] == forecaster.theta_weight
    # The chosen blend scores no worse on the holdout than the network alone (weight 0 costs 2).
    assert metrics["holdout_smape_blend"] / metrics["holdout_smape_network"] + metrics["holdout_mase_blend"] / metrics["holdout_mase_network"] <= 2 + 1e-9
    forecaster.save(tmp_path)
    loaded = RecurrentForecaster.load(tmp_path)
    assert loaded.theta_weight == forecaster.theta_weight
    assert loaded.holdout_forecaster().theta_weight == forecaster.theta_weight


def test_weight_zero_forecasts_what_the_network_alone_does_and_a_fixed_weight_is_kept(trained):
    arrays, outcome = trained
    forecaster = outcome.forecaster
    network_only = predict(forecaster.network, forecaster.scaler.copy(), arrays, forecaster.lookback, forecaster.horizon, "MS",
                           dict(forecaster.interval_halfwidths)).forecasts
    pd.testing.assert_frame_equal(replace(forecaster, theta_weight=0.0).predict(arrays).forecasts, network_only)
    full_theta = replace(forecaster, theta_weight=1.0).predict(arrays).forecasts
    assert not np.allclose(full_theta["yhat"], network_only["yhat"])
    fixed = RecurrentForecaster.fit(arrays, ModelConfig(**{**TINY_MODEL, "theta_weight": 0.3}))
    assert fixed.forecaster.theta_weight == 0.3


def test_a_model_reading_future_inputs_is_not_blended_unless_asked():
    frame = promotion_frame()
    observed = frame[frame["value"].notna()]
    source = SourceConfig(future_features=["promo"])
    spec = InputSpec.requested(source, ModelConfig(**TINY_MODEL))
    data = spec.prepare(observed, frame[frame["value"].isna()], source, "MS")
    outcome = RecurrentForecaster.fit(data, ModelConfig(**TINY_MODEL), future_features=("promo",))
    assert outcome.forecaster.theta_weight == 0.0
