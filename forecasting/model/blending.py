"""The network's forecast blended with the Theta method's (`evaluation.theta`): `(1 - w) * network
+ w * theta`, with the weight `w` chosen at training on each series' holdout (its last `horizon`
observations, which the holdout network never saw), or fixed by `theta_weight` in the config.

A global network learns shapes shared across series; on a short or noisy history it can
extrapolate a growth nothing in that history supports, which a classical method fitted to the
series alone does not. Blending the two is the remedy the M4 competition's best methods share
(combinations of statistical and learned forecasts); the holdout decides how much of each.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecasting.evaluation.metrics import smape
from forecasting.evaluation.theta import theta_forecasts
from forecasting.model.prediction import HoldoutForecasts
from forecasting.preparation.seasonality import season_ticks
from forecasting.sources.tables import interval_columns

# The weights of the Theta forecast tried on the holdout (0: the network alone).
WEIGHTS = tuple(round(0.1 * step, 1) for step in range(11))


def theta_for(
    histories: Sequence[np.ndarray], timestamps: Sequence[pd.DatetimeIndex], horizon: int, season: int, frequency: str | None
) -> np.ndarray:
    """The Theta forecasts after each history (series x horizon), seasonal positions from the
    timestamps; a series never below zero is not forecast below zero."""
    last_ticks = None
    if season > 1 and frequency and len(timestamps):
        last_ticks = season_ticks(pd.DatetimeIndex(np.array([index.values[-1] for index in timestamps])), frequency)
    forecast = theta_forecasts(histories, horizon, season if last_ticks is not None else 1, last_ticks)
    never_negative = np.array([bool(np.nanmin(history, initial=0.0) >= 0) for history in histories], dtype=bool)
    if len(forecast):
        forecast[never_negative] = np.maximum(forecast[never_negative], 0.0)
    return forecast


def blended(network: np.ndarray, theta: np.ndarray, weight: float) -> np.ndarray:
    """`(1 - weight) * network + weight * theta`; the network's value where Theta has none."""
    if weight == 0:
        return network
    return np.where(np.isfinite(theta), (1 - weight) * network + weight * theta, network)


def choose_theta_weight(holdout: HoldoutForecasts, theta: np.ndarray, fixed: float | None = None) -> tuple[float, dict[str, float]]:
    """The weight of `WEIGHTS` whose blend scores best on the holdout: the lowest sum of its sMAPE and
    its MASE, each relative to the network's alone (the smaller weight on a tie), or `fixed` where
    given. Returns it and the holdout's sMAPE and MASE for the network, Theta and the blend with it."""
    scales = np.where(holdout.scales > 0, holdout.scales, np.nan)[:, np.newaxis]

    def scores(forecast: np.ndarray) -> tuple[float, float]:
        return smape(holdout.actual, forecast), float(np.nanmean(np.abs(holdout.actual - forecast) / scales))

    network_smape, network_mase = scores(holdout.predicted)
    best, best_cost = 0.0, 2.0
    for weight in WEIGHTS[1:]:
        smape_of, mase_of = scores(blended(holdout.predicted, theta, weight))
        cost = smape_of / network_smape + mase_of / network_mase if network_smape > 0 and network_mase > 0 else np.inf
        if cost < best_cost - 1e-9:
            best, best_cost = weight, cost
    best = best if fixed is None else fixed
    theta_scores = scores(blended(holdout.predicted, theta, 1.0))
    blend_scores = scores(blended(holdout.predicted, theta, best))
    return best, {
        "holdout_smape_network": network_smape, "holdout_mase_network": network_mase,
        "holdout_smape_theta": theta_scores[0], "holdout_mase_theta": theta_scores[1],
        "holdout_smape_blend": blend_scores[0], "holdout_mase_blend": blend_scores[1],
    }


def blend_frame(frame: pd.DataFrame, theta: dict[str, np.ndarray], weight: float, levels: Sequence[int], floor: set[str]) -> pd.DataFrame:
    """The long forecast frame with each series' `yhat` blended with its Theta forecast (`theta`: per
    series, one value per step) and its interval bounds moved by the same amount; bounds of the
    series in `floor` (never below zero) are kept at or above zero. Series without a Theta
    forecast are left as they are."""
    if weight == 0 or frame.empty:
        return frame
    frame = frame.copy()
    network = frame["yhat"].to_numpy(dtype="float64")
    steps = frame["step"].to_numpy(dtype="int64") - 1
    other = np.full(len(frame), np.nan)
    for series_id, rows in frame.groupby("series_id", sort=False).indices.items():
        values = theta.get(series_id)
        if values is not None:
            other[rows] = values[steps[rows]]
    shift = blended(network, other, weight) - network
    frame["yhat"] = network + shift
    floored = frame["series_id"].isin(floor).to_numpy()
    for level in levels:
        for column in interval_columns(level):
            if column in frame.columns:
                moved = frame[column].to_numpy(dtype="float64") + shift
                frame[column] = np.where(floored, np.maximum(moved, 0.0), moved)
    return frame
