"""The rules that derive model settings from the frequency, the horizon and the series' lengths."""

import pytest

from forecasting.model.artifacts import PREVIOUS_DEFAULTS, upgrade_manifest
from forecasting.model.defaults import (
    likely_epochs,
    default_batch_size,
    default_lookback,
    default_min_epochs,
    default_season,
    effective_season,
    fill_from,
    resolve_config,
    window_count,
)
from forecasting.config.model_settings import ModelConfig


@pytest.mark.parametrize(
    ("frequency", "season"),
    [("MS", 12), ("ME", 12), ("QS", 4), ("QE-DEC", 4), ("W-SUN", 52), ("D", 7), ("B", 5), ("h", 24), ("YS", 1), ("YE", 1), (None, 1),
     ("min", 1), ("15min", 1), ("T", 1), ("s", 1), ("ms", 1), ("us", 1), ("ns", 1), ("2MS", 12)],
)
def test_season_follows_the_frequency(frequency, season):
    assert default_season(frequency) == season


def test_lookback_is_the_longer_of_a_season_and_a_horizon_and_a_quarter():
    long_series = [500] * 50
    assert default_lookback(18, 12, long_series) == 23  # 1.25 x 18 = 22.5 -> 23 (monthly, M3's horizon)
    assert default_lookback(6, 24, long_series) == 30  # hourly, short horizon: 1.25 days
    assert default_lookback(8, 4, long_series) == 10  # quarterly: 1.25 x 8


def test_lookback_is_capped_by_the_short_series_but_not_by_a_few_stubs():
    assert default_lookback(6, 1, [14] * 100) == 8  # M3 yearly: 14 - 6, so every series keeps a validation window
    assert default_lookback(8, 4, [16] * 50 + [40] * 50) == 8
    # 2 stubs in 100 series are below the 5th percentile: they do not shrink everyone's lookback.
    assert default_lookback(8, 4, [5, 6] + [60] * 98) == 10
    assert default_lookback(6, 1, [7] * 10) == 2  # never below 2


def test_batch_size_gives_about_a_hundred_updates_an_epoch():
    assert window_count([10, 20], 4, 3) == 4 + 14
    assert default_batch_size(0) == 32
    assert default_batch_size(1_000) == 32
    assert default_batch_size(6_000) == 64
    assert default_batch_size(20_000) == 256
    assert default_batch_size(100_000) == 1024
    assert default_batch_size(10_000_000) == 1024


def test_min_epochs_is_fifteen_percent():
    assert default_min_epochs(100) == 15
    assert default_min_epochs(4) == 0


@pytest.mark.parametrize(
    "epochs, min_epochs, patience, expected",
    [
        (100, 15, 8, (28, 20)),  # the defaults: best near a fifth of the epochs (the M3 runs' median, 21), then patience
        (100, 40, 8, (49, 41)),  # not before min_epochs
        (30, 4, 8, (14, 6)),
        (5, 4, 1, (5, 5)),  # min_epochs + patience leave no earlier end
        (3, 0, 2, (3, 1)),
        (10, None, 0, (2, 2)),
    ],
)
def test_likely_epochs_are_a_fifth_of_the_epochs_then_patience_never_past_epochs(epochs, min_epochs, patience, expected):
    assert likely_epochs(epochs, min_epochs, patience) == expected


def test_a_config_with_only_a_horizon_is_completed_from_the_data():
    config = ModelConfig(horizon=6)
    resolved = resolve_config(config, "YS", [14] * 600 + [30] * 45)
    assert (resolved.season, resolved.lookback, resolved.min_epochs) == (1, 8, 15)
    assert resolved.batch_size == default_batch_size(window_count([14] * 600 + [30] * 45, 8, 6))
    assert resolved.layers[0].units == 64 and resolved.loss == "mae"
    assert resolve_config(resolved, "MS", [1000]) is resolved  # nothing left to derive: unchanged


def test_explicit_keys_win():
    config = ModelConfig(horizon=6, lookback=5, batch_size=7, min_epochs=1, season=3)
    assert resolve_config(config, "MS", [14] * 10) is config
    partly = resolve_config(ModelConfig(horizon=18, lookback=24), "MS", [100] * 10)
    assert (partly.lookback, partly.season) == (24, 12)
    assert effective_season(ModelConfig(horizon=2, season=7), "MS") == 7
    assert effective_season(ModelConfig(horizon=2), "QS") == 4


def test_ensemble_lookbacks_fit_inside_a_derived_lookback():
    config = ModelConfig(horizon=6, ensemble={"members": 2, "lookbacks": [4, 12]})
    assert resolve_config(config, "YS", [14] * 10).lookback == 12


def test_a_fine_tune_config_takes_what_it_leaves_out_from_its_parent():
    parent = resolve_config(ModelConfig(horizon=6), "YS", [30] * 10)
    child = fill_from(ModelConfig(horizon=6, epochs=5), parent)
    assert (child.lookback, child.batch_size, child.season) == (parent.lookback, parent.batch_size, parent.season)
    assert child.min_epochs == 0  # 15% of its own 5 epochs


def test_a_config_saved_before_the_derived_defaults_keeps_its_old_defaults():
    old = {"lookback": 12, "horizon": 6, "layers": [{"units": 4}]}
    config = ModelConfig.model_validate(upgrade_manifest({"config": old})["config"])
    for key, value in PREVIOUS_DEFAULTS.items():
        assert getattr(config, key) == value
    assert config.season is None  # season from the frequency, as then
