"""Issue 27, point 8f: a series chart shades the periods where a future feature (a promotion) is set."""

import base64
import io

import numpy as np
import pandas as pd
from PIL import Image

from forecasting.report.charts import PLAN_COLOR, series_chart
from forecasting.report.contents import planned_periods


def chart(planned):
    ts = pd.date_range("2020-01-01", periods=30, freq="MS")
    history = pd.DataFrame({"ts": ts[:24], "value": np.linspace(10, 20, 24)})
    forecasts = pd.DataFrame({
        "forecast_origin": ts[23], "target_ts": ts[24:], "yhat": 20.0, "yhat_lower_80": 18.0, "yhat_upper_80": 22.0,
    })
    png = series_chart("S", history, forecasts, (80,), planned=planned, planned_label="promo")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(png))).convert("RGB")).astype(int)


def shaded_pixels(image):
    """Pixels of the plan colour at the shading's alpha over the white background."""
    rgb = np.array([int(PLAN_COLOR[i:i + 2], 16) for i in (1, 3, 5)])
    expected = 0.82 * 255 + 0.18 * rgb
    return int((np.abs(image - expected).max(axis=2) <= 3).sum())


def test_periods_with_a_future_feature_set_are_shaded_in_the_series_chart():
    plain = chart(None)
    marked = chart(pd.Series(pd.to_datetime(["2021-06-01", "2022-02-01", "2022-04-01"])))  # one in the past, two planned
    assert shaded_pixels(plain) == 0
    assert shaded_pixels(marked) > 3 * 500  # three bands, each a few pixels wide and the plot's height
    assert plain.shape == marked.shape


def test_planned_periods_are_the_rows_with_a_feature_set():
    rows = pd.DataFrame({
        "series_id": ["a", "a", "a", "b"], "ts": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-03-01", "2020-01-01"]),
        "value": [1.0, np.nan, np.nan, 2.0], "promo": [0.0, 1.0, np.nan, 1.0], "price": [0.0, 0.0, 0.0, np.nan],
    })
    found = planned_periods(rows, ["promo", "price"])
    assert list(zip(found["series_id"], found["ts"].dt.strftime("%Y-%m"))) == [("a", "2020-02"), ("b", "2020-01")]
    assert planned_periods(rows, []).empty
