"""The forecaster object: training outcome, forecasts, holdout scores, save and load, no hidden state changes."""

import numpy as np
import pandas as pd
import pytest

from forecasting.config.settings import ModelConfig
from forecasting.model import inputs
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.model.inputs import InputSpec
from forecasting.model.prediction import last_windows
from forecasting.preparation.windows import to_series_arrays
from tests.support.data import TINY_MODEL, synthetic_frame


@pytest.fixture(scope="module")
def outcome():
    arrays = to_series_arrays(synthetic_frame(), [])
    return arrays, RecurrentForecaster.fit(arrays, ModelConfig(**TINY_MODEL))


@pytest.mark.slow
def test_same_seed_same_data_same_forecasts(outcome):
    arrays, first = outcome
    second = RecurrentForecaster.fit(arrays, ModelConfig(**TINY_MODEL))
    pd.testing.assert_frame_equal(first.forecaster.predict(arrays).forecasts, second.forecaster.predict(arrays).forecasts)
    assert first.report.history == second.report.history


def test_training_report_is_sane(outcome):
    arrays, result = outcome
    report, forecaster = result.report, result.forecaster
    assert report.epochs_run <= TINY_MODEL["epochs"] and 1 <= report.best_epoch <= report.epochs_run
    assert report.best_val_loss == min(report.history["val_loss"])
    # 8 series x 48 rows: validation = windows reaching the last 6 rows, 6 per series.
    assert report.val_windows == 8 * 6 and report.train_windows == 8 * (48 - 12 - 6 + 1 - 6)
    assert report.data_watermark == pd.Timestamp("2023-12-01")
    widths = forecaster.interval_halfwidths
    assert all(len(w) == 6 for w in widths.values()) and all(a <= b for a, b in zip(widths[80], widths[95]))
    assert forecaster.frequency == "MS" and forecaster.lookback == 12 and forecaster.horizon == 6
    assert set(forecaster.train_end) == set(arrays.ids)
    # With a refit (the default) the deployed network saw every window; the holdout forecaster's did not.
    assert report.details["refit"]["epochs"] == report.best_epoch
    assert result.holdout.network is not forecaster.network and forecaster.holdout_forecaster().network is result.holdout.network


@pytest.mark.slow
def test_fine_tune_reports_the_epoch_early_stopping_kept(outcome):
    """A fine-tune's schedule has no min_epochs: its report names the best of all its epochs, even when the
    config's own min_epochs (derived: 15% of epochs) is longer than the fine-tune."""
    _, result = outcome
    later = to_series_arrays(synthetic_frame(length=56), [])  # eight more months per series
    # A fast rate and patience 1: early stopping ends the fine-tune one epoch after its best, long
    # before the config's min_epochs (15 of 20).
    config = ModelConfig(**{**TINY_MODEL, "epochs": 20, "min_epochs": 15, "fine_tune": {"epochs": 12, "patience": 1, "learning_rate": 0.3}})
    tuned = result.forecaster.fine_tune(later, config).report
    losses = tuned.history["val_loss"]
    assert tuned.best_epoch < tuned.epochs_run  # it did stop early (else this test shows nothing)
    assert tuned.best_epoch == int(np.argmin(losses)) + 1 and tuned.best_val_loss == min(losses)


def test_predict_and_score_leave_the_forecaster_as_it_was(outcome):
    arrays, result = outcome
    forecaster = result.forecaster
    newcomer = synthetic_frame(n_series=1, seed=5).assign(series_id="NEW")
    wider = to_series_arrays(pd.concat([synthetic_frame(), newcomer], ignore_index=True), [])
    before = (dict(forecaster.scaler.loc), [w.copy() for w in forecaster.network.get_weights()])
    forecasts = forecaster.predict(wider).forecasts
    assert "NEW" in set(forecasts.series_id)  # scaled by its own history
    forecaster.score_holdout(wider, "smape")
    assert "NEW" not in forecaster.scaler and dict(forecaster.scaler.loc).keys() == before[0].keys()
    assert all(np.array_equal(a, b) for a, b in zip(before[1], forecaster.network.get_weights()))
    # The same series forecast twice give the same rows: nothing learnt from the first call.
    pd.testing.assert_frame_equal(forecasts, forecaster.predict(wider).forecasts)


