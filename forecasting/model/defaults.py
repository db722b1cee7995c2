"""Model settings derived from the data when the config leaves them out (documented in docs/configuration.md,
"Derived defaults"); an explicit config key always wins.

The rules are pure functions of the frequency, the horizon and the series' lengths:

- season: the frequency's typical period (`evaluation.season_length`: 12 monthly, 4 quarterly,
  52 weekly, 7 daily, 5 business daily, 24 hourly, 1 otherwise, yearly included);
- lookback: max(ceil(1.25 x season), ceil(1.25 x horizon)), but no longer than the short series
  allow (the 5th percentile of the series' lengths minus the horizon, so nearly every series keeps
  at least one full window for validation), and at least 2. New series (shorter than that lookback
  plus the horizon, and than a quarter of the median series) are left out of the percentile while
  they are at most a quarter of the series (`NEW_SERIES_SHARE`): a few new stores among established
  ones do not shorten every series' lookback; they are forecast through the short-history path
  (`prediction.last_windows`). Where more are that short, the data set is short as a whole and the
  lookback fits it as before;
- batch size: the power of two nearest to the number of windows / 100 (about 100 updates an
  epoch, whatever the data set's size), between 32 and 1024;
- min_epochs: 15% of `epochs` (rounded down), so early stopping does not end on a lucky early dip.

`likely_epochs` says where early stopping is likely to end a training (the training-time estimate
of `forecasting check` and the progress lines while training).

`resolve_config` fills the missing keys of a config from the data; a trained forecaster keeps the
resolved config, so its artifact records what it was trained with, and the inputs it reads
(`inputs.InputSpec.resolve`, once per fit).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from forecasting.evaluation.metrics import season_length
from forecasting.config.model_settings import ModelConfig

# The keys `resolve_config` derives from the data when the config leaves them out: a config trained has them all.
DERIVED_KEYS = ("season", "lookback", "batch_size", "min_epochs")
MIN_LOOKBACK = 2
SHORT_SERIES_QUANTILE = 0.05
# New series (too short for one validation window at the preferred lookback, and far shorter than the median
# series) are left out of the lookback's percentile while they are at most this share of the series (issue 29:
# 2 new stores in 14 took everyone's lookback to 2). Short series of a data set of short series still shorten
# it, as they always did (M3 quarterly's 16-quarter series, median 44: a lookback of 8, which scores better
# on the holdout than 10 with them padded).
NEW_SERIES_SHARE = 0.25
NEW_SERIES_MEDIAN_SHARE = 0.25
UPDATES_PER_EPOCH = 100
MIN_BATCH, MAX_BATCH = 32, 1024
MIN_EPOCHS_SHARE = 0.15
# Where the validation loss is usually lowest, as a share of `epochs`: the M3 monthly runs of
# benchmarks/results/2026-11-26-m3-monthly.md (100 epochs, patience 8) kept epochs 5 to 32, median 21.
LIKELY_BEST_SHARE = 0.2


def default_season(frequency: str | None) -> int:
    """The season length for a pandas frequency alias (1 when unknown or yearly)."""
    return season_length(frequency) if frequency else 1


def short_length(lengths: Iterable[int]) -> int | None:
    """The length the lookback must fit: the 5th percentile of the series' lengths (None without series)."""
    values = np.asarray([int(length) for length in lengths if length > 0])
    if not len(values):
        return None
    return int(np.quantile(values, SHORT_SERIES_QUANTILE, method="lower"))


def preferred_lookback(horizon: int, season: int) -> int:
    """max(1.25 seasons, 1.25 horizons), at least 2: the lookback before the series' lengths cap it."""
    return max(math.ceil(1.25 * season), math.ceil(1.25 * horizon), MIN_LOOKBACK)


def new_series_length(horizon: int, season: int, lengths: list[int]) -> int:
    """The length below which a series counts as new: the preferred lookback plus the horizon (no
    validation window at it), and at most a quarter of the median length (`NEW_SERIES_MEDIAN_SHARE`)."""
    median = float(np.median(lengths)) if lengths else 0.0
    return min(preferred_lookback(horizon, season) + horizon, math.ceil(NEW_SERIES_MEDIAN_SHARE * median))


