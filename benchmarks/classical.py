"""Classical baselines beside the model in the same benchmark run: statsforecast's AutoETS and Theta
(the optional `benchmarks` extra: `pip install -e ".[benchmarks]"`)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

STATSFORECAST_MISSING = (
    "statsforecast is not installed, so AutoETS and Theta are left out; install the benchmarks extra: pip install -e \".[benchmarks]\""
)


def statsforecast_available() -> bool:
    """Whether the optional statsforecast package can be imported."""
    try:
        import statsforecast  # noqa: F401
    except ImportError:
        return False
    return True


def classical_forecasts(train_part: pd.DataFrame, horizon: int, season: int, frequency: str) -> dict[str, pd.DataFrame]:
    """AutoETS and Theta (statsforecast, seasonal with `season` > 1) fitted on each series' training
    part, as long frames (series_id, target_ts, step, yhat) that `evaluation.accuracy_by_step` scores."""
    os.environ.setdefault("NIXTLA_ID_AS_COL", "1")
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, Theta

    frame = train_part.rename(columns={"series_id": "unique_id", "ts": "ds", "value": "y"})[["unique_id", "ds", "y"]]
    models = [AutoETS(season_length=season, alias="ets"), Theta(season_length=season, alias="theta")]
    forecast = StatsForecast(models=models, freq=frequency, n_jobs=1).forecast(df=frame, h=horizon)
    forecast = forecast.reset_index() if "unique_id" not in forecast.columns else forecast
    forecast["step"] = forecast.groupby("unique_id").cumcount() + 1
    result = {}
    for name in ("ets", "theta"):
        values = forecast[name].to_numpy(dtype="float64")
        result[name] = pd.DataFrame(
            {"series_id": forecast["unique_id"].astype(str).to_numpy(), "target_ts": pd.DatetimeIndex(forecast["ds"]),
             "step": forecast["step"].to_numpy(dtype="int64"), "yhat": np.where(np.isfinite(values), values, np.nan)}
        )
    return result
