"""Scaling the windows of many series in one batch gives the numbers scaling each series on its own gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.preparation.batch_scaling import encode_windows
from forecasting.preparation.scaling import SeriesScaler
from forecasting.preparation.windows import make_windows


@pytest.mark.parametrize("target", ["window_log", "window", "series"])
@pytest.mark.parametrize("seasonal", [True, False])
def test_batch_equals_series_by_series(target: str, seasonal: bool) -> None:
    rng = np.random.default_rng(5)
    stamps = pd.date_range("2018-01-01", periods=60, freq="MS")
    series = {f"s{i}": np.column_stack([rng.lognormal(3, 1) * (1 + 0.3 * np.sin(np.arange(60) / 1.9)) * rng.uniform(0.9, 1.1, 60), rng.normal(size=60)]) for i in range(6)}
    series["s0"][:, 0] -= series["s0"][:, 0].mean()  # values of both signs: window scaling without log
    series["s1"][10:20, 0] = 0.0  # windows with a zero level
    scaler = SeriesScaler.fit(series, {k: 42 for k in series}, target=target)
    if seasonal:
        scaler.fit_seasonal(series, {k: stamps for k in series}, {k: 60 for k in series}, "MS", 12)
        assert scaler.factors  # some series pass the seasonality test
    ids, inputs, targets, ticks, expected = [], [], [], [], []
    for series_id, values in series.items():
        x, y = make_windows(values, 12, 6)
        first = scaler.ticks(stamps)[: len(x)]
        expected.append(scaler.encode(series_id, x, y, first))
        ids += [series_id] * len(x)
        inputs.append(x)
        targets.append(y)
        ticks.append(first)
    order = rng.permutation(len(ids))  # windows of the series interleaved
    x, y, levels = encode_windows(scaler, np.asarray(ids, dtype=object)[order], np.concatenate(inputs)[order], np.concatenate(targets)[order], np.concatenate(ticks)[order])
    want_x = np.concatenate([e[0] for e in expected])[order]
    want_y = np.concatenate([e[1] for e in expected])[order]
    np.testing.assert_array_equal(x, want_x)
    np.testing.assert_array_equal(y, want_y)
    from forecasting.preparation.scaling import WindowLevels

    want = WindowLevels.concat([e[2] for e in expected]).take(order)
    for name in ("loc", "scale", "log", "factors", "first_tick"):
        got, wanted = getattr(levels, name), getattr(want, name)
        assert (got is None) == (wanted is None)
        if got is not None:
            np.testing.assert_array_equal(got, wanted)


def test_split_in_groups_of_series_equals_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    from forecasting.preparation import windows as windowing

    rng = np.random.default_rng(8)
    stamps = pd.date_range("2018-01-01", periods=70, freq="MS")
    frame = pd.concat(
        [pd.DataFrame({"series_id": f"s{i}", "ts": stamps[: 40 + i * 3], "value": rng.lognormal(2, 0.3, 40 + i * 3)}) for i in range(9)]
    )
    arrays = windowing.to_series_arrays(frame, [], "MS")
    scaler = SeriesScaler.fit(arrays.values, target="window_log")
    scaler.fit_seasonal(arrays.values, arrays.timestamps, {}, "MS", 12)
    whole = windowing.split_windows(arrays, scaler, 12, 6, 6)
    monkeypatch.setattr(windowing, "SERIES_PER_BATCH", 2)
    grouped = windowing.split_windows(arrays, scaler, 12, 6, 6)
    for name in ("x_train", "y_train", "x_val", "y_val", "val_series", "train_series", "train_target_end"):
        np.testing.assert_array_equal(getattr(grouped, name), getattr(whole, name))
    for name in ("loc", "scale", "log", "factors", "first_tick"):
        np.testing.assert_array_equal(getattr(grouped.val_levels, name), getattr(whole.val_levels, name))
