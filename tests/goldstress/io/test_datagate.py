"""The data gate's checks on synthetic frames and files in the real layouts (no data folder needed),
and the curated history and rollback through ``python -m goldstress data``."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from goldstress.io import datagate as g
from goldstress.io import validation as v
from tests.goldstress.io.http_fixtures import make_settings

OZ = 31.1034768


def gold(n: int = 500, start: str = "2010-01-04", seed: int = 1) -> pd.DataFrame:
    """A curated gold frame on business days: random walk around 1200 USD/oz."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range(start, periods=n, tz="UTC")
    p = np.round(1200 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 2)
    return pd.DataFrame({"date": days, "usd_per_oz": p, "usd_per_g": p / OZ, "source": "lbma_pm:gold.csv"})


@pytest.fixture
def settings(tmp_path):
    return make_settings(storage={"store_url": str(tmp_path / "store"), "report_url": str(tmp_path / "reports")})


def reject(fn, *args, check: str, **kw) -> str:
    with pytest.raises(g.DataRejected) as info:
        fn(*args, **kw)
    msg = str(info.value)
    assert info.value.check == check and "\n" not in msg and f"check {check}:" in msg, msg
    return msg


def test_same_or_longer_table_passes(settings):
    old = gold()
    g.check_against_last_good(old, old, "gold", "gold.csv", settings)
    g.check_against_last_good(gold(520), old, "gold", "gold.csv", settings)
    g.check_against_last_good(old, None, "gold", "gold.csv", settings)


@pytest.mark.parametrize(("factor", "cause"), [(1 / OZ, "1/31.1: USD per gram?"), (100.0, "cents read as dollars?")])
def test_level_jump_names_the_likely_unit(settings, factor, cause):
    old = gold()
    new = old.assign(usd_per_oz=old["usd_per_oz"] * factor)
    msg = reject(g.check_against_last_good, new, old, "gold", "gold.csv", settings, check="level_vs_last_good")
    assert "gold.csv" in msg and cause in msg


def test_shift_by_one_day_is_named(settings):
    old = gold()
    new = old.assign(date=old["date"] + pd.Timedelta(days=1))
    msg = reject(g.check_against_last_good, new, old, "gold", "gold.csv", settings, check="date_shift")
    assert "+1 day" in msg


def test_shrink_rejected_unless_allowed(tmp_path):
    old = gold()
    s = make_settings(storage={"store_url": str(tmp_path)})
    reject(g.check_against_last_good, old.head(1), old, "gold", "gold.csv", s, check="shrink")
    reject(g.check_against_last_good, old.iloc[1:-1], old, "gold", "gold.csv", s, check="shrink")
    allowed = make_settings(storage={"store_url": str(tmp_path)}, gate_allow_shrink=True)
    g.check_against_last_good(old.head(1), old, "gold", "gold.csv", allowed)


def test_calendar_future_and_weekend(settings):
    frame = gold(10, start="2026-11-30")
    reject(g.check_calendar, frame, "gold.csv", settings, today="2026-12-05", check="future_date")
    g.check_calendar(frame, "gold.csv", settings, today="2026-12-11")
    sat = pd.concat([frame, frame.tail(1).assign(date=pd.Timestamp("2026-12-19", tz="UTC"))], ignore_index=True)
    msg = reject(g.check_calendar, sat, "gold.csv", settings, today="2027-01-01", check="weekend_row")
    assert "row 10 dated 2026-12-19 (Saturday)" in msg
    g.check_calendar(sat.assign(source="broker:xau.csv"), "xau.csv", settings, today="2027-01-01")


def test_ohlc_bar_low_above_high_and_zero_low():
    text = "date,open_usd,high_usd,low_usd,close_usd\n2022-01-01,10,11,9,10.5\n2022-01-02,10,9,11,10\n"
    msg = reject(g.check_ohlc, text.encode(), "paxg.csv", check="ohlc")
    assert "paxg.csv" in msg and "row 2 (2022-01-02)" in msg
    reject(g.check_ohlc, b"date,open,high,low,close,tick_volume\n2020-01-01,1,2,0,1,5\n", "x.csv", check="ohlc")
    g.check_ohlc(b"date,usd_pm\n2020-01-01,1500\n", "gold.csv")


def test_size_limit_is_a_setting(tmp_path):
    s = make_settings(storage={"store_url": str(tmp_path)}, max_file_bytes=1000)
    msg = reject(g.check_size, 2000, "big.csv", s, check="size")
    assert "2,000 bytes" in msg and "1,000 bytes" in msg
    g.check_size(1000, "ok.csv", s)


