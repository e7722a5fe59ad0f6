"""Where the Prefect artifact of a run points: the service's report page when its public URL is
set, an http(s) storage URL as a link, anything else (a local path, ``s3://``) as text, since the
Prefect UI would turn it into a link to itself that answers 404."""

from __future__ import annotations

import pytest

from goldstress.settings import settings_with
from tasks.report import report_link

RUN = "20260101T000000Z-abcdef"


@pytest.mark.parametrize(
    ("public_url", "report_html", "expected"),
    [
        (None, f"/srv/reports/{RUN}/report.html", f"`/srv/reports/{RUN}/report.html`"),
        (None, f"s3://bucket/reports/{RUN}/report.html", f"`s3://bucket/reports/{RUN}/report.html`"),
        (
            None,
            f"https://files.example.org/{RUN}/report.html",
            f"[report.html](https://files.example.org/{RUN}/report.html)",
        ),
        (
            "https://goldstress.example.org/",
            f"/srv/reports/{RUN}/report.html",
            f"[report.html](https://goldstress.example.org/api/runs/{RUN}/report.html)",
        ),
    ],
)
def test_report_link(public_url, report_html, expected):
    settings = settings_with(service={"public_url": public_url})
    assert report_link({"run_id": RUN, "report_html": report_html}, settings) == expected


def test_public_url_must_be_http():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="public_url"):
        settings_with(service={"public_url": "goldstress.example.org"})
