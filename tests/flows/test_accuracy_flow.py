"""Scoring as actuals arrive, through the real flow on real M3 monthly series: train on histories cut short,
receive one month at a time, run `forecast` after each; scored rows match errors computed by hand, nothing is
scored twice, a revised actual re-scores exactly its rows."""

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from flows.forecast_pipeline import forecast_pipeline
from forecasting.sources.database import create_db_engine
from forecasting.sources.datasets import m3_monthly
from forecasting.sources.loading import load_observations
from forecasting.sources.schema import migrate
from tests.support.scoring import by_hand

pytestmark = pytest.mark.usefixtures("prefect_server")
CUT = pd.Timestamp("2025-06-01")  # six months before the end of M3's training parts


def table(engine, name):
    with engine.connect() as connection:
        frame = pd.read_sql(sa.text(f"SELECT * FROM {name}"), connection)
    for column in ("forecast_origin", "target_ts"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def live_artifact(engine, run_id):
    """The markdown of the run's `tiny-live-accuracy` Prefect artifact."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with engine.connect() as connection:
        flow_run = connection.execute(sa.text("SELECT flow_run_id FROM runs WHERE run_id = :r"), {"r": run_id}).scalar()
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["tiny-live-accuracy"]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run]))
        )
    assert len(found) == 1
    return found[0].data


def test_forecasts_are_scored_month_by_month_as_real_actuals_arrive(database_url, settings_for):
    settings, path = settings_for(database_url)
    engine = create_db_engine(settings.database.url)
    migrate(engine)
    full = m3_monthly(12)
    load_observations(engine, settings.source, full[full.ts <= CUT])
    first = forecast_pipeline(model="tiny", mode="retrain", config=str(path))
    series = first["series_forecast"]
    assert first["accuracy"]["scoring"]["total"] == 0 and first["accuracy"]["live"] is None

    for months, month in enumerate(pd.date_range("2025-07-01", periods=3, freq="MS"), start=1):
        load_observations(engine, settings.source, full[full.ts == month])
        summary = forecast_pipeline(model="tiny", mode="forecast", config=str(path))
        scoring = summary["accuracy"]["scoring"]
        # Each month's actual scores one step of every earlier origin, once.
        assert (scoring["scored"], scoring["rescored"]) == (months * series, 0)
        assert scoring["total"] == series * months * (months + 1) // 2
        live = summary["accuracy"]["live"]
        assert live["version"] == 1 and live["rows"] == scoring["total"] and live["naive_smape"] > 0
        report = summary["accuracy"]["report"]
        assert report == str(settings.storage_root / "reports" / "tiny" / "latest.html") and "Live accuracy by forecast step" in open(report).read()

    assert "| sMAPE |" in live_artifact(engine, summary["run_id"]) and "latest.html" in live_artifact(engine, summary["run_id"])

    errors = table(engine, "forecast_errors").sort_values(["series_id", "forecast_origin", "target_ts"], ignore_index=True)
    assert not errors.duplicated(["series_id", "forecast_origin", "target_ts"]).any()
    forecasts = table(engine, "forecasts")
    received = full[full.ts <= pd.Timestamp("2025-09-01")]
    for origin, rows in errors.groupby("forecast_origin"):
        expected = by_hand(received, forecasts[forecasts.forecast_origin == origin])
        rows = rows.sort_values(["series_id", "target_ts"], ignore_index=True)
        for column in ("actual", "abs_error", "smape_term", "scale", "scaled_error", "naive_yhat", "naive_scaled_error", "inside_80", "inside_95"):
            np.testing.assert_allclose(rows[column].astype(float), expected[column].astype(float), rtol=1e-9, err_msg=column)

    revised_series = errors.series_id.iloc[0]
    revised = received[(received.series_id == revised_series) & (received.ts == pd.Timestamp("2025-08-01"))]
    load_observations(engine, settings.source, revised.assign(value=revised.value * 1.5))
    summary = forecast_pipeline(model="tiny", mode="forecast", config=str(path))
    scoring = summary["accuracy"]["scoring"]
    assert {key: scoring[key] for key in ("scored", "rescored", "removed", "total")} == {"scored": 0, "rescored": 2, "removed": 0, "total": errors.shape[0]}
    assert scoring["anomalies"] == len(scoring["anomaly_examples"]) <= 1  # the revised actual, judged on its newest row
    after = table(engine, "forecast_errors")
    changed = after[after.run_id == summary["run_id"]]
    assert set(changed.series_id) == {revised_series} and set(changed.target_ts) == {pd.Timestamp("2025-08-01")}
    assert len(changed) == 2  # the origins 2025-06 (step 2) and 2025-07 (step 1)
