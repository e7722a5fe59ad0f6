"""The data gate on copies of the real files (GOLDSTRESS_DATA_DIR, skipped when absent).

A store is built once by importing and promoting the real merged LBMA gold file (the last good
table); each test copies it, imports a damaged copy of the file under the same name, runs the
gate task's function and checks the one-line rejection and that curated/ and raw/ hash the same.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from goldstress.io.datagate import DataRejected
from goldstress.io.snapshots import import_file
from tasks.curate import validate_and_promote
from tests.goldstress.io.http_fixtures import make_settings

pytestmark = pytest.mark.realdata

GOLD = "gold_lbma_usd_daily_1968_2026_merged.csv"
PAXG = "paxg_usd_daily_2022_2026.csv"


def tree_hash(folder: Path) -> str:
    """SHA-256 over the relative paths and bytes of every file under ``folder``."""
    h = hashlib.sha256()
    if folder.exists():
        for p in sorted(q for q in folder.rglob("*") if q.is_file()):
            h.update(str(p.relative_to(folder)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def settings_for(root: Path, **data: object):
    return make_settings(
        storage={"store_url": str(root / "store"), "report_url": str(root / "reports")},
        data_dir=str(root / "data"),
        **data,
    )


@pytest.fixture(scope="module")
def good_root(shared_data_dir, tmp_path_factory) -> Path:
    """A store whose curated gold is the real merged file, promoted through the gate."""
    root = tmp_path_factory.mktemp("good")
    (root / "data").mkdir()
    shutil.copy(shared_data_dir / GOLD, root / "data" / GOLD)
    settings = settings_for(root)
    out = validate_and_promote.fn(import_file(root / "data" / GOLD, "gold", settings), settings)
    assert out["rows"] > 14_000
    return root


@pytest.fixture
def root(good_root, tmp_path) -> Path:
    """A private copy of the good store and data folder."""
    shutil.copytree(good_root, tmp_path / "r")
    return tmp_path / "r"


def gold_raw(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "data" / GOLD, dtype=str, keep_default_na=False)


def assert_rejected(root: Path, frame_or_bytes, check: str, dataset: str = "gold", name: str = GOLD, **cfg) -> str:
    """Write the damaged file, import it and gate it; return the one-line message after checking
    that it names the file and the check and that curated/ and raw/ are unchanged."""
    settings = settings_for(root, **cfg)
    path = root / "data" / name
    if isinstance(frame_or_bytes, pd.DataFrame):
        frame_or_bytes.to_csv(path, index=False)
    else:
        path.write_bytes(frame_or_bytes)
    store = root / "store"
    before = tree_hash(store / "curated"), tree_hash(store / "raw")
    with pytest.raises(DataRejected) as info:
        ref = import_file(path, dataset, settings)
        validate_and_promote.fn(ref, settings)
    msg = str(info.value)
    assert "\n" not in msg and name in msg and f"check {check}:" in msg, msg
    assert info.value.check == check
    assert (tree_hash(store / "curated"), tree_hash(store / "raw")) == before
    return msg


def test_usd_per_gram_file_is_rejected_naming_the_factor(root):
    raw = gold_raw(root)
    for col in ("usd_am", "usd_pm"):
        v = pd.to_numeric(raw[col], errors="coerce") / 31.1034768
        raw[col] = v.round(4).map(lambda x: "" if pd.isna(x) else f"{x:g}")
    msg = assert_rejected(root, raw, "level_vs_last_good")
    assert "a factor of 1/31.1: USD per gram?" in msg
    quarantined = list((root / "store" / "quarantine").rglob("*.csv"))
    assert len(quarantined) == 1  # the rejected snapshot left raw/ for quarantine/


def test_one_row_file_does_not_replace_the_table(root):
    raw = gold_raw(root)
    msg = assert_rejected(root, raw.tail(1), "shrink")
    assert "1 rows" in msg


def test_one_row_file_passes_when_shrinking_is_allowed(root):
    settings = settings_for(root, gate_allow_shrink=True)
    gold_raw(root).tail(1).to_csv(root / "data" / GOLD, index=False)
    out = validate_and_promote.fn(import_file(root / "data" / GOLD, "gold", settings), settings)
    assert out["rows"] == 1


def test_rows_dated_in_the_future_are_rejected(root):
    raw = gold_raw(root)
    last_day = pd.Timestamp(raw["date"].iloc[-1])
    days = pd.bdate_range(last_day + timedelta(days=1), datetime.now(UTC).date() + timedelta(days=60))
    rng = np.random.default_rng(3)
    last = float(raw["usd_pm"].iloc[-1])
    prices = last * np.exp(np.cumsum(rng.normal(0, 0.005, len(days))))
    extra = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "usd_am": "", "usd_pm": np.round(prices, 2)})
    extra["source"] = raw["source"].iloc[-1]
    msg = assert_rejected(root, pd.concat([raw, extra.astype(str)], ignore_index=True), "future_date")
    first_future = days[days > pd.Timestamp(datetime.now(UTC).date() + timedelta(days=1))][0]
    assert first_future.strftime("%Y-%m-%d") in msg


def test_saturday_row_in_the_lbma_series_is_rejected(root):
    raw = gold_raw(root)
    i = int(np.flatnonzero(raw["date"].to_numpy() == "2020-06-12")[0])  # a Friday
    sat = raw.iloc[[i]].assign(date="2020-06-13")
    msg = assert_rejected(
        root, pd.concat([raw.iloc[: i + 1], sat, raw.iloc[i + 1 :]], ignore_index=True), "weekend_row"
    )
    assert "2020-06-13 (Saturday)" in msg


def test_every_date_shifted_by_a_day_is_reported_as_a_shift(root):
    raw = gold_raw(root)
    raw["date"] = (pd.to_datetime(raw["date"]) + pd.Timedelta(days=1)).dt.strftime("%Y-%m-%d")
    msg = assert_rejected(root, raw, "date_shift")
    assert "moved by +1 day" in msg


def test_closes_off_by_three_percent_on_many_days_are_rejected(root):
    raw = gold_raw(root)
    pm = pd.to_numeric(raw["usd_pm"], errors="coerce")
    rows = np.arange(5000, 14000, 40)  # 225 days, 1.5 % of the table, each +3 %
    pm.iloc[rows] = (pm.iloc[rows] * 1.03).round(2)
    raw["usd_pm"] = pm.map(lambda x: "" if pd.isna(x) else f"{x:g}")
    assert_rejected(root, raw, "agreement_vs_last_good")


def test_the_same_file_again_is_accepted(root):
    settings = settings_for(root)
    out = validate_and_promote.fn(import_file(root / "data" / GOLD, "gold", settings), settings)
    assert out["rows"] > 14_000


def test_bar_with_high_below_low_is_rejected(root, shared_data_dir):
    raw = pd.read_csv(shared_data_dir / PAXG, dtype=str)
    raw.loc[100, "high_usd"] = str(float(raw.loc[100, "low_usd"]) - 1)
    msg = assert_rejected(root, raw, "ohlc", dataset="token_paxg", name=PAXG)
    assert f"row 101 ({raw.loc[100, 'date']})" in msg


def test_oversized_file_is_refused_before_reading(root):
    path = root / "data" / GOLD
    settings = settings_for(root)
    with open(path, "r+b") as f:  # sparse: 600 MiB on paper, no disk or memory used
        f.truncate(600 * 2**20)
    store = root / "store"
    before = tree_hash(store / "curated"), tree_hash(store / "raw")
    with pytest.raises(DataRejected) as info:
        import_file(path, "gold", settings)
    msg = str(info.value)
    assert "\n" not in msg and GOLD in msg and "check size:" in msg and "600.0 MiB" in msg, msg
    assert (tree_hash(store / "curated"), tree_hash(store / "raw")) == before


def test_file_cut_inside_its_last_row_is_rejected(root):
    data = (root / "data" / GOLD).read_bytes()
    msg = assert_rejected(root, data[:-30], "truncated")  # stops inside the source name
    assert "ends without a line break" in msg


def test_file_whose_last_row_lost_fields_is_rejected(root):
    data = (root / "data" / GOLD).read_bytes().rstrip(b"\n")
    cut = data[: data.rindex(b",")] + b"\n"  # the last row loses its source field
    msg = assert_rejected(root, cut, "truncated")
    assert "3 fields, the header 4" in msg


def test_real_paxg_file_agrees_with_the_lbma_gold(root, shared_data_dir):
    shutil.copy(shared_data_dir / PAXG, root / "data" / PAXG)
    settings = settings_for(root)
    out = validate_and_promote.fn(import_file(root / "data" / PAXG, "token_paxg", settings), settings)
    assert out["rows"] > 900


def test_paxg_file_in_usd_per_gram_is_rejected_against_the_lbma_gold(root, shared_data_dir):
    raw = pd.read_csv(shared_data_dir / PAXG, dtype=str)
    for col in ("open_usd", "high_usd", "low_usd", "close_usd"):
        raw[col] = (pd.to_numeric(raw[col]) / 31.1034768).round(4).astype(str)
    msg = assert_rejected(root, raw, "level_vs_gold", dataset="token_paxg", name=PAXG)
    assert "a factor of 1/31.1: USD per gram?" in msg


@pytest.fixture
def paxg_only_root(shared_data_dir, tmp_path) -> Path:
    """A store whose only curated table is the real PAXG file (no gold yet)."""
    root = tmp_path / "p"
    (root / "data").mkdir(parents=True)
    shutil.copy(shared_data_dir / PAXG, root / "data" / PAXG)
    settings = settings_for(root)
    validate_and_promote.fn(import_file(root / "data" / PAXG, "token_paxg", settings), settings)
    return root


def test_first_gold_file_in_usd_per_gram_is_rejected_against_the_token_closes(paxg_only_root, shared_data_dir):
    raw = pd.read_csv(shared_data_dir / GOLD, dtype=str, keep_default_na=False)
    for col in ("usd_am", "usd_pm"):
        v = pd.to_numeric(raw[col], errors="coerce") / 31.1034768
        raw[col] = v.round(4).map(lambda x: "" if pd.isna(x) else f"{x:g}")
    msg = assert_rejected(paxg_only_root, raw, "level_vs_token_paxg")
    assert "a factor of 1/31.1: USD per gram?" in msg


def test_first_gold_file_five_percent_off_the_token_closes_is_rejected(paxg_only_root, shared_data_dir):
    raw = pd.read_csv(shared_data_dir / GOLD, dtype=str, keep_default_na=False)
    recent = pd.to_datetime(raw["date"]) >= "2022-01-01"
    pm = pd.to_numeric(raw["usd_pm"], errors="coerce")
    pm[recent] = (pm[recent] * 1.05).round(2)
    raw["usd_pm"] = pm.map(lambda x: "" if pd.isna(x) else f"{x:g}")
    msg = assert_rejected(paxg_only_root, raw, "agreement_vs_token_paxg")
    assert "limit 2.000%" in msg
