"""Model lifecycle: modes, the auto policy, the promotion gate, promote/rollback, fine-tuning."""

import json

import pytest
import sqlalchemy as sa

from forecasting import steps
from forecasting.config.settings import ModelConfig, SourceConfig
from forecasting.sources.database import create_db_engine
from forecasting.errors import ConfigError, RunError
from forecasting.sources.loading import load_observations
from forecasting.publishing.registry import champion_version, list_versions, promote, rollback
from forecasting.sources.schema import migrate
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.preparation.windows import to_series_arrays
from tests.support.data import TINY_MODEL, pull, synthetic_frame

GOOD = {"epochs": 25, "patience": 5}
BAD = {"epochs": 1, "learning_rate": 1e-5}


@pytest.fixture
def setup(settings_for):
    """Settings builder over one SQLite database holding the first 54 months of 8 series."""
    frame = synthetic_frame(n_series=8, length=60)
    state = {}

    def build(**model):
        settings, _ = settings_for(state.get("url") or "sqlite:///lifecycle.db", model=model)
        if "url" not in state:
            state["url"] = settings.database.url
            engine = create_db_engine(settings.database.url)
            migrate(engine)
            load_observations(engine, SourceConfig(), frame[frame.ts < "2024-07-01"])
            pull(settings)
        state["settings"] = settings
        return settings, create_db_engine(settings.database.url)

    build.frame = frame
    build.state = state
    return build


def add_months(setup, engine, until):
    load_observations(engine, SourceConfig(), setup.frame[setup.frame.ts < until])
    pull(setup.state["settings"])


def champion(engine):
    with engine.connect() as connection:
        return champion_version(connection, "tiny")


@pytest.mark.slow
def test_gate_keeps_a_worse_candidate_and_promotes_a_better_one(setup):
    settings, engine = setup(**BAD)
    first = steps.train_step(settings, "tiny", "r1", mode="retrain")
    assert first.promoted and first.decision.startswith("promoted: first version")
    settings, _ = setup(**GOOD)
    better = steps.train_step(settings, "tiny", "r2", mode="retrain")
    assert better.promoted, better.decision
    assert better.holdout["holdout_score"] < better.holdout["champion_score"]
    settings, _ = setup(**BAD)
    worse = steps.train_step(settings, "tiny", "r3", mode="retrain")
    assert not worse.promoted and worse.decision.startswith("kept as candidate: smape")
    assert champion(engine) == 2
    versions = list_versions(engine, "tiny").set_index("version")
    assert versions.loc[3, "status"] == "candidate" and versions.loc[2, "status"] == "champion"
    assert versions.loc[3, "holdout_score"] > versions.loc[3, "champion_score"]
    # Both sides are scored by their networks that never saw the holdout (the champion's refit
    # network has seen it), so both scores are out of sample.
    from forecasting.publishing.registry import load_version

    held_out = load_version(engine, "tiny", 2).holdout_forecaster()
    data = steps.prepare_data(engine, settings)
    rescored = held_out.score_holdout(data.arrays, "smape")["score"]
    assert versions.loc[3, "champion_score"] == pytest.approx(rescored)
    assert versions.loc[3, "baseline_score"] > 0 and "does not beat champion v2" in versions.loc[3, "decision"]
    # Forecasts keep coming from the champion, not the candidate.
    staged = steps.forecast_step(settings, "tiny", "r4")
    assert staged.version == 2


