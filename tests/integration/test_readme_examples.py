"""The docs' reading examples, run exactly as printed: Parquet with pandas and DuckDB (docs/outputs.md), the accuracy
views in SQL (docs/accuracy.md)."""

import contextlib
import io
import re
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting.sources.database import create_db_engine
from forecasting.sources.upserts import upsert_frame
from forecasting.sources.loading import load_observations
from forecasting.sources.schema import migrate
from forecasting.steps.scoring import score_forecasts
from forecasting.publishing.forecast_dataset import write_forecasts
from forecasting.sources.tables import FORECAST_KEY
from tests.support.data import pull, synthetic_frame
from tests.support.scoring import forecast_frame

ROOT = Path(__file__).resolve().parents[2]
# The pages holding the marked examples (they were in README.md before the docs site).
PAGES = [ROOT / "README.md", ROOT / "docs" / "outputs.md", ROOT / "docs" / "accuracy.md"]


def examples(language):
    """The code blocks the pages mark `<!-- tested example: language -->`, as printed, in page order."""
    found = []
    for page in PAGES:
        found += re.findall(rf"<!-- tested example: {language} -->\n```{language}\n(.*?)```", page.read_text(), flags=re.S)
    return found


@pytest.fixture
def demo_outputs(database_url, settings_for, tmp_path, monkeypatch):
    """What `make demo` and two months of `--advance` leave: forecasts of model `monthly` from two origins, in SQL and
    Parquet under `.forecasting/`, some of them scored."""
    settings, _ = settings_for(database_url)
    engine = create_db_engine(database_url)
    migrate(engine)
    full = synthetic_frame(n_series=4, length=40, seed=5, start="2023-07-01")  # origins 2025-12 and 2026-01, as in the demo
    months = full.groupby("series_id").cumcount()
    load_observations(engine, settings.source, full[months <= 31])
    pull(settings)
    forecasts = pd.concat([forecast_frame(full, 29), forecast_frame(full, 30)], ignore_index=True).assign(model_name="monthly")
    with engine.begin() as connection:
        upsert_frame(connection, sa.Table("forecasts", sa.MetaData(), autoload_with=connection), forecasts, key=FORECAST_KEY)
    score_forecasts(engine, settings, "monthly", "r1")
    write_forecasts(tmp_path / ".forecasting", forecasts)
    monkeypatch.chdir(tmp_path)
    return engine, forecasts


def test_the_docs_mark_their_reading_examples():
    assert len(examples("python")) == 2 and len(examples("sql")) == 4


def test_parquet_examples_run_as_printed(demo_outputs):
    engine, forecasts = demo_outputs
    for code in examples("python"):
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(code, "docs/outputs.md", "exec"), {})
        printed = output.getvalue()
        # Both origins, each with its four series.
        assert "2025-12-01" in printed and "2026-01-01" in printed, printed
        assert "4" in printed


def test_accuracy_view_queries_run_as_printed(demo_outputs):
    engine, forecasts = demo_outputs
    with engine.connect() as connection:
        results = [pd.read_sql(sa.text(code.strip().rstrip(";")), connection) for code in examples("sql")]
    by_version, by_period, worst, anomalies = results
    assert list(by_version.model_version) == [1] and by_version.scored.iloc[0] == 4 * 2 + 4 * 1
    assert by_version.naive_mase.iloc[0] > 0 and 0 <= by_version.coverage_80.iloc[0] <= 100
    assert len(by_period) == 2 and list(by_period.scored) == [4, 8]
    assert len(worst) == 10 and worst.scaled_error.is_monotonic_decreasing
    assert list(anomalies.columns[:8]) == ["series_id", "target_ts", "actual", "yhat", "lower_95", "upper_95", "interval_distance", "direction"]
    outside = (anomalies.actual > anomalies.upper_95) | (anomalies.actual < anomalies.lower_95)
    assert outside.all() and len(anomalies) <= 20
