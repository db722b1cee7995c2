"""The network's forecast blended with classical ones fitted to each series alone
(`evaluation.classical`: the Theta method and damped-trend exponential smoothing):
`(1 - a - b) * network + a * theta + b * damped_trend`, the weights chosen at training on each
series' holdout (its last `horizon` observations, which the holdout network never saw), or fixed
by `blend` in the config.

A global network learns shapes shared across series; on a short or noisy history it can
extrapolate a growth nothing in that history supports, which a method fitted to the series alone
does not. The methods err differently, so a blend errs less than each: combinations of
statistical and learned forecasts are what the M4 competition's best methods share. The holdout
decides how much of each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from forecasting.evaluation.classical import classical_forecasts
from forecasting.evaluation.metrics import smape
from forecasting.model.prediction import HoldoutForecasts
from forecasting.preparation.seasonality import season_ticks
from forecasting.sources.tables import interval_columns

METHODS = ("theta", "damped_trend")
# The weights tried on the holdout: every (theta, damped_trend) pair on a 0.1 grid with a sum of at most
# 1 (the rest is the network's), fewest classical first, so a tie keeps the network's share.
CANDIDATES = tuple(
    sorted(
        ({"theta": round(0.1 * a, 1), "damped_trend": round(0.1 * b, 1)} for a in range(11) for b in range(11 - a)),
        key=lambda weights: (round(sum(weights.values()), 1), weights["damped_trend"]),
    )
)


def classical_for(
    histories: Sequence[np.ndarray], timestamps: Sequence[pd.DatetimeIndex], horizon: int, season: int, frequency: str | None
) -> dict[str, np.ndarray]:
    """Each classical method's forecasts after each history (series x horizon), seasonal positions
    from the timestamps; a series never below zero is not forecast below zero. A history with a
    season but fewer than three seasons of values gets none (NaN: not blended): the classical methods
    cannot tell its season, which the network reads (a new store's weekly shape, `short_factors`)."""
    last_ticks = None
    if season > 1 and frequency and len(timestamps):
        last_ticks = season_ticks(pd.DatetimeIndex(np.array([index.values[-1] for index in timestamps])), frequency)
    forecasts = classical_forecasts(histories, horizon, season if last_ticks is not None else 1, last_ticks, METHODS)
    never_negative = np.array([bool(np.nanmin(history, initial=0.0) >= 0) for history in histories], dtype=bool)
    too_short = np.array([season > 1 and np.isfinite(history).sum() < 3 * season for history in histories], dtype=bool)
    for values in forecasts.values():
        if len(values):
            values[never_negative] = np.maximum(values[never_negative], 0.0)
            values[too_short] = np.nan
    return forecasts


def blended(network: np.ndarray, classical: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """`(1 - sum of weights) * network + the weighted classical forecasts`; the network's value where
    a weighted classical forecast has none."""
    used = {name: weight for name, weight in weights.items() if weight > 0}
    if not used:
        return network
    result = (1 - sum(used.values())) * network
    complete = np.ones(network.shape, dtype=bool)
    for name, weight in used.items():
        values = classical[name]
        complete &= np.isfinite(values)
        result = result + weight * np.where(np.isfinite(values), values, 0.0)
    return np.where(complete, result, network)


def choose_weights(
    holdout: HoldoutForecasts, classical: Mapping[str, np.ndarray], fixed: Mapping[str, float] | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """The `CANDIDATES` weights whose blend scores best on the holdout: the lowest sum of its sMAPE and
    its MASE, each relative to the network's alone (the first on a tie), or `fixed` where given.
    Returns them and the holdout's sMAPE and MASE for the network, each method and the blend."""
    scales = np.where(holdout.scales > 0, holdout.scales, np.nan)[:, np.newaxis]

    def scores(forecast: np.ndarray) -> tuple[float, float]:
        return smape(holdout.actual, forecast), float(np.nanmean(np.abs(holdout.actual - forecast) / scales))

    network = scores(holdout.predicted)
    best, best_cost = dict(CANDIDATES[0]), 2.0
    if fixed is None and network[0] > 0 and network[1] > 0:
        for weights in CANDIDATES[1:]:
            smape_of, mase_of = scores(blended(holdout.predicted, classical, weights))
            if smape_of / network[0] + mase_of / network[1] < best_cost - 1e-9:
                best, best_cost = dict(weights), smape_of / network[0] + mase_of / network[1]
    best = dict(fixed) if fixed is not None else best
    metrics = {"holdout_smape_network": network[0], "holdout_mase_network": network[1]}
    for name in (*METHODS, "blend"):
        smape_of, mase_of = scores(blended(holdout.predicted, classical, best if name == "blend" else {name: 1.0}))
        metrics.update({f"holdout_smape_{name}": smape_of, f"holdout_mase_{name}": mase_of})
    return best, metrics


def interval_scales(holdout: HoldoutForecasts, blend: np.ndarray) -> dict[int, float]:
    """Per interval level of the holdout's network bounds, the factor on their distances from the
    forecast that makes them, moved to the blended forecast `blend`, cover that share of the
    holdout's actuals (split-conformal on the holdout: the blend errs less than the network, so its
    intervals can be narrower). Zero-width intervals (constant series) are left out."""
    scales = {}
    for level, (lower, upper) in holdout.bounds.items():
        below, above = holdout.predicted - lower, upper - holdout.predicted
        distance = np.where(holdout.actual < blend, below, above)
        with np.errstate(divide="ignore", invalid="ignore"):
            needed = np.abs(holdout.actual - blend) / distance
        needed = needed[(distance > 0) & np.isfinite(needed)]
        scales[level] = float(np.quantile(needed, level / 100, method="higher")) if len(needed) else 1.0
    return scales


def blend_frame(
    frame: pd.DataFrame,
    classical: Mapping[str, Mapping[str, np.ndarray]],
    weights: Mapping[str, float],
    scales: Mapping[int, float],
    floor: set[str],
) -> pd.DataFrame:
    """The long forecast frame with each series' `yhat` blended with its classical forecasts
    (`classical`: per method, per series, one value per step) and its interval bounds moved with it,
    their distances from it multiplied by `scales[level]` (see `interval_scales`); bounds of the
    series in `floor` (never below zero) are kept at or above zero. Rows without a classical
    forecast (`classical_for`: too short for its season) are left as the network made them."""
    if not any(weight > 0 for weight in weights.values()) or frame.empty:
        return frame
    frame = frame.copy()
    network = frame["yhat"].to_numpy(dtype="float64")
    steps = frame["step"].to_numpy(dtype="int64") - 1
    others = {}
    for name, by_series in classical.items():  # each row's value, looked up for all rows at once
        row = pd.Index(list(by_series)).get_indexer(frame["series_id"])
        width = max([len(values) for values in by_series.values()] + [int(steps.max()) + 1])
        table = np.full((len(by_series) + 1, width), np.nan)  # the last row: a series without a forecast
        for position, values in enumerate(by_series.values()):
            table[position, : len(values)] = values
        others[name] = table[np.where(row >= 0, row, len(table) - 1), steps]
    blend = blended(network, others, weights)
    mixed = np.ones(len(frame), dtype=bool)  # rows with every weighted classical forecast: the others keep the network's
    for name, weight in weights.items():
        if weight > 0:
            mixed &= np.isfinite(others[name])
    frame["yhat"] = blend
    floored = frame["series_id"].isin(floor).to_numpy()
    for level, scale in scales.items():
        for column in interval_columns(level):
            if column in frame.columns:
                bound = frame[column].to_numpy(dtype="float64")
                moved = np.where(mixed, blend + scale * (bound - network), bound)
                frame[column] = np.where(floored & mixed, np.maximum(moved, 0.0), moved)
    return frame