@pytest.mark.slow
def test_promote_and_rollback_are_recorded(setup):
    for run, model in (("a", BAD), ("b", GOOD)):
        settings, engine = setup(**model)
        steps.train_step(settings, "tiny", run, mode="retrain")
    settings, _ = setup(**BAD)
    steps.train_step(settings, "tiny", "c", mode="retrain")  # candidate v3
    assert champion(engine) == 2
    assert promote(engine, "tiny", 3) == 2 and champion(engine) == 3
    assert promote(engine, "tiny", 3) == 3 and champion(engine) == 3  # repeated: a no-op, not recorded below
    assert rollback(engine, "tiny") == (3, 2) and champion(engine) == 2
    assert rollback(engine, "tiny") == (2, 1) and champion(engine) == 1
    with pytest.raises(RunError, match="no previous champion"):
        rollback(engine, "tiny")
    with pytest.raises(ConfigError, match="has no version 9"):
        promote(engine, "tiny", 9)
    with engine.connect() as connection:
        events = connection.execute(sa.text("SELECT event, from_version, to_version FROM model_events ORDER BY id")).fetchall()
    assert [tuple(e) for e in events] == [
        ("promote", None, 1), ("promote", 1, 2), ("promote", 2, 3), ("rollback", 3, 2), ("rollback", 2, 1)
    ]
    statuses = list_versions(engine, "tiny").set_index("version")["status"].to_dict()
    assert statuses == {1: "champion", 2: "rolled-back", 3: "rolled-back"}


@pytest.mark.slow
def test_auto_policy_branches(setup):
    settings, engine = setup(**GOOD)
    decision = steps.decide_mode(settings, "tiny", "auto")
    assert decision.mode == "retrain" and "no champion" in decision.reason
    steps.train_step(settings, "tiny", "r1", mode="retrain")
    decision = steps.decide_mode(settings, "tiny", "auto")
    assert decision.mode == "forecast" and decision.reason == "forecast: no observations newer than 2024-06-01, the data of champion v1"
    add_months(setup, engine, "2024-08-01")
    decision = steps.decide_mode(settings, "tiny", "auto")
    assert decision == steps.ModeDecision("fine-tune", "fine-tune: 8 new observations for 8 series since 2024-06-01 (champion v1)")
    stale, _ = setup(**GOOD, promotion={"retrain_every_days": 1e-9})
    decision = steps.decide_mode(stale, "tiny", "auto")
    assert decision.mode == "retrain" and "days old (retrain_every_days 1e-09)" in decision.reason
    # A level shift in the newest data makes the champion's recent error jump: retrain, not fine-tune.
    shifted = setup.frame[(setup.frame.ts >= "2024-08-01") & (setup.frame.ts < "2024-10-01")].assign(value=lambda f: f.value * 5)
    load_observations(engine, SourceConfig(), shifted)
    pull(settings)
    decision = steps.decide_mode(settings, "tiny", "auto")
    assert decision.mode == "retrain" and "worse than" in decision.reason and "at promotion (tolerance 20%)" in decision.reason


@pytest.mark.slow
def test_fine_tune_continues_from_the_parent(setup):
    settings, engine = setup(**GOOD)
    parent = steps.train_step(settings, "tiny", "r1", mode="retrain")
    with pytest.raises(RunError, match="no window has become trainable"):
        steps.train_step(settings, "tiny", "r2", mode="fine-tune")
    add_months(setup, engine, "2024-09-01")
    child = steps.train_step(settings, "tiny", "r3", mode="fine-tune")
    assert child.mode == "fine-tune" and child.parent_version == 1
    versions = list_versions(engine, "tiny").set_index("version")
    assert versions.loc[child.version, "mode"] == "fine-tune"
    manifest = json.loads(open(f"{versions.loc[child.version, 'artifact_path']}/manifest.json").read())
    assert manifest["parent_version"] == 1 and manifest["training"]["new_windows"] == 8 * 2
    assert manifest["training"]["replayed_windows"] == 2 * 8 * 2 and manifest["training"]["learning_rate"] == pytest.approx(0.001)
    assert parent.train_windows > manifest["training"]["new_windows"]


