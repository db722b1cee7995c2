import numpy as np

from forecasting.scaling import SeriesScaler


def test_scaling_round_trip_per_series():
    rng = np.random.default_rng(1)
    series = {"a": rng.normal(1000, 50, (30, 1)), "b": rng.normal(-3, 0.1, (20, 1))}
    scaler = SeriesScaler.fit(series)
    for key, values in series.items():
        scaled = scaler.transform(key, values)
        assert abs(scaled.mean()) < 1e-9 and abs(scaled.std() - 1) < 1e-9
        np.testing.assert_allclose(scaler.inverse_target(key, scaled[:, 0]), values[:, 0])


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
