"""Data integrity: no garbage forecasts with exit 0, and a promotion gate that compares like with like."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting import steps
from forecasting.history import store as history
from forecasting.config.settings import SourceConfig
from forecasting.sources.database import create_db_engine
from forecasting.errors import RunError
from forecasting.sources.loading import load_observations
from forecasting.publishing.registry import champion_version, list_versions, load_version
from forecasting.preparation.scaling import MAX_ABS_VALUE
from forecasting.sources.schema import migrate
from tests.support.data import pull, synthetic_frame

GOOD = {"epochs": 25, "patience": 5}


@pytest.fixture
def project(settings_for, tmp_path):
    """SQLite settings (model `tiny`, refit and deseasonalising on) over a migrated, empty database."""

    def build(frame, **model):
        settings, _ = settings_for(f"sqlite:///{tmp_path / 'integrity.db'}", model={**GOOD, **model})
        engine = create_db_engine(settings.database.url)
        migrate(engine)
        if frame is not None:
            load_observations(engine, SourceConfig(), frame)
            pull(settings)
        return settings, engine

    return build


def champion(engine):
    with engine.connect() as connection:
        return champion_version(connection, "tiny")


def flat(series_id, value, length=48):
    return pd.DataFrame({"series_id": series_id, "ts": pd.date_range("2020-01-01", periods=length, freq="MS"), "value": float(value)})


# Point 4: values the scaling cannot represent, non-finite scores, constant series.


def test_values_beyond_the_bound_are_quarantined_with_a_reason(database_url, settings_for):
    settings, _ = settings_for(database_url, source={"frequency": "MS", "max_quarantined_fraction": 0.5})
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    frame = synthetic_frame(n_series=2)
    frame.loc[frame.index[-3:], "value"] = [1e307, -5e307, MAX_ABS_VALUE * 10]
    load_observations(engine, SourceConfig(), frame)
    pulled = pull(settings)
    assert pulled.quarantined == 3
    with engine.connect() as connection:
        reasons = connection.execute(sa.text("SELECT reason FROM quarantine")).scalars().all()
    assert reasons == ["|value| above 1e+30, beyond what the scaling can represent"] * 3
    stored = history.read(history.history_root(settings.storage_root, "observations"))
    assert len(stored) == len(frame) - 3 and stored.value.abs().max() < 1e4


def test_a_series_of_huge_values_is_set_aside_or_fails_the_pull_clearly(project, settings_for, tmp_path):
    settings, engine = project(None)
    load_observations(engine, SourceConfig(), pd.concat([synthetic_frame(), flat("HUGE", 5e307)]))
    pulled = pull(settings)  # source.on_bad_series = "skip": the other series go on
    assert pulled.series_set_aside == 1 and "|value| above 1e+30" in pulled.set_aside_examples["HUGE"]
    stored = history.read(history.history_root(settings.storage_root, "observations"))
    assert "HUGE" not in set(stored.series_id) and stored.series_id.nunique() == 8
    failing, _ = settings_for(f"sqlite:///{tmp_path / 'integrity.db'}", source={"frequency": "MS", "on_bad_series": "fail"})
    with pytest.raises(RunError, match=r"HUGE \(100%\).*\|value\| above 1e\+30"):
        pull(failing)


@pytest.mark.slow
def test_a_first_version_with_a_non_finite_score_is_a_candidate_and_the_run_fails(project):
    # A history store pulled before the bound existed: screening is bypassed, as it was then.
    settings, engine = project(None)
    huge = flat("HUGE", 0.0).assign(value=np.linspace(1e307, 1.7e308, 48))
    history.merge(history.history_root(settings.storage_root, "observations"), huge)
    with pytest.raises(RunError, match=r"version 1 was registered as a candidate, not champion: its holdout smape is (inf|nan) \(not finite\)"):
        steps.train_step(settings, "tiny", "r1", mode="retrain")
    versions = list_versions(engine, "tiny")
    assert list(versions.status) == ["candidate"] and versions.holdout_score.isna().all()
    assert "not finite" in versions.decision[0] and champion(engine) is None


@pytest.mark.slow
def test_a_candidate_with_a_non_finite_score_never_replaces_the_champion(project):
    settings, engine = project(synthetic_frame())
    assert steps.train_step(settings, "tiny", "r1", mode="retrain").promoted
    huge = synthetic_frame().assign(value=lambda f: f.value * 3e305)  # every series now overflows the scaling
    history.merge(history.history_root(settings.storage_root, "observations"), huge)
    second = steps.train_step(settings, "tiny", "r2", mode="retrain")
    assert not second.promoted and second.decision.startswith("kept as candidate: its smape on the holdout is")
    assert "(not finite)" in second.decision and "forecasts stay with champion v1" in second.decision
    assert champion(engine) == 1 and second.holdout["holdout_score"] is None


@pytest.mark.slow
def test_constant_and_all_zero_series_forecast_their_value_and_are_flagged(project):
    frame = pd.concat([synthetic_frame(), flat("ZERO", 0.0), flat("FIVE", 5.0)])
    settings, engine = project(frame)
    steps.train_step(settings, "tiny", "r1", mode="retrain")
    staged = steps.forecast_step(settings, "tiny", "r2")
    forecasts = pd.read_parquet(staged.staged).set_index("series_id")
    for series_id, value in (("ZERO", 0.0), ("FIVE", 5.0)):
        rows = forecasts.loc[series_id]
        assert len(rows) == 6
        for column in ("yhat", "yhat_lower_80", "yhat_upper_80", "yhat_lower_95", "yhat_upper_95"):
            assert (rows[column] == value).all(), (series_id, column, rows[column].tolist())
    assert staged.series_constant == 2 and staged.series_forecast == 10
    assert staged.constant_examples == {"ZERO": "0 (constant series)", "FIVE": "5 (constant series)"}
    summary = steps.summarise(settings, "tiny", "r2", steps.ModeDecision("forecast", "forecast"), staged, steps.Writes(60, 60))
    text = steps.format_summary(summary.as_dict())
    assert "constant series: 2 forecast as their last value with zero-width intervals" in text
    assert "    constant ZERO: 0 (constant series)" in text
    assert staged.series_out_of_range == 0 and "out of range" not in text  # ordinary forecasts are not flagged


@pytest.mark.slow
def test_forecasts_far_outside_a_series_range_are_flagged_and_written_unchanged(project, monkeypatch):
    from forecasting.model.forecaster import RecurrentForecaster

    settings, _ = project(synthetic_frame())
    steps.train_step(settings, "tiny", "r1", mode="retrain")
    history_of = synthetic_frame().groupby("series_id")["value"]
    low, high = history_of.min(), history_of.max()
    wild = {"S01": float(high["S01"] + 11 * (high["S01"] - low["S01"])), "S05": float(low["S05"] - 10.5 * (high["S05"] - low["S05"]))}
    original = RecurrentForecaster.predict

    def predict_wild(self, arrays, levels=None):  # a network that extrapolates wildly for two series, at step 2
        result = original(self, arrays, levels)
        for series_id, value in wild.items():
            result.forecasts.loc[(result.forecasts["series_id"] == series_id) & (result.forecasts["step"] == 2), "yhat"] = value
        return result

    monkeypatch.setattr(RecurrentForecaster, "predict", predict_wild)
    staged = steps.forecast_step(settings, "tiny", "r2")
    assert staged.series_out_of_range == 2 and staged.series_forecast == 8
    assert list(staged.out_of_range_examples) == ["S01", "S05"]
    assert staged.out_of_range_examples["S01"].startswith(f"yhat {wild['S01']:.6g} at step 2 (observed {low['S01']:.6g} to")
    written = pd.read_parquet(staged.staged).set_index(["series_id", "step"])["yhat"]
    assert written[("S01", 2)] == wild["S01"] and written[("S05", 2)] == wild["S05"] and len(written) == 8 * 6  # nothing dropped
    summary = steps.summarise(settings, "tiny", "r2", steps.ModeDecision("forecast", "forecast"), staged, steps.Writes(48, 48))
    text = steps.format_summary(summary.as_dict())
    assert "forecasts far out of range: 2 series forecast more than 10x their observed range beyond it" in text
    assert "    out of range S05: yhat" in text


def test_an_all_zero_input_window_forecasts_zero():
    from forecasting.model.prediction import constant_value

    values = np.concatenate([np.arange(1.0, 25.0), np.zeros(12)])[:, None]
    assert constant_value(values, 12, window_scaling=True) == (0.0, "last 12 observations all zero")
    assert constant_value(values, 12, window_scaling=False) is None
    assert constant_value(values[:-1], 12, window_scaling=True) is None


# Point 7: both sides of the gate scored by networks that never saw the holdout.


@pytest.mark.slow
def test_retraining_with_the_same_data_config_and_seed_ties_and_is_not_promoted(project):
    settings, engine = project(synthetic_frame())
    first = steps.train_step(settings, "tiny", "r1", mode="retrain")
    assert first.refit and first.promoted
    second = steps.train_step(settings, "tiny", "r2", mode="retrain")
    gate = second.holdout
    assert gate["champion_score"] == gate["holdout_score"], gate
    assert not second.promoted and "does not beat champion v1" in second.decision
    assert champion(engine) == 1

    # The refit network is kept as model.keras; the one that never saw the holdout beside it, checksummed.
    folder = Path(list_versions(engine, "tiny").set_index("version").loc[1, "artifact_path"])
    entry = json.loads((folder / "manifest.json").read_text())["holdout"]
    assert entry["model"] == "holdout.keras" and (folder / "holdout.keras").is_file()
    assert entry["scaler"] == "holdout-series.parquet"  # deseasonalised: the refit re-estimated the factors
    data = folder / "holdout.keras"
    tampered = bytearray(data.read_bytes())
    tampered[-100] ^= 0xFF
    original = data.read_bytes()
    data.write_bytes(bytes(tampered))
    with pytest.raises(RunError, match="holdout.keras: checksum .* refusing to load"):
        load_version(engine, "tiny", 1).holdout_forecaster()
    data.write_bytes(original)

    # A champion saved before holdout networks existed is scored by its deployed network, and the decision says so.
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["holdout"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    third = steps.train_step(settings, "tiny", "r3", mode="retrain")
    assert "(scored by its deployed network: its artifact predates holdout networks)" in third.decision
    assert third.holdout["champion_score"] != third.holdout["holdout_score"]


@pytest.mark.slow
def test_fine_tuned_versions_are_scored_by_a_network_that_never_saw_the_holdout(project):
    frame = synthetic_frame(length=50)
    settings, engine = project(frame[frame.ts < "2023-12-01"])
    steps.train_step(settings, "tiny", "r1", mode="retrain")
    load_observations(engine, SourceConfig(), frame)
    pull(settings)
    child = steps.train_step(settings, "tiny", "r2", mode="fine-tune")
    # v1's refit network saw v1's last 6 months, 4 of which are in the current holdout: the child is
    # scored by a fine-tune of v1's holdout network instead, trained on nothing from the holdout.
    loaded = load_version(engine, "tiny", child.version)
    assert json.loads((loaded.folder / "manifest.json").read_text())["holdout"]["model"] == "holdout.keras"
    data = steps.prepare_data(engine, settings)
    rescored = loaded.holdout_forecaster().score_holdout(data.arrays, "smape")["score"]
    assert child.holdout["holdout_score"] == pytest.approx(rescored)
    deployed = loaded.score_holdout(data.arrays, "smape")["score"]
    assert deployed != pytest.approx(rescored)
    assert child.holdout["champion_score"] == pytest.approx(
        load_version(engine, "tiny", 1).holdout_forecaster().score_holdout(data.arrays, "smape")["score"]
    )


def test_a_non_finite_network_forecast_is_skipped_with_a_reason_never_written():
    import keras

    from forecasting.model.prediction import predict
    from forecasting.preparation.scaling import SeriesScaler
    from forecasting.preparation.windows import to_series_arrays

    arrays = to_series_arrays(synthetic_frame(n_series=2), [])
    scaler = SeriesScaler.fit(arrays.values, target="series")
    model = keras.Sequential([keras.Input((12, 1)), keras.layers.Flatten(), keras.layers.Dense(6)])
    model.set_weights([np.zeros((12, 6), dtype="float32"), np.full(6, np.nan, dtype="float32")])
    result = predict(model, scaler, arrays, 12, 6, "MS", {80: [0.1] * 6})
    assert result.forecasts.empty
    assert result.skipped == {"S00": "the network's forecast is not finite", "S01": "the network's forecast is not finite"}