@pytest.mark.slow
def test_fine_tune_first_epoch_loss_is_near_the_parents_final_loss():
    # Deseasonalised, these synthetic series are nearly flat and even a fresh network starts near
    # its final loss: with the season left in, a first epoch that starts low shows the weights carried over.
    config = ModelConfig(**{**TINY_MODEL, **GOOD, "deseasonalize": False})
    frame = synthetic_frame(n_series=8, length=60)
    parent = RecurrentForecaster.fit(to_series_arrays(frame[frame.ts < "2024-10-01"], []), config)
    fresh_first, parent_last = parent.report.history["loss"][0], parent.report.history["loss"][-1]
    child = parent.forecaster.fine_tune(to_series_arrays(frame, []), config)
    child_first = child.report.history["loss"][0]
    assert child_first < 2 * parent_last, (child_first, parent_last)
    assert child_first < 0.5 * fresh_first, (child_first, fresh_first)


def test_fine_tune_without_champion_is_a_clear_error(setup):
    settings, _ = setup(**GOOD)
    with pytest.raises(RunError, match="has no champion to continue from; run with --mode retrain first"):
        steps.train_step(settings, "tiny", "r", mode="fine-tune")


@pytest.mark.slow
def test_auto_and_fine_tune_measure_new_data_from_the_newest_version_not_only_the_champion(setup):
    settings, engine = setup(**GOOD)
    steps.train_step(settings, "tiny", "r1", mode="retrain")  # champion v1, data to 2024-06-01
    add_months(setup, engine, "2024-08-01")
    settings, _ = setup(**BAD)
    candidate = steps.train_step(settings, "tiny", "r2", mode="retrain")  # v2 on the new months, not promoted
    assert not candidate.promoted and champion(engine) == 1
    settings, _ = setup(**GOOD)
    # Nothing arrived since v2 was trained: training again would repeat v2's data.
    assert steps.decide_mode(settings, "tiny", "auto") == steps.ModeDecision(
        "forecast", "forecast: no observations newer than 2024-07-01, the data of candidate v2; champion v1"
    )
    assert steps.decide_mode(settings, "tiny", "fine-tune") == steps.ModeDecision(
        "forecast", "forecast: fine-tune requested, but nothing is newer than 2024-07-01, the data of candidate v2; champion v1"
    )
    add_months(setup, engine, "2024-09-01")
    assert steps.decide_mode(settings, "tiny", "auto") == steps.ModeDecision(
        "fine-tune", "fine-tune: 8 new observations for 8 series since 2024-07-01 (candidate v2; champion v1)"
    )


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["model", "manifest"])
def test_a_damaged_champion_does_not_block_a_retrain(setup, damage):
    from forecasting.publishing.registry import load_version

    settings, engine = setup(**GOOD)
    steps.train_step(settings, "tiny", "r1", mode="retrain")
    folder = list_versions(engine, "tiny").set_index("version").loc[1, "artifact_path"]
    if damage == "model":
        data = bytearray(open(f"{folder}/model.keras", "rb").read())
        data[len(data) // 2] ^= 0xFF
        open(f"{folder}/model.keras", "wb").write(bytes(data))
        expected = "does not match the registered"
    else:
        with open(f"{folder}/manifest.json", "a") as handle:
            handle.write("}{ truncated")
        expected = f"{folder}/manifest.json: not a readable manifest .*the artifact is damaged"
    with pytest.raises(RunError, match=expected):
        load_version(engine, "tiny")
    # Forecasting and fine-tuning need the champion's network and refuse; a retrain does not.
    with pytest.raises(RunError, match=expected):
        steps.forecast_step(settings, "tiny", "f1")
    with pytest.raises(RunError, match=expected):
        steps.train_step(settings, "tiny", "r2", mode="fine-tune")
    retrained = steps.train_step(settings, "tiny", "r3", mode="retrain")
    assert "champion v1 could not be loaded" in retrained.decision
    assert "gated against seasonal naive only" in retrained.decision
    assert retrained.promoted == (retrained.holdout["holdout_score"] < retrained.holdout["baseline_score"])
    assert retrained.holdout.get("champion_score") is None
    if retrained.promoted:
        assert steps.forecast_step(settings, "tiny", "f2").version == retrained.version
