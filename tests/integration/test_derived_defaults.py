"""A model configured with only its horizon (and the source frequency) trains, registers and forecasts,
with lookback, season, batch size and min_epochs derived from the data (forecasting/defaults.py)."""

import numpy as np
import pandas as pd
import pytest

from forecasting import steps
from forecasting.config.settings import SourceConfig, parse_settings
from forecasting.sources.database import create_db_engine
from forecasting.sources.loading import load_observations
from forecasting.publishing.registry import load_version
from forecasting.sources.schema import migrate
from tests.support.data import pull


def short_frame(frequency: str, lengths: list[int], season: int, seed: int = 3) -> pd.DataFrame:
    """Trending series of the lengths given (M3 quarterly/yearly-like), all ending at the same period."""
    rng = np.random.default_rng(seed)
    parts = []
    for index, length in enumerate(lengths):
        ts = pd.date_range(end="2024-01-01", periods=length, freq=frequency)
        steps_ = np.arange(length)
        values = rng.uniform(100, 1000) * (1 + rng.uniform(0.0, 0.04) * steps_)
        if season > 1:
            values *= 1 + 0.15 * np.sin(2 * np.pi * steps_ / season + rng.uniform(0, 6))
        values *= rng.normal(1, 0.02, length)
        parts.append(pd.DataFrame({"series_id": f"S{index:02d}", "ts": ts, "value": values}))
    return pd.concat(parts, ignore_index=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("frequency", "horizon", "season", "lengths", "lookback"),
    [
        ("QS", 8, 4, [16] * 4 + [30] * 8, 8),  # quarterly: 1.25 x 8 = 10, capped by 16 - 8
        ("YS", 6, 1, [14] * 6 + [24] * 6, 8),  # yearly: 1.25 x 6 -> 8 = 14 - 6
    ],
)
def test_a_config_naming_only_the_horizon_trains_and_forecasts(tmp_path, monkeypatch, frequency, horizon, season, lengths, lookback):
    for name in ("FORECASTING_DATABASE_URL", "FORECASTING_STORAGE_ROOT", "FORECASTING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    settings = parse_settings(
        {"database": {"url": f"sqlite:///{tmp_path / 'db.sqlite'}"}, "storage": {"root": str(tmp_path / "store")},
         "source": {"frequency": frequency}, "models": {"short": {"horizon": horizon}}}
    )
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    load_observations(engine, SourceConfig(), short_frame(frequency, lengths, season))
    pull(settings)

    summary = steps.train_step(settings, "short", "r1", mode="retrain")
    assert summary.promoted and summary.lookback == lookback and summary.layers == [{"units": 64, "dropout": 0.0, "activation": "tanh"}]
    saved = load_version(engine, "short").config  # the version records what it was trained with
    assert (saved.season, saved.lookback, saved.batch_size, saved.min_epochs) == (season, lookback, 32, 15)
    assert summary.epochs_run >= 15 + 1

    forecast = steps.forecast_step(settings, "short", "r2")
    assert forecast.series_forecast == len(lengths) and forecast.series_skipped == 0 and forecast.horizon == horizon