def test_gate_rejection_keeps_curated_and_writes_a_report(settings):
    old = gold()
    v.gate(old, "gold", "gold", settings)
    before = v.load_curated("gold", settings)
    bad = old.assign(usd_per_oz=old["usd_per_oz"] / OZ, usd_per_g=old["usd_per_g"] / OZ)
    with pytest.raises(g.DataRejected) as info:
        v.gate(bad, "gold", "gold", settings, origin="gold.csv")
    assert info.value.url and info.value.url.endswith("report.md")
    pd.testing.assert_frame_equal(v.load_curated("gold", settings), before)
    assert len(v.curated_history("gold", settings)) == 1


def test_history_and_rollback_through_the_cli(settings, monkeypatch, capsys):
    from flows.cli import main
    from goldstress.settings import get_settings

    first, second = gold(), gold(510)
    v.promote(first, "gold", settings)
    time.sleep(1.1)  # versions are stamped to the second
    v.promote(second, "gold", settings)
    monkeypatch.setenv("GOLDSTRESS_STORE_URL", settings.storage.store_url)
    get_settings.cache_clear()
    try:
        assert main(["data", "history", "gold"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 2 and lines[1].startswith("* gold ") and lines[0].startswith("  gold ")
        assert main(["data", "history"]) == 0
        assert capsys.readouterr().out.splitlines() == lines

        assert main(["data", "rollback", "gold"]) == 0
        assert lines[0].split()[1] in capsys.readouterr().out
        assert len(v.load_curated("gold", settings)) == len(first)
        assert main(["data", "rollback", "gold"]) == 1  # nothing older
        assert "no version older" in capsys.readouterr().err

        newest = lines[1].split()[2]
        assert main(["data", "rollback", "gold", newest]) == 0
        assert len(v.load_curated("gold", settings)) == len(second)
        assert main(["data", "rollback", "gold", "nope"]) == 1
        assert "has no version 'nope'" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()


def test_online_body_is_read_in_chunks_up_to_the_limit():
    import gzip

    import httpx

    from goldstress.io.sources import _send_bounded

    body = b'[{"d": "2020-01-02", "v": [1500.0]}]' * 100

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=gzip.compress(body))

    client = httpx.Client(transport=httpx.MockTransport(handler))
    req = client.build_request("GET", "http://example.test/gold_pm.json")
    assert _send_bounded(client, req, make_settings()).content == body
    msg = reject(_send_bounded, client, req, make_settings(max_file_bytes=100), check="size")
    assert "gold_pm.json" in msg and "3,600 bytes" in msg


@pytest.mark.parametrize("where", ["local", "s3"])
def test_quarantine_and_rollback_on_each_store(where, local_settings, request):
    from goldstress.io.snapshots import list_snapshots, quarantine_snapshot, write_snapshot

    s = local_settings if where == "local" else request.getfixturevalue("s3_settings")
    ref = write_snapshot(
        b"date,usd_pm\n", source="file:gold.csv", origin="gold.csv", dataset="gold", layout="lbma_pm", settings=s
    )
    assert list_snapshots("file:gold.csv", s) == [ref]
    url = quarantine_snapshot(ref, s)
    assert list_snapshots("file:gold.csv", s) == []
    assert "/quarantine/" in url and url.endswith(ref.url.rsplit("/", 1)[-1])

    v.promote(gold(), "gold", s)
    time.sleep(1.1)
    v.promote(gold(510), "gold", s)
    first, second = v.curated_history("gold", s)
    assert second.current and not first.current
    assert v.rollback("gold", s).version == first.version
    assert len(v.load_curated("gold", s)) == 500
    assert v.curated_datasets(s) == ["gold"]


def test_allow_shrink_flag_reaches_the_settings(tmp_path, monkeypatch):
    import flows.cli
    from goldstress.settings import RunOptions, get_settings

    # main() writes these two into os.environ: set them here so they are restored after the test
    monkeypatch.setenv("GOLDSTRESS_GATE_ALLOW_SHRINK", "false")
    monkeypatch.setenv("GOLDSTRESS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GOLDSTRESS_STORE_URL", str(tmp_path / "store"))
    seen = []
    monkeypatch.setattr(flows.cli, "_run_stage", lambda *a: seen.append(RunOptions().settings().data.gate_allow_shrink))
    get_settings.cache_clear()
    try:
        assert flows.cli.main(["run", "--stage", "validate", "--data-dir", str(tmp_path), "--allow-shrink"]) == 0
    finally:
        get_settings.cache_clear()
    assert seen == [True]
