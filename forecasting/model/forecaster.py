"""The trained forecaster: one object owning everything a version needs to forecast, score and be saved.

A `RecurrentForecaster` holds the model config, the Keras network, the per-series scaler (levels and
seasonal factors), its inputs (`inputs.InputSpec`: frequency, features, future features, calendar,
lookback, horizon, season, resolved once when it is fitted), the interval half-widths, each series'
training end, the network kept for out-of-sample scores (the holdout forecaster) and where the
version came from. `prepare` builds the arrays it reads from pulled rows; `fit` and `fine_tune`
return a `TrainingOutcome`; `predict` and `score_holdout` never change the forecaster; `save(folder)`
and `load(folder)` write and read the artifact format of `forecasting.model.artifacts` (format 2;
format 1 still loads, through `artifacts.upgrade_manifest`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from forecasting.config.settings import ModelConfig
from forecasting.errors import ConfigError, RunError
from forecasting.model.artifacts import (
    FORMAT_VERSION,
    HOLDOUT_MODEL_FILE,
    HOLDOUT_SCALER_FILE,
    MODEL_FILE,
    SERIES_FILE,
    check_checksum,
    library_versions,
    load_network,
    read_manifest,
    read_series_state,
    read_series_table,
    sha256_file,
    timestamp_text,
    upgrade_manifest,
    write_manifest,
    write_series_table,
)
from forecasting.model.defaults import fill_from
from forecasting.model.inputs import InputSpec
from forecasting.preparation.scaling import SeriesScaler
from forecasting.preparation.windows import SeriesArrays
from forecasting.runtime.clock import utc_now

# Manifest keys that hold the forecaster's state; every other key is provenance (where it came from).
STATE_KEYS = frozenset(
    {"config", "lookback", "horizon", "features", "future_features", "holidays", "frequency", "scaler", "intervals", "series_train_end", "series_file",
     "holdout", "sha256", "format_version", "libraries", "blend_weights", "interval_scales"}
)


@dataclass(frozen=True, eq=False)
class RecurrentForecaster:
    """A trained global recurrent forecaster. Treat it as immutable: no method changes its network or
    scaler (fine-tuning trains a copy). `provenance` holds the manifest's other entries (metrics,
    watermarks, training report, parent version, mode, tuning record, model name, version, run id)."""

    config: ModelConfig
    network: Any
    scaler: SeriesScaler
    inputs: InputSpec  # what it reads, resolved once (`InputSpec.resolve` at fit, `from_manifest` at load)
    interval_halfwidths: Mapping[int, list[float]] = field(default_factory=dict)
    train_end: Mapping[str, str] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    holdout: "RecurrentForecaster | None" = None  # in memory; see `holdout_forecaster`
    folder: Path | None = None  # where it was loaded from (its holdout network is read from there)
    blend_weights: Mapping[str, float] = field(default_factory=dict)  # each classical method's share in its forecasts (`blending`; none: the network's alone)
    interval_scales: Mapping[int, float] = field(default_factory=dict)  # per level, the blend's factor on the interval widths (`blending.interval_scales`)

    @property
    def frequency(self) -> str:
        """The series frequency it was trained on (a pandas alias)."""
        return self.inputs.frequency

    @property
    def features(self) -> tuple[str, ...]:
        """Source columns it reads in the lookback window."""
        return self.inputs.features

    @property
    def future_features(self) -> tuple[str, ...]:
        """Source columns known ahead, fed for the forecast periods (none: a one-input network)."""
        return self.inputs.future_features

    @property
    def holidays(self) -> tuple[str, ...]:
        """Holiday calendars whose inputs it reads, computed from the timestamps (versions from before the option: none)."""
        return self.inputs.holidays

    @property
    def lookback(self) -> int:
        """Input window length (the longest of an ensemble's members)."""
        return self.inputs.lookback

    @property
    def horizon(self) -> int:
        """Steps forecast after each series' last observation."""
        return self.inputs.horizon

    @property
    def calendar(self) -> bool:
        """Whether the network reads calendar inputs (versions from before the option: no)."""
        return self.inputs.calendar

    @property
    def season(self) -> int:
        """The season length it deseasonalises, weights and scores seasonal naive with."""
        return self.inputs.season

    @property
    def version(self) -> int | None:
        """The registry version number, once registered."""
        return self.provenance.get("version")

    def prepare(self, observed: Any, ahead: Any, source: Any, frequency: str | None = None) -> SeriesArrays:
        """The arrays this forecaster reads, from pulled rows (see `InputSpec.prepare`)."""
        return self.inputs.prepare(observed, ahead, source, frequency)

    @classmethod
    def fit(
        cls, arrays: SeriesArrays, config: ModelConfig, features: tuple[str, ...] = (), verbose: int = 0, future_features: tuple[str, ...] = ()
    ) -> "TrainingOutcome":
        """Train from scratch on `arrays` (their frequency is the forecaster's; see `training.train`);
        returns the deployed forecaster, the holdout forecaster and the report. Keys the config leaves
        out are derived from the data first, and the inputs resolved with them, once
        (`InputSpec.resolve`); the forecaster keeps both. `future_features` defaults to the names of
        the arrays' future columns."""
        from forecasting.model.training import train  # lazy: keras, tensorflow

        future_features = tuple(future_features) or tuple(getattr(arrays, "future_names", ()))
        if len(future_features) != arrays.future_count:
            raise ConfigError(
                f"future_features {list(future_features)} given, but the arrays carry {arrays.future_count} future feature columns "
                f"({list(getattr(arrays, 'future_names', ()))}); build them with the same future features"
            )
        config, inputs = InputSpec.resolve(config, arrays, tuple(features), tuple(future_features))
        trained = train(arrays, config, season=inputs.season, verbose=verbose)
        return with_blend_weights(_outcome(trained, config, inputs), arrays)

    def fine_tune(self, arrays: SeriesArrays, config: ModelConfig | None = None, verbose: int = 0) -> "TrainingOutcome":
        """Continue training a copy of this forecaster's network on the windows that became trainable
        since it was trained (see `training.fine_tune`), with `config` (default: its own); this
        forecaster is left as it is. The outcome's holdout forecaster is this one's, fine-tuned
        the same way, where it kept a separate holdout network."""
        from forecasting.model.training import fine_tune  # lazy: keras, tensorflow

        check_future_inputs(self, arrays, "fine-tune")
        config = fill_from(config or self.config, self.config)
        inputs = InputSpec.of(config, self.frequency, self.features, self.future_features)  # the parent's, season as the config has it
        season = inputs.season
        trained = fine_tune(arrays, config, (copy_network(self.network), self.scaler, dict(self.train_end)), season, verbose)
        outcome = _outcome(trained, config, inputs)
        held_out = self.holdout_forecaster()
        if held_out is None or held_out.network is self.network:  # no holdout network kept, or the deployed one is it
            return with_blend_weights(outcome, arrays)
        # The parent's deployed network may have seen the current holdout (after a refit): fine-tune its
        # holdout network too. Its validation scores and interval widths are out of sample, so they count.
        honest = fine_tune(arrays, config, (copy_network(held_out.network), held_out.scaler, dict(self.train_end)), season, verbose)
        details = {**outcome.report.details, "holdout_network": {"epochs_run": honest.report.epochs_run, "best_epoch": honest.report.best_epoch}}
        report = replace(outcome.report, metrics=honest.report.metrics, details=details)
        provenance = {**outcome.forecaster.provenance, **report_provenance(report)}
        deployed = replace(outcome.forecaster, interval_halfwidths=honest.interval_halfwidths, provenance=provenance)
        holdout = replace(deployed, network=honest.network, scaler=honest.scaler, holdout=None)
        return with_blend_weights(TrainingOutcome(replace(deployed, holdout=holdout), holdout, report), arrays)

    def predict(self, arrays: SeriesArrays, levels: list[int] | None = None) -> Any:
        """A `prediction.ForecastResult`: the next `horizon` steps after each series' last observation,
        with the interval `levels` given (default: all it has). Series it has not seen are scaled
        by their own history in a copy of the scaler; series shorter than the lookback are forecast
        from a padded window (method `short_history`)."""
        from forecasting.model.prediction import predict  # lazy: keras, tensorflow

        check_future_inputs(self, arrays, "predict")
        widths = {level: w for level, w in self.interval_halfwidths.items() if levels is None or level in levels}
        frequency = arrays.frequency or self.frequency
        result = predict(self.network, self.scaler.copy(), arrays, self.lookback, self.horizon, frequency, widths, self.season)
        if any(weight > 0 for weight in self.blend_weights.values()) and len(result.forecasts):
            from forecasting.model.blending import blend_frame, classical_for  # lazy: keras, tensorflow (through prediction)

            ids = list(result.forecasts["series_id"].unique())
            histories = [arrays.values[sid][:, 0] for sid in ids]
            classical = classical_for(histories, [arrays.timestamps[sid] for sid in ids], self.horizon, self.season, frequency)
            by_series = {name: dict(zip(ids, values)) for name, values in classical.items()}
            floor = {sid for sid, history in zip(ids, histories) if np.nanmin(history, initial=0.0) >= 0}
            scales = {level: self.interval_scales.get(level, 1.0) for level in widths}
            result.forecasts = blend_frame(result.forecasts, by_series, self.blend_weights, scales, floor)
        return result

    def score_holdout(self, arrays: SeriesArrays, metric: str) -> dict[str, float]:
        """`metric` on each series' latest `horizon` observations forecast from just before them, and
        seasonal naive's from the same origin: {"score", "baseline", "series"} (see `prediction.score_holdout`)."""
        from forecasting.model.prediction import score_holdout  # lazy: keras, tensorflow

        return score_holdout(self.holdout_forecasts(arrays, blend=True), metric)

    def holdout_forecasts(self, arrays: SeriesArrays, blend: bool = True) -> Any:
        """This forecaster's `prediction.HoldoutForecasts` on `arrays` (blended with the classical forecasts by its
        `blend_weights` unless `blend` is False; None when no series can be scored)."""
        from forecasting.model.blending import blended, classical_for  # lazy: keras, tensorflow
        from forecasting.model.prediction import holdout_forecasts  # lazy: keras, tensorflow

        check_future_inputs(self, arrays, "score_holdout")
        holdout = holdout_forecasts(self.network, self.scaler, arrays, self.lookback, self.horizon, self.season, dict(self.interval_halfwidths))
        if holdout is None or not blend or not any(weight > 0 for weight in self.blend_weights.values()):
            return holdout
        classical = classical_for(holdout.histories, holdout.timestamps, self.horizon, self.season, arrays.frequency or self.frequency)
        return replace(holdout, predicted=blended(holdout.predicted, classical, self.blend_weights))

    def holdout_forecaster(self) -> "RecurrentForecaster | None":
        """The forecaster whose network never saw any series' last `horizon` rows at training time (this
        one's own network where no refit happened); None for versions saved before holdout networks
        were kept (their deployed network may have seen their holdout). Read from the folder,
        checksums checked, for a loaded forecaster."""
        if self.holdout is not None or self.folder is None:
            return self.holdout
        entry = upgrade_manifest(read_manifest(self.folder))["holdout"]
        if entry is None:
            return None
        if entry["model"] == MODEL_FILE:
            return replace(self, holdout=None, folder=None)
        network = load_network(self.folder / entry["model"], entry["sha256"])
        scaler = self.scaler
        if entry.get("scaler"):
            scaler, _ = read_series_table(self.folder / entry["scaler"], entry["scaler_header"], entry["scaler_sha256"])
        return replace(self, network=network, scaler=scaler, holdout=None, folder=None)

    def manifest(self) -> dict[str, Any]:
        """The manifest in its in-memory layout (per-series state inline, as format 1 stored it)."""
        return {
            **self.provenance,
            "config": self.config.model_dump(mode="json"),
            **self.inputs.manifest_entries(),
            "scaler": self.scaler.to_dict(),
            "intervals": {str(level): widths for level, widths in self.interval_halfwidths.items()},
            "blend_weights": dict(self.blend_weights),
            "interval_scales": {str(level): scale for level, scale in self.interval_scales.items()},
            "series_train_end": dict(self.train_end),
        }

    def save(self, folder: Path) -> dict[str, Any]:
        """Write `model.keras`, `series.parquet`, the holdout network where it differs, and
        `manifest.json` (format version, checksums, library versions) into `folder`; returns the manifest."""
        folder = Path(folder)
        self.network.save(folder / MODEL_FILE)
        digest = write_series_table(folder / SERIES_FILE, self.scaler, dict(self.train_end))
        manifest = {key: value for key, value in self.manifest().items() if key != "series_train_end"}
        manifest["scaler"] = {**self.scaler.header(), "series_count": len(self.scaler.loc), "seasonal_series": len(self.scaler.factors)}
        manifest["series_file"] = {"path": SERIES_FILE, "sha256": digest, "rows": len(set(self.scaler.loc) | set(self.train_end))}
        manifest.update(format_version=FORMAT_VERSION, sha256=sha256_file(folder / MODEL_FILE), libraries=library_versions())
        if self.holdout is not None:
            manifest["holdout"] = self._save_holdout(folder)
        write_manifest(folder, manifest)
        return manifest

    def _save_holdout(self, folder: Path) -> dict[str, Any]:
        """The holdout network (and its scaler where it differs) beside `model.keras`; the manifest's `holdout` entry."""
        holdout = self.holdout
        if holdout.network is self.network:
            return {"model": MODEL_FILE}
        holdout.network.save(folder / HOLDOUT_MODEL_FILE)
        entry: dict[str, Any] = {"model": HOLDOUT_MODEL_FILE, "sha256": sha256_file(folder / HOLDOUT_MODEL_FILE), "scaler": None}
        if holdout.scaler is not self.scaler:  # None: the version's own scaler
            scaler_digest = write_series_table(folder / HOLDOUT_SCALER_FILE, holdout.scaler)
            entry.update(scaler=HOLDOUT_SCALER_FILE, scaler_sha256=scaler_digest, scaler_header=holdout.scaler.header())
        return entry

    @classmethod
    def load(cls, folder: Path, expected_sha256: str | None = None) -> "RecurrentForecaster":
        """The forecaster saved in `folder` (either format), after checking its format version and the
        checksums (the manifest's and, when given, the registered `expected_sha256`)."""
        folder = Path(folder)
        manifest = upgrade_manifest(read_manifest(folder))
        check_checksum(folder / MODEL_FILE, None)  # a missing file is named before a checksum is taken
        actual = sha256_file(folder / MODEL_FILE)
        for expected in (manifest.get("sha256"), expected_sha256):
            if expected is not None and actual != expected:
                raise _checksum_error(folder / MODEL_FILE, actual, expected)
        scaler, train_end = read_series_state(folder, manifest)
        import keras  # lazy: keras

        config = ModelConfig.model_validate(manifest["config"])
        return cls(
            config=config,
            network=keras.models.load_model(folder / MODEL_FILE, compile=False),
            scaler=scaler,
            inputs=InputSpec.from_manifest(manifest, config),
            interval_halfwidths={int(level): widths for level, widths in manifest["intervals"].items()},
            blend_weights={name: float(weight) for name, weight in manifest.get("blend_weights", {}).items()},
            interval_scales={int(level): float(scale) for level, scale in manifest.get("interval_scales", {}).items()},
            train_end=train_end,
            provenance={key: value for key, value in manifest.items() if key not in STATE_KEYS},
            folder=folder,
        )


@dataclass(frozen=True)
class TrainingOutcome:
    """What a training returns: the forecaster to deploy, the one that never saw the holdout (the same
    object without a refit), and the report."""

    forecaster: RecurrentForecaster
    holdout: RecurrentForecaster
    report: Any  # training.TrainingReport


def check_future_inputs(forecaster: RecurrentForecaster, arrays: SeriesArrays, action: str) -> None:
    """A ConfigError when the network's future input is not as wide as the arrays' future columns."""
    from forecasting.model.network import future_inputs  # lazy: keras, tensorflow

    expected, given = future_inputs(forecaster.network), len(arrays.future_columns)
    if expected != given:
        calendar = " and calendar" if forecaster.calendar and (forecaster.future_features or forecaster.holidays) else ""
        holidays = f", holidays {list(forecaster.holidays)}" if forecaster.holidays else ""
        given_holidays = f", holidays {list(arrays.holidays)}" if arrays.holidays else ""
        raise ConfigError(
            f"{action}: the network reads {expected} future input columns (future_features {list(forecaster.future_features)}{calendar}{holidays}), "
            f"the data carries {given} (future features {list(arrays.future_names)}{given_holidays}); prepare the data with the model's "
            "future_features, holidays and calendar, or retrain"
        )


def _outcome(trained: Any, config: ModelConfig, inputs: InputSpec) -> TrainingOutcome:
    """Forecasters from `training.Trained`, with the report's facts as provenance."""
    report = trained.report
    provenance = {"created_at": utc_now().isoformat(), **report_provenance(report)}
    deployed = RecurrentForecaster(
        config, trained.network, trained.scaler, inputs, trained.interval_halfwidths, trained.series_train_end, provenance
    )
    holdout = deployed
    if trained.holdout_network is not trained.network or trained.holdout_scaler is not trained.scaler:
        holdout = replace(deployed, network=trained.holdout_network, scaler=trained.holdout_scaler)
    return TrainingOutcome(replace(deployed, holdout=replace(holdout, holdout=None)), holdout, report)


def with_blend_weights(outcome: TrainingOutcome, arrays: SeriesArrays) -> TrainingOutcome:
    """The outcome's forecasters with the blend weights of `blending`: the config's `blend`, or (unset)
    those chosen on the holdout forecaster's holdout; none unset for a model reading future features or
    holidays (the classical methods cannot see them). The holdout's scores join the report's metrics."""
    from forecasting.model.blending import blended, choose_weights, classical_for, interval_scales  # lazy: keras, tensorflow

    forecaster, config = outcome.forecaster, outcome.forecaster.config
    fixed = config.blend.model_dump() if config.blend is not None else None
    if fixed is None and (forecaster.future_features or forecaster.holidays):
        fixed = {}
    weights, metrics, scales = dict(fixed or {}), {}, {}
    holdout = outcome.holdout.holdout_forecasts(arrays, blend=False)
    if holdout is not None:
        classical = classical_for(holdout.histories, holdout.timestamps, forecaster.horizon, forecaster.season, arrays.frequency or forecaster.frequency)
        weights, metrics = choose_weights(holdout, classical, fixed)
    weights = {name: float(weight) for name, weight in weights.items() if weight > 0}
    if holdout is not None and weights:
        scales = interval_scales(holdout, blended(holdout.predicted, classical, weights))
    details = {**outcome.report.details, "blend_weights": weights, "interval_scales": {str(level): scale for level, scale in scales.items()}}
    report = replace(outcome.report, metrics={**outcome.report.metrics, **metrics}, details=details)
    provenance = {**forecaster.provenance, **report_provenance(report)}
    state = {"blend_weights": weights, "interval_scales": scales, "provenance": provenance}
    kept = forecaster.holdout and replace(forecaster.holdout, **state)
    deployed = replace(forecaster, holdout=kept, **state)
    return TrainingOutcome(deployed, replace(outcome.holdout, **state), report)


def report_provenance(report: Any) -> dict[str, Any]:
    """The manifest entries a `training.TrainingReport` gives: metrics, data watermark, training span and report."""
    return {
        "metrics": dict(report.metrics),
        "data_watermark": timestamp_text(report.data_watermark),
        "train_start": timestamp_text(report.train_start),
        "train_end": timestamp_text(report.train_end),
        "training": report.training_entry(),
    }


def _checksum_error(path: Path, actual: str, expected: str) -> Exception:
    return RunError(f"{path}: checksum {actual[:12]}… does not match the registered {expected[:12]}…; refusing to load")


def copy_network(network: Any) -> Any:
    """A separate copy of a Keras network, through the `.keras` format (as a version loaded again from its folder)."""
    import keras  # lazy: keras

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / MODEL_FILE
        network.save(path)
        return keras.models.load_model(path, compile=False)
