"""Validation layer (tasks/validation.py + expectations/*.json) on synthetic frames.

Frames are built here directly from the data contract (raw view: row/date/price strings;
curated gold/token schemas), never through tasks/standardise.py. Every failing case asserts
that the report names the failed expectation AND the offending row(s) (row, date, value), and
that a previously promoted good curated table is byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from goldstress.io import validation as v
from goldstress.settings import PROJECT_ROOT, Settings
from models.units import TROY_OUNCE_G

OZ = TROY_OUNCE_G


# ----------------------------------------------------------------------------------------------
# frame builders (data contract)
# ----------------------------------------------------------------------------------------------
def gold_frame(n: int = 300, seed: int = 7, start: str = "2001-01-01") -> pd.DataFrame:
    """Curated gold: business days, a seeded 1 %-vol log random walk (max |r| << 0.2)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=n, tz="UTC")
    p = 300.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    return pd.DataFrame({"date": dates, "usd_per_oz": p, "usd_per_g": p / OZ, "source": "lbma_pm:synthetic"})


def token_frame(start: str, end: str, symbol: str = "PAXG", seed: int = 11) -> pd.DataFrame:
    """Curated token: every calendar day start..end, seeded 1 %-vol walk."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, end, freq="D", tz="UTC")
    p = 1800.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, len(dates))))
    return pd.DataFrame({"date": dates, "token": symbol, "close_usd": p, "source": "file:synthetic.csv"})


def raw_view(dates: list[str], prices: list[str], first_row: int = 1) -> pd.DataFrame:
    """Raw view as the contract defines it: row (1-based data row), date, price strings."""
    return pd.DataFrame(
        {
            "row": np.arange(first_row, first_row + len(dates)),
            "date": pd.Series(dates, dtype=str),
            "price": pd.Series(prices, dtype=str),
        }
    )


def empty_raw_view(problem: str | None = None) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "row": pd.Series([], dtype="int64"),
            "date": pd.Series([], dtype=str),
            "price": pd.Series([], dtype=str),
        }
    )
    if problem:
        df.attrs["problem"] = problem
    return df


def failure(report: v.ValidationReport, expectation_type: str, column: str | None):
    """The failure for (type, column), or an assertion error listing what did fail."""
    hits = [f for f in report.failures if f.expectation_type == expectation_type and f.column == column]
    assert hits, f"{expectation_type}({column}) not among failures {report.failed_expectations()}"
    return hits[0]


# ----------------------------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(storage={"store_url": str(tmp_path / "store")})


@pytest.fixture
def good_store(settings: Settings):
    """A good gold table promoted through the gate; yields (settings, curated bytes, path)."""
    result = v.gate(gold_frame(), "gold", "gold", settings)
    path = Path(result.curated_url)
    return settings, path.read_bytes(), path


def assert_gate_rejects(df, suite, dataset, store, *, expect_type, expect_column, **kw):
    """gate() raises ValidationFailed naming the expectation, a row and the report URL, writes
    the report, and leaves the promoted curated table byte-identical (and history unchanged)."""
    settings, before, path = store
    history = sorted((path.parent / "history").rglob("*.parquet"))
    with pytest.raises(v.ValidationFailed) as info:
        v.gate(df, suite, dataset, settings, **kw)
    err = info.value
    assert expect_type in str(err) and f"({expect_column})" in str(err)
    assert err.url and err.url in str(err)
    md = Path(err.url)
    assert md.is_file() and (md.parent / "report.json").is_file()
    stored = json.loads((md.parent / "report.json").read_text())
    assert stored["success"] is False
    assert any(f["expectation_type"] == expect_type for f in stored["failures"])
    assert expect_type in md.read_text()
    assert path.read_bytes() == before
    assert sorted((path.parent / "history").rglob("*.parquet")) == history
    return err.report


# ----------------------------------------------------------------------------------------------
# passing cases
# ----------------------------------------------------------------------------------------------
def test_clean_synthetic_series_pass_and_gate_promotes(settings):
    gold = gold_frame()
    report = v.validate_frame(gold, "gold", dataset="gold")
    assert report.success, report.summary_line()
    assert report.failures == [] and report.n_rows == len(gold)
    assert report.summary_line().startswith("PASSED gold/gold")

    tok = token_frame("2023-01-01", "2023-12-31")
    assert v.validate_frame(tok, "token", dataset="token_paxg").success

    raw = raw_view(["2020-01-02", "2020-01-03", "2020-01-06"], ["1520.55", "1549.2", "1573"])
    assert v.validate_frame(raw, "raw_csv", dataset="gold").success

    result = v.gate(gold, "gold", "gold", settings)
    assert result["curated_url"] == result.curated_url  # key access, as the Prefect task uses
    curated = Path(result.curated_url)
    assert curated == Path(settings.storage.store_url) / "curated" / "gold.parquet"
    pd.testing.assert_frame_equal(v.load_curated("gold", settings), gold)
    # history copy: same bytes, named <timestamp>_<first 16 hex of sha256>.parquet
    (hist,) = (Path(settings.storage.store_url) / "curated" / "history" / "gold").glob("*.parquet")
    data = curated.read_bytes()
    assert hist.read_bytes() == data
    assert hist.stem.endswith("_" + hashlib.sha256(data).hexdigest()[:16])
    assert not list(curated.parent.glob(".*tmp*"))  # atomic write left no temp file
    assert json.loads((Path(result.report_url).parent / "report.json").read_text())["success"]


def test_blank_prices_within_limit_pass_raw_but_not_beyond():
    # 1 blank in 60 rows = 1.7 % <= 2 % (LBMA half days); 2 in 60 = 3.3 % fails the mostly.
    dates = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2020-11-02", periods=60)]
    prices = [f"{1800 + i}.5" for i in range(60)]
    prices[37] = ""
    assert v.validate_frame(raw_view(dates, prices), "raw_csv", dataset="gold").success
    prices[41] = ""
    rep = v.validate_frame(raw_view(dates, prices), "raw_csv", dataset="gold")
    f = failure(rep, "expect_column_values_to_not_match_regex", "price")
    assert f.unexpected_count == 2
    assert [(r.row, r.date, r.value) for r in f.rows] == [(38, dates[37], ""), (42, dates[41], "")]


def test_tz_aware_ns_dates_pass_but_naive_dates_fail():
    gold = gold_frame(50)
    ns = gold.assign(date=gold["date"].dt.as_unit("ns"))
    assert v.validate_frame(ns, "gold", dataset="gold").success
    naive = gold.assign(date=gold["date"].dt.tz_localize(None))
    rep = v.validate_frame(naive, "gold", dataset="gold")
    f = failure(rep, "expect_column_type_to_be", "date")
    assert "UTC" not in str(f.observed_value) and "datetime64" in str(f.observed_value)


# ----------------------------------------------------------------------------------------------
# failing cases (each: expectation + offending rows + curated table untouched)
# ----------------------------------------------------------------------------------------------
def test_duplicated_date(good_store):
    gold = gold_frame()
    dup = pd.concat([gold.iloc[:11], gold.iloc[10:11], gold.iloc[11:]], ignore_index=True)
    day = gold.loc[10, "date"].strftime("%Y-%m-%d")
    rep = assert_gate_rejects(
        dup,
        "gold",
        "gold",
        good_store,
        expect_type="expect_column_values_to_be_unique",
        expect_column="date",
    )
    uniq = failure(rep, "expect_column_values_to_be_unique", "date")
    assert [(r.row, r.date) for r in uniq.rows] == [(10, day), (11, day)]
    inc = failure(rep, "expect_column_values_to_be_increasing", "date")
    assert [(r.row, r.date) for r in inc.rows] == [(11, day)]


def test_negative_price(good_store):
    gold = gold_frame()
    gold.loc[40, "usd_per_oz"] = -gold.loc[40, "usd_per_oz"]
    gold["usd_per_g"] = gold["usd_per_oz"] / OZ
    rep = assert_gate_rejects(
        gold,
        "gold",
        "gold",
        good_store,
        expect_type="expect_column_values_to_be_between",
        expect_column="usd_per_oz",
    )
    f = failure(rep, "expect_column_values_to_be_between", "usd_per_oz")
    assert f.unexpected_count == 1
    (row,) = f.rows
    day = gold.loc[40, "date"].strftime("%Y-%m-%d")
    assert (row.row, row.date, row.value) == (40, day, gold.loc[40, "usd_per_oz"])
    assert row.value < 0


def test_usd_per_gram_values_mixed_into_ounce_series(good_store):
    gold = gold_frame()
    mixed = gold.copy()
    # rows 100..149 carry USD per gram in the USD-per-ounce column (usd_per_g derived from it,
    # as an importer would), so only the jump in and out of the block shows
    mixed.loc[100:149, "usd_per_oz"] = gold.loc[100:149, "usd_per_oz"] / OZ
    mixed["usd_per_g"] = mixed["usd_per_oz"] / OZ
    rep = assert_gate_rejects(
        mixed,
        "gold",
        "gold",
        good_store,
        expect_type="expect_column_values_to_be_between",
        expect_column="log_return",
    )
    f = failure(rep, "expect_column_values_to_be_between", "log_return")
    assert [r.row for r in f.rows] == [100, 150]
    p = mixed["usd_per_oz"].to_numpy()
    for r in f.rows:
        assert r.date == mixed.loc[r.row, "date"].strftime("%Y-%m-%d")
        assert r.value == pytest.approx(math.log(p[r.row] / p[r.row - 1]), rel=1e-12)
        assert abs(r.value) == pytest.approx(math.log(OZ), abs=0.1)  # +-3.44, far beyond 0.2
    assert rep.failed_expectations() == ["expect_column_values_to_be_between(log_return)"]


def test_usd_per_g_inconsistent_with_ounce_price():
    gold = gold_frame(80)
    gold.loc[30, "usd_per_g"] = gold.loc[30, "usd_per_oz"]  # per-ounce value in the gram column
    rep = v.validate_frame(gold, "gold", dataset="gold")
    f = failure(rep, "expect_column_values_to_be_between", "usd_per_g_rel_error")
    (row,) = f.rows
    assert row.row == 30 and row.value == pytest.approx(OZ - 1.0, rel=1e-12)


def test_sixty_day_hole(good_store):
    gold = gold_frame()
    hole_start = gold.loc[150, "date"]
    keep = ~gold["date"].between(hole_start, hole_start + pd.Timedelta(days=59))
    holed = gold[keep].reset_index(drop=True)
    after = int(np.flatnonzero(holed["date"] > hole_start)[0])
    gap = (holed.loc[after, "date"] - holed.loc[after - 1, "date"]).days  # independent
    assert gap > 60
    rep = assert_gate_rejects(
        holed,
        "gold",
        "gold",
        good_store,
        expect_type="expect_column_values_to_be_between",
        expect_column="unexplained_gap_days",
    )
    f = failure(rep, "expect_column_values_to_be_between", "unexplained_gap_days")
    (row,) = f.rows
    assert (row.row, row.date, row.value) == (after, holed.loc[after, "date"].strftime("%Y-%m-%d"), gap)


def test_known_gap_passes_unknown_gap_fails():
    # the real registry entry for the PAXG 2022-26 file: missing 2024-12-10..2025-01-26
    gaps = v.known_gaps_for("paxg_usd_daily_2022_2026.csv")
    assert gaps == (("2024-12-10", "2025-01-26"),)
    tok = token_frame("2024-10-01", "2025-04-30")
    known = tok[~tok["date"].between("2024-12-10", "2025-01-26")].reset_index(drop=True)
    assert not v.validate_frame(known, "token", dataset="token_paxg").success
    rep = v.validate_frame(known, "token", dataset="token_paxg", known_gaps=gaps)
    assert rep.success, rep.summary_line()

    # add an undeclared 20-day hole in March: only that one fails
    both = known[~known["date"].between("2025-03-01", "2025-03-20")].reset_index(drop=True)
    rep = v.validate_frame(both, "token", dataset="token_paxg", known_gaps=gaps)
    f = failure(rep, "expect_column_values_to_be_between", "unexplained_gap_days")
    (row,) = f.rows
    assert row.date == "2025-03-21" and row.value == 21
    assert row.row == int(np.flatnonzero(both["date"] == pd.Timestamp("2025-03-21", tz="UTC"))[0])
    assert rep.failed_expectations() == ["expect_column_values_to_be_between(unexplained_gap_days)"]

    # a hole reaching 10 days past the declared gap is not excused by it
    longer = tok[~tok["date"].between("2024-12-10", "2025-02-05")].reset_index(drop=True)
    rep = v.validate_frame(longer, "token", dataset="token_paxg", known_gaps=gaps)
    (row,) = failure(rep, "expect_column_values_to_be_between", "unexplained_gap_days").rows
    assert row.date == "2025-02-06" and row.value == 11  # 58-day gap, 47 days excused


def test_stale_run(good_store):
    gold = gold_frame()
    stale = gold.copy()
    stale.loc[51:56, "usd_per_oz"] = stale.loc[50, "usd_per_oz"]  # 7 identical fixes 50..56
    stale["usd_per_g"] = stale["usd_per_oz"] / OZ
    rep = assert_gate_rejects(
        stale,
        "gold",
        "gold",
        good_store,
        expect_type="expect_column_values_to_be_between",
        expect_column="unchanged_run",
    )
    (row,) = failure(rep, "expect_column_values_to_be_between", "unchanged_run").rows
    assert (row.row, row.value) == (56, 6)
    assert row.date == stale.loc[56, "date"].strftime("%Y-%m-%d")

    # 6 identical fixes (5 repeats) happened for real (LBMA 1969-05-12..19): accepted
    ok = gold.copy()
    ok.loc[51:55, "usd_per_oz"] = ok.loc[50, "usd_per_oz"]
    ok["usd_per_g"] = ok["usd_per_oz"] / OZ
    assert v.validate_frame(ok, "gold", dataset="gold").success


def test_text_in_numeric_column_raw_view(good_store):
    dates = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2021-03-01", periods=10)]
    prices = ["1720.5"] * 10
    prices[4] = "1,733.10"
    prices[7] = "n/a"
    raw = raw_view(dates, prices, first_row=1)
    settings, before, path = good_store
    with pytest.raises(v.ValidationFailed) as info:
        v.check_frame(raw, "raw_csv", "gold", settings)
    rep = info.value.report
    f = failure(rep, "expect_column_values_to_match_regex", "price")
    # rows are the file's data-row numbers (the raw view's `row` column), not positions
    assert [(r.row, r.date, r.value) for r in f.rows] == [(5, dates[4], "1,733.10"), (8, dates[7], "n/a")]
    assert "expect_column_values_to_match_regex(price)" in str(info.value)
    assert "n/a" in Path(info.value.url).read_text()
    assert path.read_bytes() == before


def test_raw_view_rows_refer_to_file_rows_not_positions():
    raw = raw_view(["2021-03-01", "2021-02-30", "2021-03-03"], ["1", "2", "3"], first_row=101)
    rep = v.validate_frame(raw, "raw_csv", dataset="gold")
    (row,) = failure(rep, "expect_column_values_to_match_strftime_format", "date").rows
    assert (row.row, row.date) == (102, "2021-02-30")


def test_empty_file(good_store):
    settings, before, path = good_store
    raw = empty_raw_view()
    with pytest.raises(v.ValidationFailed) as info:
        v.check_frame(raw, "raw_csv", "gold", settings, problem="file is empty")
    rep = info.value.report
    f = failure(rep, "expect_table_row_count_to_be_between", None)
    assert f.observed_value == 0 and f.rows == []
    assert rep.problem == "file is empty" and not rep.success
    md = Path(info.value.url).read_text()
    assert "file is empty" in md and "expect_table_row_count_to_be_between" in md
    assert path.read_bytes() == before


def test_not_a_csv(good_store):
    settings, before, path = good_store
    raw = empty_raw_view(problem="not a CSV: binary content (PNG signature)")
    with pytest.raises(v.ValidationFailed) as info:
        v.check_frame(raw, "raw_csv", "gold", settings)  # problem read from df.attrs
    rep = info.value.report
    assert rep.problem.startswith("not a CSV")
    assert "not a CSV" in str(info.value)
    failure(rep, "expect_table_row_count_to_be_between", None)
    assert path.read_bytes() == before


def test_schema_failures_are_reported_not_raised():
    gold = gold_frame(30).drop(columns=["usd_per_g"]).assign(extra=1.0)
    rep = v.validate_frame(gold, "gold", dataset="gold")
    f = failure(rep, "expect_table_columns_to_match_set", None)
    assert f.observed_value and "extra" in f.observed_value
    missing = failure(rep, "expect_column_values_to_not_be_null", "usd_per_g")
    assert missing.exception  # GX could not evaluate it: the column is missing


def test_token_symbol_must_match_dataset():
    tok = token_frame("2023-01-01", "2023-02-28", symbol="PAXG")
    tok.loc[9, "token"] = "XAUT"
    rep = v.validate_frame(tok, "token", dataset="token_paxg")
    (row,) = failure(rep, "expect_column_values_to_be_in_set", "token").rows
    assert (row.row, row.date, row.value) == (9, "2023-01-10", "XAUT")


def test_freshness_only_with_as_of():
    gold = gold_frame(100, start="2001-01-01")
    last = gold["date"].iloc[-1]
    # a historical file is never rejected for its age
    assert v.validate_frame(gold, "gold", dataset="gold").success
    fresh = v.validate_frame(gold, "gold", dataset="gold", as_of=last + pd.Timedelta(days=3), max_age_days=7)
    assert fresh.success
    assert fresh.n_expectations == v.validate_frame(gold, "gold", dataset="gold").n_expectations + 1
    stale = v.validate_frame(gold, "gold", dataset="gold", as_of=last + pd.Timedelta(days=30), max_age_days=7)
    f = failure(stale, "expect_column_min_to_be_between", "age_days")
    assert f.observed_value == pytest.approx(30.0)
    with pytest.raises(ValueError, match="as_of and max_age_days"):
        v.validate_frame(gold, "gold", dataset="gold", as_of=last)


def test_check_frame_takes_max_age_from_settings(settings):
    gold = gold_frame(40)
    old = gold["date"].iloc[-1] + pd.Timedelta(days=settings.data.freshness_max_age_days + 1)
    with pytest.raises(v.ValidationFailed, match="age_days"):
        v.check_frame(gold, "gold", "gold", settings, as_of=old)


def test_bad_arguments_raise_value_error():
    gold = gold_frame(10)
    with pytest.raises(ValueError, match="suite_name"):
        v.validate_frame(gold, "silver", dataset="gold")
    with pytest.raises(ValueError, match="token_<symbol>"):
        v.validate_frame(token_frame("2023-01-01", "2023-01-10"), "token", dataset="paxg")
    with pytest.raises(ValueError, match="known_gaps"):
        v.validate_frame(gold, "gold", dataset="gold", known_gaps=[("2020-02-01", "2020-01-01")])
    with pytest.raises(ValueError, match="^df: expected a pandas DataFrame, got dict"):
        v.validate_frame(gold.to_dict(), "gold", dataset="gold")
    with pytest.raises(ValueError, match="dataset"):
        v.validate_frame(gold, "gold", dataset="../gold")


def test_load_curated_without_promotion_is_a_clear_error(settings):
    with pytest.raises(FileNotFoundError, match="token_xaut"):
        v.load_curated("token_xaut", settings)


def test_gate_refuses_raw_suite(settings):
    with pytest.raises(ValueError, match="^suite_name: the raw view is never promoted"):
        v.gate(raw_view(["2020-01-02"], ["1"]), "raw_csv", "gold", settings)


def test_reports_go_through_fsspec_urls():
    settings = Settings(storage={"store_url": f"memory://goldstress-test-{uuid.uuid4().hex}"})
    rep = v.validate_frame(gold_frame(20), "gold", dataset="gold")
    url = v.write_report(rep, settings, run_id="run-123")
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    assert url.startswith(settings.storage.store_url + "/validation/") and url.endswith("_gold/report.md")
    stored = json.loads(fs.cat(path.replace("report.md", "report.json")))
    assert stored["run_id"] == "run-123" and stored["success"] is True
    assert v.promote(gold_frame(20), "gold", settings).endswith("/curated/gold.parquet")
    pd.testing.assert_frame_equal(v.load_curated("gold", settings), gold_frame(20))


# ----------------------------------------------------------------------------------------------
# derived columns vs a brute-force loop written differently
# ----------------------------------------------------------------------------------------------
def test_derived_columns_match_brute_force():
    rng = np.random.default_rng(3)
    dates = pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(np.cumsum(rng.integers(1, 9, 200)), "D")
    prices = rng.choice([10.0, 10.5, 11.0], size=200)
    df = pd.DataFrame({"date": dates, "close_usd": prices})
    gaps = [("2020-02-01", "2020-02-20"), ("2020-06-10", "2020-06-12")]
    out = v.add_derived_columns(df, "close_usd", known_gaps=gaps)
    known_days = set()
    for s, e in gaps:
        known_days |= set(pd.date_range(s, e, tz="UTC"))
    run = 0
    for i in range(1, len(df)):
        prev, cur = df["date"][i - 1], df["date"][i]
        gap = (cur - prev).days
        missing = {prev + pd.Timedelta(days=k) for k in range(1, gap)}
        run = run + 1 if prices[i] == prices[i - 1] else 0
        assert out["gap_days"][i] == gap
        assert out["unexplained_gap_days"][i] == gap - len(missing & known_days)
        assert out["unchanged_run"][i] == run
        assert out["log_return"][i] == pytest.approx(math.log(prices[i] / prices[i - 1]), abs=1e-15)
    assert math.isnan(out["log_return"][0]) and out["unchanged_run"][0] == 0
    assert (out["time_of_day_s"] == 0).all()
    assert list(df.columns) == ["date", "close_usd"]  # input untouched


# ----------------------------------------------------------------------------------------------
# suites are reviewable code + committed JSON
# ----------------------------------------------------------------------------------------------
def _build_suites_module():
    path = PROJECT_ROOT / "expectations" / "build_suites.py"
    spec = importlib.util.spec_from_file_location("goldstress_build_suites", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


def test_committed_suites_match_build_suites(tmp_path):
    mod = _build_suites_module()
    written = mod.write_suites(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{n}.json" for n in v.SUITE_NAMES)
    for p in written:
        committed = PROJECT_ROOT / "expectations" / p.name
        assert committed.read_bytes() == p.read_bytes(), f"regenerate: {committed} is stale"


def test_suite_ids_are_stable_uuid5_and_json_round_trips():
    import great_expectations as gx

    ns = uuid.UUID("6f1c7a52-3f0e-4c59-9d0a-2b51b0c3e7a1")
    for name in v.SUITE_NAMES:
        d = v.load_suite_dict(name)
        ids = [e["id"] for e in d["expectations"]]
        assert len(set(ids)) == len(ids)
        for e in d["expectations"]:
            key = e["meta"]["goldstress_key"]
            assert e["id"] == str(uuid.uuid5(ns, f"goldstress/{name}/{key}"))
        again = gx.ExpectationSuite(**json.loads(json.dumps(d))).to_json_dict()
        assert json.loads(json.dumps(again)) == d


def test_rows_dropped_as_stale_are_a_known_gap(tmp_path):
    # a [[stale]] drop_row entry removes rows on purpose: validation must accept the hole it
    # leaves, and only that hole (a "null" stale action or another file's entry is no gap)
    q = tmp_path / "quirks.toml"
    q.write_text(
        "quirks_version = 1\n"
        '[[known_gap]]\nfile = "tok.csv"\nstart = "2025-01-01"\nend = "2025-01-05"\n'
        '[[stale]]\nfile = "tok.csv"\nstart = "2025-03-01"\nend = "2025-03-20"\naction = "drop_row"\nreason = "pinned"\n'
        '[[stale]]\nfile = "tok.csv"\nstart = "2025-05-01"\nend = "2025-05-20"\naction = "null"\nreason = "x"\n'
        '[[stale]]\nfile = "other.csv"\nstart = "2025-06-01"\nend = "2025-06-20"\naction = "drop_row"\nreason = "y"\n',
        encoding="utf-8",
    )
    gaps = v.known_gaps_for("tok.csv", q)
    assert gaps == (("2025-01-01", "2025-01-05"), ("2025-03-01", "2025-03-20"))
    tok = token_frame("2025-02-01", "2025-04-30")
    dropped = tok[~tok["date"].between("2025-03-01", "2025-03-20")].reset_index(drop=True)
    assert not v.validate_frame(dropped, "token", dataset="token_paxg").success
    rep = v.validate_frame(dropped, "token", dataset="token_paxg", known_gaps=gaps)
    assert rep.success, rep.summary_line()
