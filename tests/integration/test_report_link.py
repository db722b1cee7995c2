"""Issue 27, point 4: the report reachable where the storage is S3 (moto's server): the run's
artifact links a presigned URL that downloads it over plain HTTP, and `report.local_copy` gets a copy."""

import time
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest

from forecasting import steps
from forecasting.config.report_settings import ReportConfig
from forecasting.config.settings import StorageConfig, parse_settings
from forecasting.errors import ConfigError


@pytest.fixture
def on_s3(scenario, s3_root, tmp_path):  # noqa: F811
    settings, engine, *_ = scenario
    return settings.model_copy(
        update={"storage": StorageConfig(root=s3_root), "report": ReportConfig(link_expiry_hours=2, local_copy=str(tmp_path / "share"))}
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_presigned_link_downloads_the_report_and_the_local_copy_is_written(on_s3, tmp_path):
    path = steps.report_step(on_s3, "tiny")
    assert path.startswith("s3://") and path.endswith("reports/tiny/latest.html")
    link = steps.report_link(on_s3, path)
    query = parse_qs(urlsplit(link).query)
    lifetime = int(query["X-Amz-Expires"][0]) if "X-Amz-Expires" in query else int(query["Expires"][0]) - time.time()  # SigV4 or SigV2
    assert link.startswith("http://127.0.0.1:") and abs(lifetime - 7200) < 60
    with urllib.request.urlopen(link, timeout=10) as response:  # noqa: S310 - the local S3 server
        html = response.read().decode()
    assert "<html" in html and "tiny" in html
    assert (tmp_path / "share" / "tiny.html").read_text() == html
    markdown = steps.live_markdown({"model": "tiny", "accuracy": {"report": path, "live": None}}, link)
    assert f"[open the report]({link})" in markdown
    assert steps.report_link(on_s3, "not written (ValueError: no)") is None


def test_local_copy_and_link_lifetime_are_checked_and_relative_to_the_config(tmp_path):
    settings = parse_settings({"report": {"local_copy": "share"}}, base=tmp_path)
    assert settings.report.local_copy == str(tmp_path / "share") and settings.report.link_expiry_hours == 72
    with pytest.raises(ConfigError, match=r"report.link_expiry_hours: .*less than or equal to 168"):
        parse_settings({"report": {"link_expiry_hours": 200}})
    with pytest.raises(ConfigError, match="report.local_copy: must be a local folder"):
        parse_settings({"report": {"local_copy": "s3://bucket/x"}})