@pytest.mark.slow
def test_fine_tune_trains_a_copy_and_leaves_the_parent_as_it_was(outcome):
    _, result = outcome
    parent = result.forecaster
    frame = synthetic_frame(length=54)
    weights = [w.copy() for w in parent.network.get_weights()]
    child = parent.fine_tune(to_series_arrays(frame, []))
    assert child.forecaster.network is not parent.network
    assert all(np.array_equal(a, b) for a, b in zip(weights, parent.network.get_weights()))
    assert child.report.details["new_windows"] > 0 and child.forecaster.train_end != parent.train_end


def test_saved_and_loaded_forecaster_forecasts_and_scores_the_same(outcome, tmp_path):
    arrays, result = outcome
    manifest = result.forecaster.save(tmp_path)
    assert manifest["holdout"]["model"] == "holdout.keras" and manifest["holdout"]["scaler"] == "holdout-series.parquet"
    loaded = RecurrentForecaster.load(tmp_path)
    pd.testing.assert_frame_equal(result.forecaster.predict(arrays).forecasts, loaded.predict(arrays).forecasts)
    assert loaded.score_holdout(arrays, "smape") == result.forecaster.score_holdout(arrays, "smape")
    assert loaded.holdout_forecaster().score_holdout(arrays, "smape") == result.holdout.score_holdout(arrays, "smape")
    assert loaded.config == result.forecaster.config and loaded.provenance["training"]["epochs_run"] == result.report.epochs_run


def test_the_inputs_are_resolved_once_per_fit_and_kept(monkeypatch):
    calls = []

    def counted(config, arrays):
        calls.append(config)
        return resolve_for(config, arrays)

    resolve_for = inputs.resolve_for
    monkeypatch.setattr(inputs, "resolve_for", counted)
    arrays = to_series_arrays(synthetic_frame(n_series=4), [])
    config = ModelConfig(**{**TINY_MODEL, "epochs": 1, "lookback": None, "batch_size": None})
    forecaster = RecurrentForecaster.fit(arrays, config).forecaster
    assert len(calls) == 1
    assert forecaster.inputs == InputSpec("MS", (), (), False, forecaster.config.lookback, 6, 12) and forecaster.config.season == 12


def test_forecasts_and_holdout_scores_select_and_scale_windows_the_same_way(outcome):
    arrays, result = outcome
    scaler = result.forecaster.scaler
    newcomer = synthetic_frame(n_series=1, seed=5).assign(series_id="NEW")
    flat = pd.DataFrame({"series_id": "FLAT", "ts": pd.date_range("2020-01-01", periods=48, freq="MS"), "value": 3.0})
    frame = pd.concat([synthetic_frame(), newcomer, flat], ignore_index=True)
    wider, cut = to_series_arrays(frame, []), to_series_arrays(frame[frame["ts"] < "2023-07-01"], [])  # all but the last 6 months
    held_out, forecast = last_windows(scaler, wider, 12, cut=6), last_windows(scaler, cut, 12)
    assert held_out.ids == forecast.ids and "NEW" in held_out.ids and held_out.constant == forecast.constant == {"FLAT": (3.0, "constant series")}
    np.testing.assert_array_equal(held_out.inputs, forecast.inputs)
    np.testing.assert_array_equal(held_out.levels.decode(np.zeros((len(held_out.ids), 6))), forecast.levels.decode(np.zeros((len(held_out.ids), 6))))
    assert "NEW" in held_out.scaler and "NEW" not in scaler  # a copy holds the series the scaler had not seen
