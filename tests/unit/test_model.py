import keras
import pytest

from forecasting.config.settings import ModelConfig
from forecasting.model.network import build_model

CLASSES = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_three_layer_model_of_each_cell(cell):
    config = ModelConfig(
        cell=cell,
        lookback=10,
        horizon=4,
        layers=[
            {"units": 32, "dropout": 0.2, "activation": "relu"},
            {"units": 16},
            {"units": 8, "dropout": 0.1, "activation": "sigmoid"},
        ],
        learning_rate=0.005,
    )
    model = build_model(config, n_inputs=3)
    recurrent = [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]
    assert [type(layer) for layer in recurrent] == [CLASSES[cell]] * 3
    assert [layer.units for layer in recurrent] == [32, 16, 8]
    assert [layer.return_sequences for layer in recurrent] == [True, True, False]
    assert [layer.cell.activation.__name__ for layer in recurrent] == ["relu", "tanh", "sigmoid"]
    dropouts = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropouts == pytest.approx([0.2, 0.1])
    assert isinstance(model.layers[-1], keras.layers.Dense) and model.layers[-1].units == 4
    assert model.input_shape == (None, 10, 3) and model.output_shape == (None, 4)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.005)


def test_ensemble_members_read_their_own_lookback_and_combine_by_median():
    import numpy as np

    from forecasting.model.network import forecast_array, member_targets

    config = ModelConfig(lookback=12, horizon=3, layers=[{"units": 4}], ensemble={"members": 3, "lookbacks": [4, 12]})
    assert config.member_lookbacks() == [4, 12, 4]
    model = build_model(config, n_inputs=1)
    assert model.output_shape == (None, 3, 3)
    rng = np.random.default_rng(0)
    window = rng.normal(size=(1, 12, 1)).astype("float32")
    changed = window.copy()
    changed[0, :8, 0] += 5.0  # only steps a 4-step member does not read
    before, after = model.predict(window, verbose=0), model.predict(changed, verbose=0)
    np.testing.assert_allclose(before[0, [0, 2]], after[0, [0, 2]], rtol=1e-6)
    assert not np.allclose(before[0, 1], after[0, 1])
    np.testing.assert_allclose(forecast_array(model, window), np.median(before, axis=1), rtol=1e-6)
    assert member_targets(model, np.ones((5, 3))).shape == (5, 3, 3)


@pytest.mark.slow
def test_min_epochs_keeps_early_stopping_from_ending_on_an_early_dip():
    import numpy as np

    from forecasting.model.fitting import Schedule, best_epoch, fit_windows
    from forecasting.preparation.windows import WindowSplit
    from forecasting.preparation.scaling import WindowLevels

    config = ModelConfig(lookback=4, horizon=2, layers=[{"units": 2}], learning_rate=1e-6)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4, 1)).astype("float32"), rng.normal(size=(64, 2)).astype("float32")
    split = WindowSplit(x, y, x[:8], y[:8], np.array(["a"] * 8, dtype=object), WindowLevels.empty(), np.array([]), np.array([]))
    # With a learning rate this small nothing improves much: patience 1 would stop at once without min_epochs.
    history = fit_windows(build_model(config), split, x, y, Schedule(epochs=8, batch_size=32, patience=1, seed=1, min_epochs=5))
    assert len(history.history["val_loss"]) >= 6
    assert best_epoch(history, 5) >= 6


def test_series_weights_are_level_over_seasonal_naive_scale_clipped_across_series():
    import numpy as np

    from forecasting.model.weighting import series_weights, window_weights
    from forecasting.preparation.windows import SeriesArrays

    horizon, season = 2, 4
    values = {
        # training part 10,12,10,12,11,13 (+ 2 held-out rows): lag-4 diffs |11-10|,|13-12| -> scale 1; level 68/6
        "a": np.array([10, 12, 10, 12, 11, 13, 99, 99], dtype="float64"),
        # lag-4 diffs 2,2 -> scale 2; level 76/6
        "b": np.array([10, 14, 10, 14, 12, 16, 99, 99], dtype="float64"),
        # lag-4 diffs 8,8 -> scale 8; level 15
        "c": np.array([10, 20, 10, 20, 18, 12, 0, 0], dtype="float64"),
    }
    arrays = SeriesArrays(timestamps={}, values={key: v[:, None] for key, v in values.items()})
    ratios = np.array([68 / 6, 76 / 12, 15 / 8])
    low, high = np.percentile(ratios, [5, 95])
    weights = series_weights(arrays, horizon, season, power=1.0)
    np.testing.assert_allclose([weights[k] for k in "abc"], np.clip(ratios, low, high))
    halves = series_weights(arrays, horizon, season, power=0.5)
    np.testing.assert_allclose([halves[k] for k in "abc"], np.sqrt(np.clip(ratios, low, high)))
    assert set(series_weights(arrays, horizon, season, power=0.0).values()) == {1.0}
    scaled = window_weights(weights, np.array(["a", "a", "c"], dtype=object))
    np.testing.assert_allclose(scaled, np.array([weights["a"], weights["a"], weights["c"]]) / np.mean([weights["a"], weights["a"], weights["c"]]), rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("members", [1, 3])
def test_series_weights_weigh_each_windows_loss(members):
    import numpy as np

    from forecasting.model.network import forecast_array
    from forecasting.preparation.scaling import WindowLevels
    from forecasting.model.fitting import Schedule, fit_windows
    from forecasting.preparation.windows import WindowSplit

    config = ModelConfig(lookback=4, horizon=2, layers=[{"units": 2}], learning_rate=1e-9, loss="mae", ensemble={"members": members})
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4, 1)).astype("float32"), rng.normal(size=(40, 2)).astype("float32")
    series = np.array(["a"] * 20 + ["b"] * 20, dtype=object)
    split = WindowSplit(x, y, x, y, series, WindowLevels.empty(), series, np.array([]))
    model = build_model(config)
    predicted = model.predict(x, verbose=0)
    per_window = np.abs(predicted - (y if members == 1 else y[:, None, :])).mean(axis=-1)
    if members > 1:
        per_window = per_window.mean(axis=1)
    history = fit_windows(model, split, x, y, Schedule(epochs=1, batch_size=40, patience=0, seed=1), weights={"a": 1.0, "b": 3.0}, train_series=series)
    weights = np.where(series == "a", 1.0, 3.0) / 2.0
    # The learning rate is too small to move the weights: the validation loss is the weighted MAE of the start.
    assert history.history["val_loss"][0] == pytest.approx(float(np.mean(per_window * weights)), rel=1e-4)
    assert history.history["val_loss"][0] != pytest.approx(float(np.mean(per_window)), rel=1e-3)
    assert forecast_array(model, x).shape == (40, 2)
