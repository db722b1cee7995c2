"""`forecasting report`: a self-contained HTML file whose charts are real images; clear errors for what does not exist."""

import base64
import io
import re

import pytest
from PIL import Image

from forecasting.database import create_db_engine
from forecasting.errors import ConfigError
from forecasting.loading import load_observations
from forecasting.registry import set_alias
from forecasting.report import build_report, run_report
from forecasting.schema import migrate
from forecasting.steps.accuracy import score_forecasts
from tests.conftest import pull
from tests.integration.test_accuracy import scenario  # noqa: F401  (the fixture)


def images(html):
    """Every embedded image, decoded."""
    found = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    return [Image.open(io.BytesIO(base64.b64decode(data))) for data in found]


def assert_self_contained(html):
    assert "http://" not in html and "https://" not in html and "<script" not in html


def test_report_before_any_actual_says_so_and_charts_the_series(scenario):
    settings, engine, full, months, forecasts = scenario
    report = build_report(engine, settings, "tiny")
    assert "has met its actual yet" in report.html and "Live accuracy by forecast step" not in report.html
    assert report.charts == 3 == len(images(report.html))  # the three series, no empty accuracy charts
    assert_self_contained(report.html)


def test_report_with_actuals_has_accuracy_and_series_charts_as_real_images(scenario):
    settings, engine, full, months, forecasts = scenario
    load_observations(engine, settings.source, full[months <= 32])
    pull(settings)
    score_forecasts(engine, settings, "tiny", "r1")
    with engine.begin() as connection:
        set_alias(connection, "tiny", "champion", 1)
    report = build_report(engine, settings, "tiny", top=2, series=["S00"])
    decoded = images(report.html)
    assert report.charts == len(decoded) == 2 + len(report.series)
    assert "S00" in report.series and 2 <= len(report.series) <= 3
    for image in decoded:
        image.load()
        assert image.size[0] >= 800 and image.size[1] >= 250
    assert "seasonal naive" in report.html and "80% interval coverage" in report.html
    assert_self_contained(report.html)

    latest = run_report(engine, settings, "tiny")
    assert latest.endswith("reports/tiny/latest.html")
    folder = settings.storage_root / "reports" / "tiny"
    assert len(list(folder.glob("*.html"))) == 2 and not list(folder.glob(".*tmp"))


def test_report_refuses_unknown_series_and_models_without_forecasts(scenario, tmp_path, database_url):
    settings, engine, full, months, forecasts = scenario
    with pytest.raises(ConfigError, match="--series: 'NOPE' has no forecasts of this model"):
        build_report(engine, settings, "tiny", series=["NOPE"])
    with pytest.raises(ConfigError, match="models.other"):
        build_report(engine, settings, "other")
    empty = create_db_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    migrate(empty)
    with pytest.raises(ConfigError, match="model 'tiny' has no forecasts yet in table forecasts"):
        build_report(empty, settings, "tiny")