def new_series(horizon: int, season: int, lengths: Iterable[int]) -> int:
    """How many series are new (shorter than `new_series_length`), counted only while they are at most
    `NEW_SERIES_SHARE` of the series (else 0: the data set is short as a whole)."""
    values = [int(length) for length in lengths if length > 0]
    threshold = new_series_length(horizon, season, values)
    short = sum(1 for length in values if length < threshold)
    return short if values and short <= NEW_SERIES_SHARE * len(values) else 0


def default_lookback(horizon: int, season: int, lengths: Iterable[int]) -> int:
    """max(1.25 seasons, 1.25 horizons), capped so the short series keep a validation window; at least 2.
    New series (`new_series`) do not cap it."""
    preferred = preferred_lookback(horizon, season)
    lengths = [int(length) for length in lengths]
    if new_series(horizon, season, lengths):
        threshold = new_series_length(horizon, season, [length for length in lengths if length > 0])
        lengths = [length for length in lengths if length >= threshold]
    short = short_length(lengths)
    if short is None:
        return preferred
    return max(MIN_LOOKBACK, min(preferred, short - horizon))


def window_count(lengths: Iterable[int], lookback: int, horizon: int) -> int:
    """How many (lookback + horizon) windows the series hold in all."""
    return sum(max(0, int(length) - lookback - horizon + 1) for length in lengths)


def default_batch_size(windows: int) -> int:
    """The power of two nearest windows / 100, within 32..1024."""
    if windows <= 0:
        return MIN_BATCH
    size = 2 ** round(math.log2(max(windows / UPDATES_PER_EPOCH, 1.0)))
    return int(min(MAX_BATCH, max(MIN_BATCH, size)))


def default_min_epochs(epochs: int) -> int:
    """15% of the epochs, rounded down."""
    return int(epochs * MIN_EPOCHS_SHARE)


def likely_epochs(epochs: int, min_epochs: int | None, patience: int) -> tuple[int, int]:
    """(epochs run, epoch kept) that early stopping likely gives: the best epoch about a fifth of the
    way through `epochs` (`LIKELY_BEST_SHARE`), not before `min_epochs` + 1, then `patience` more
    epochs without improvement; never more than `epochs`. A guess from experience, not a bound."""
    best = min(epochs, max((min_epochs or 0) + 1, math.ceil(LIKELY_BEST_SHARE * epochs)))
    return min(epochs, best + patience), best


def resolve_config(config: ModelConfig, frequency: str | None, lengths: Iterable[int]) -> ModelConfig:
    """`config` with every derived key it leaves out (None) filled from the frequency and the series'
    lengths; a config with nothing left out is returned as it is."""
    lengths = list(lengths)
    update: dict[str, Any] = {}
    season = effective_season(config, frequency)
    if config.season is None:
        update["season"] = season
    lookback = config.lookback
    if lookback is None:
        lookback = default_lookback(config.horizon, season, lengths)
        lookback = max([lookback, *(config.ensemble.lookbacks or [])])
        update["lookback"] = lookback
    if config.batch_size is None:
        update["batch_size"] = default_batch_size(window_count(lengths, lookback, config.horizon))
    if config.min_epochs is None:
        update["min_epochs"] = default_min_epochs(config.epochs)
    if not update:
        return config
    return ModelConfig.model_validate({**config.model_dump(mode="json"), **update})


def resolve_for(config: ModelConfig, arrays: Any) -> ModelConfig:
    """`resolve_config` with the frequency and lengths of `arrays` (a `windowing.SeriesArrays`)."""
    values: Mapping[str, np.ndarray] = arrays.values
    return resolve_config(config, arrays.frequency, (len(v) for v in values.values()))


def fill_from(config: ModelConfig, parent: ModelConfig) -> ModelConfig:
    """`config` with the season, lookback and batch size it leaves out taken from `parent` (a fine-tune
    keeps its parent's shape), and min_epochs from its own epochs."""
    update = {key: getattr(parent, key) for key in INHERITED_KEYS if getattr(config, key) is None and getattr(parent, key) is not None}
    if config.min_epochs is None:
        update["min_epochs"] = default_min_epochs(config.epochs)
    if not update:
        return config
    return ModelConfig.model_validate({**config.model_dump(mode="json"), **update})


INHERITED_KEYS = ("season", "lookback", "batch_size")


def effective_season(config: ModelConfig, frequency: str | None) -> int:
    """The season length a config trains, deseasonalises and scores seasonal naive with: the one rule
    (a trained forecaster keeps it in its `inputs.InputSpec`; live scoring of a configured model reads it here)."""
    return config.season if config.season is not None else default_season(frequency)
