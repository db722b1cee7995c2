import numpy as np

from forecasting.preparation.scaling import SeriesScaler


def test_scaling_round_trip_per_series():
    rng = np.random.default_rng(1)
    series = {"a": rng.normal(1000, 50, (30, 1)), "b": rng.normal(-3, 0.1, (20, 1))}
    scaler = SeriesScaler.fit(series)
    for key, values in series.items():
        scaled = scaler.transform(key, values)
        assert abs(scaled.mean()) < 1e-9 and abs(scaled.std() - 1) < 1e-9
        _, targets, levels = scaler.encode(key, values[np.newaxis], values[np.newaxis, :, 0])
        np.testing.assert_allclose(levels.decode(targets)[0], values[:, 0])


def test_statistics_come_from_the_training_part_only():
    values = np.concatenate([np.full(10, 5.0), np.full(5, 1000.0)]).reshape(-1, 1)
    values[:10, 0] += np.arange(10)
    scaler = SeriesScaler.fit({"a": values}, {"a": 10})
    assert scaler.loc["a"][0] == np.mean(values[:10, 0])


def test_constant_series_does_not_divide_by_zero_and_state_round_trips():
    scaler = SeriesScaler.fit({"flat": np.full((12, 1), 7.0), "zero": np.zeros((12, 1))})
    assert np.isfinite(scaler.transform("flat", np.full((3, 1), 7.0))).all()
    assert np.isfinite(scaler.transform("zero", np.zeros((3, 1)))).all()
    restored = SeriesScaler.from_dict(scaler.to_dict())
    np.testing.assert_array_equal(restored.scale["flat"], scaler.scale["flat"])
    np.testing.assert_array_equal(restored.loc["zero"], scaler.loc["zero"])


def test_window_log_scaling_is_relative_to_the_input_window_and_decodes_back():
    scaler = SeriesScaler.fit({"a": np.ones((4, 1))}, target="window_log")
    inputs = np.array([[[100.0], [300.0]], [[10.0], [30.0]]])  # two windows, same shape at 10x the level
    targets = np.array([[200.0, 400.0], [20.0, 40.0]])
    x, y, levels = scaler.encode("a", inputs, targets)
    np.testing.assert_allclose(levels.scale, [200.0, 20.0])
    np.testing.assert_allclose(x[0, :, 0], np.log([0.5, 1.5]))
    np.testing.assert_allclose(x[0], x[1])  # scale-free: both windows look alike
    np.testing.assert_allclose(y[0], np.log([1.0, 2.0]))
    np.testing.assert_allclose(levels.decode(y), targets)


def test_window_log_falls_back_to_ratio_for_non_positive_windows():
    scaler = SeriesScaler.fit({"a": np.ones((4, 1))}, target="window_log")
    inputs = np.array([[[-2.0], [2.0]], [[1.0], [3.0]]])
    targets = np.array([[4.0], [4.0]])
    x, y, levels = scaler.encode("a", inputs, targets)
    assert levels.log.tolist() == [False, True]
    np.testing.assert_allclose(x[0, :, 0], [-2.0, 0.0])  # value / mean |value| - 1, level 2
    np.testing.assert_allclose(y[:, 0], [1.0, np.log(2.0)])
    np.testing.assert_allclose(levels.decode(y), targets)


def test_series_scaling_encodes_like_transform_and_state_keeps_the_mode():
    rng = np.random.default_rng(2)
    values = rng.normal(50, 5, (30, 2))
    scaler = SeriesScaler.fit({"a": values})
    windows = values[np.newaxis, :12]
    x, y, levels = scaler.encode("a", windows, values[np.newaxis, 12:15, 0])
    np.testing.assert_allclose(x[0], scaler.transform("a", values[:12]))
    np.testing.assert_allclose(levels.decode(y), values[np.newaxis, 12:15, 0])
    assert SeriesScaler.from_dict(SeriesScaler.fit({"a": values}, target="window").to_dict()).target == "window"
    assert SeriesScaler.from_dict({"method": "standard", "series": {}}).target == "series"  # artifacts from before the option
