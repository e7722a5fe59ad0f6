"""Connector tests against a local HTTP server serving the real wire formats.

Expected values come from the inputs built here (round trips), from the retry policy's closed
form (waits ``b, 2b, 4b, ...`` for backoff ``b``; ``Retry-After`` replaces it), and from the
request counts the server records.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from goldstress.io.layouts import parse_coingecko_market_chart, parse_lbma_json
from goldstress.io.sources import (
    OFFLINE_HINT,
    SourceUnavailable,
    _retry_after_s,
    fetch_coingecko_market_chart,
    fetch_lbma,
    probe_online,
    read_data_file,
)
from tests.goldstress.io.http_fixtures import (
    coingecko_market_chart_bytes,
    fail_status,
    free_port,
    lbma_json_bytes,
    make_settings,
    stall,
)

LBMA_PATH = "/json/gold_pm.json"
LBMA_RECORDS = [
    ("2024-12-23", 2614.6, 2086.03, 2508.36),
    ("2024-12-24", None, None, None),  # Christmas Eve half day: no PM fix
    ("2024-12-27", 2627.0, 2095.98, 2515.24),
    ("2024-12-30", 2607.2, 2082.19, 2499.22),
]


def _assert_one_line_error(exc: SourceUnavailable, url: str) -> None:
    msg = str(exc)
    assert "\n" not in msg
    assert url in msg
    assert msg.endswith(OFFLINE_HINT)
    assert "DATA=<dir>" in msg and "GOLDSTRESS_DATA_DIR=<dir>" in msg


# -- round trips ------------------------------------------------------------------------------
def test_fetch_lbma_round_trip(http_source, sleeps):
    body = lbma_json_bytes(LBMA_RECORDS)
    url = http_source.add(LBMA_PATH, body)
    got = fetch_lbma(url, make_settings())
    assert got == body  # bytes exactly as served
    assert http_source.count(LBMA_PATH) == 1 and sleeps == []

    frame = parse_lbma_json(got, origin_name=url).frame
    expected = [(d, usd) for d, usd, _, _ in LBMA_RECORDS if usd is not None]
    assert [d.strftime("%Y-%m-%d") for d in frame["date"]] == [d for d, _ in expected]
    np.testing.assert_array_equal(frame["usd_per_oz"].to_numpy(), [u for _, u in expected])
    np.testing.assert_allclose(frame["usd_per_g"], [u / 31.1034768 for _, u in expected], rtol=1e-15)
    assert set(frame["source"]) == {f"lbma_pm:{url}"}


def test_fetch_coingecko_round_trip_sends_key_and_params(http_source, sleeps):
    day0 = datetime(2025, 3, 1, tzinfo=UTC)
    points = [(day0 + timedelta(days=i), 2850.0 + i) for i in range(3)]
    points.append((day0 + timedelta(days=3, hours=13, minutes=47), 2899.5))  # live intraday point
    body = coingecko_market_chart_bytes(points)
    http_source.add("/api/v3/coins/pax-gold/market_chart", body)
    settings = make_settings(coingecko_url=http_source.url("/api/v3"), coingecko_api_key="demo-key-1")

    got = fetch_coingecko_market_chart("pax-gold", settings, days=365)
    assert got == body
    (req,) = http_source.requests_for("/api/v3/coins/pax-gold/market_chart")
    assert req.headers["x-cg-demo-api-key"] == "demo-key-1"
    assert req.query == {"vs_currency": ["usd"], "days": ["365"], "interval": ["daily"]}

    frame = parse_coingecko_market_chart(got, "PAXG").frame
    # 00:00 UTC snapshot of day D = close of day D-1; the intraday point is dropped
    assert [d.strftime("%Y-%m-%d") for d in frame["date"]] == ["2025-02-28", "2025-03-01", "2025-03-02"]
    np.testing.assert_array_equal(frame["close_usd"].to_numpy(), [2850.0, 2851.0, 2852.0])
    assert set(frame["token"]) == {"PAXG"}


def test_coingecko_without_key_sends_no_key_header(http_source, sleeps):
    http_source.add("/api/v3/coins/tether-gold/market_chart", coingecko_market_chart_bytes([]))
    settings = make_settings(coingecko_url=http_source.url("/api/v3"))
    fetch_coingecko_market_chart("tether-gold", settings)
    (req,) = http_source.requests_for("/api/v3/coins/tether-gold/market_chart")
    assert "x-cg-demo-api-key" not in req.headers
    assert req.query["days"] == ["max"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"coin_id": "Pax Gold"}, "coin_id"),
        ({"coin_id": "pax-gold", "days": 0}, "days"),
        ({"coin_id": "pax-gold", "vs": "US$"}, "vs"),
    ],
)
def test_coingecko_bad_arguments_name_the_argument(kwargs, field):
    with pytest.raises(ValueError, match=field):
        fetch_coingecko_market_chart(settings=make_settings(), **kwargs)


# -- retries ----------------------------------------------------------------------------------
def test_retries_on_503_then_succeeds_with_exponential_backoff(http_source, sleeps):
    body = lbma_json_bytes(LBMA_RECORDS)
    url = http_source.add(LBMA_PATH, body, fail=[fail_status(503), fail_status(502)])
    got = fetch_lbma(url, make_settings(http_retries=3, http_backoff_s=0.5))
    assert got == body
    assert http_source.count(LBMA_PATH) == 3
    assert sleeps == [0.5, 1.0]  # b * 2**k


def test_retry_after_is_honoured_on_429(http_source, sleeps):
    url = http_source.add(
        LBMA_PATH,
        lbma_json_bytes(LBMA_RECORDS),
        fail=[fail_status(429, retry_after="7"), fail_status(429, retry_after="3")],
    )
    fetch_lbma(url, make_settings(http_backoff_s=0.5))
    assert http_source.count(LBMA_PATH) == 3
    assert sleeps == [7.0, 3.0]  # the server's waits, not the backoff


def test_retry_after_beyond_limit_stops_at_once(http_source, sleeps):
    url = http_source.add(LBMA_PATH, b"[]", fail=[fail_status(429, retry_after="3600")])
    with pytest.raises(SourceUnavailable, match="3600") as info:
        fetch_lbma(url, make_settings())
    assert http_source.count(LBMA_PATH) == 1 and sleeps == []
    assert info.value.status_code == 429
    _assert_one_line_error(info.value, url)


def test_retry_after_http_date_parsed_against_now():
    now = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
    assert _retry_after_s("Mon, 05 Jan 2026 12:00:42 GMT", now=now) == 42.0
    assert _retry_after_s("Mon, 05 Jan 2026 11:00:00 GMT", now=now) == 0.0  # in the past
    assert _retry_after_s("12", now=now) == 12.0
    assert _retry_after_s("soon", now=now) is None and _retry_after_s(None) is None


def test_retries_after_timeouts_then_succeeds(http_source, sleeps):
    body = lbma_json_bytes(LBMA_RECORDS)
    # a stall well beyond the timeout, and a timeout a loaded 2-core CI machine still meets for
    # the third, immediate answer (0.2 s was flaky there)
    url = http_source.add(LBMA_PATH, body, fail=[stall(8.0), stall(8.0)])
    got = fetch_lbma(url, make_settings(http_timeout_s=1.5, http_retries=2))
    assert got == body
    assert http_source.count(LBMA_PATH) == 3
    assert len(sleeps) == 2


def test_gives_up_after_retries_naming_the_url(http_source, sleeps):
    url = http_source.add(LBMA_PATH, b"[]", fail=[fail_status(503)] * 10)
    with pytest.raises(SourceUnavailable) as info:
        fetch_lbma(url, make_settings(http_retries=3, http_backoff_s=0.25))
    assert http_source.count(LBMA_PATH) == 4  # 1 + http_retries
    assert sleeps == [0.25, 0.5, 1.0]
    err = info.value
    assert err.attempts == 4 and err.status_code == 503
    assert "gave up after 4 attempts" in str(err) and "HTTP 503" in str(err)
    _assert_one_line_error(err, url)


def test_404_is_not_retried(http_source, sleeps):
    url = http_source.url("/json/missing.json")  # no route -> 404
    with pytest.raises(SourceUnavailable, match="HTTP 404") as info:
        fetch_lbma(url, make_settings(http_retries=5))
    assert http_source.count("/json/missing.json") == 1 and sleeps == []
    assert info.value.status_code == 404
    _assert_one_line_error(info.value, url)


def test_timeout_setting_is_honoured(http_source, sleeps):
    body = lbma_json_bytes(LBMA_RECORDS)
    url = http_source.add(LBMA_PATH, body, delay_s=0.6)
    with pytest.raises(SourceUnavailable, match="timed out after 0.1 s") as info:
        fetch_lbma(url, make_settings(http_timeout_s=0.1, http_retries=0))
    _assert_one_line_error(info.value, url)
    # the same slow answer arrives when the timeout allows it
    assert fetch_lbma(url, make_settings(http_timeout_s=5.0, http_retries=0)) == body


def test_html_page_with_200_is_not_accepted_as_data(http_source, sleeps):
    url = http_source.add(LBMA_PATH, b"<!DOCTYPE html><title>Just a moment...</title>", content_type="text/html")
    with pytest.raises(SourceUnavailable, match="not the expected JSON") as info:
        fetch_lbma(url, make_settings())
    _assert_one_line_error(info.value, url)


def test_connection_refused_is_retried_then_reported(sleeps):
    url = f"http://127.0.0.1:{free_port()}/json/gold_pm.json"
    with pytest.raises(SourceUnavailable, match="ConnectError") as info:
        fetch_lbma(url, make_settings(http_retries=2, http_backoff_s=0.1))
    assert info.value.attempts == 3 and sleeps == [0.1, 0.2]
    _assert_one_line_error(info.value, url)


# -- probe ------------------------------------------------------------------------------------
def test_probe_online_fails_fast_on_closed_port(sleeps):
    url = f"http://127.0.0.1:{free_port()}/json/gold_pm.json"
    settings = make_settings(lbma_pm_url=url, http_retries=5)
    with pytest.raises(SourceUnavailable) as info:
        probe_online(settings)
    assert sleeps == []  # no retry, no backoff
    _assert_one_line_error(info.value, url)


def test_probe_online_passes_when_both_hosts_answer(http_source, sleeps):
    http_source.add(LBMA_PATH, lbma_json_bytes(LBMA_RECORDS))
    http_source.add("/api/v3/ping", json.dumps({"gecko_says": "(V3) To the Moon!"}).encode())
    settings = make_settings(lbma_pm_url=http_source.url(LBMA_PATH), coingecko_url=http_source.url("/api/v3"))
    probe_online(settings)
    assert [(r.method, r.path) for r in http_source.requests] == [("HEAD", LBMA_PATH), ("GET", "/api/v3/ping")]


def test_probe_online_reports_5xx(http_source, sleeps):
    url = http_source.add(LBMA_PATH, b"[]", fail=[fail_status(503)])
    with pytest.raises(SourceUnavailable, match="HTTP 503"):
        probe_online(make_settings(lbma_pm_url=url))
    assert http_source.count(LBMA_PATH) == 1


# -- file importer ----------------------------------------------------------------------------
def test_read_data_file_returns_bytes_unchanged(tmp_path):
    path = tmp_path / "gold.csv"
    content = b"date,usd_pm\n2024-01-02,2064.4\n"
    path.write_bytes(content)
    assert read_data_file(path) == content
    assert read_data_file(str(path)) == content


def test_read_data_file_missing_names_path_and_neighbours(tmp_path):
    (tmp_path / "paxg_usd_daily_2022_2026.csv").write_text("x")
    missing = tmp_path / "gold_lbma_usd_daily_1968_2026_merged.csv"
    with pytest.raises(FileNotFoundError) as info:
        read_data_file(missing)
    msg = str(info.value)
    assert str(missing) in msg and "paxg_usd_daily_2022_2026.csv" in msg


def test_read_data_file_rejects_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        read_data_file(tmp_path)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/gold_pm.json", "prices.lbma.org.uk/json/gold_pm.json"])
def test_invalid_url_is_reported_without_retry(url, sleeps):
    with pytest.raises(SourceUnavailable, match="invalid URL") as info:
        fetch_lbma(url, make_settings(http_retries=3))
    assert sleeps == [] and "\n" not in str(info.value)
