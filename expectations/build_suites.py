"""(Re)generate the Great Expectations suites ``expectations/*.json`` from readable definitions.

This script is the suites' source of truth (``--out DIR`` writes elsewhere); every expectation has a
stable ``id``, so regenerating an unchanged suite gives byte-identical files.
Meta flags and derived columns: docs/platform/validation.md.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ["GX_ANALYTICS_ENABLED"] = "false"

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402

HERE = Path(__file__).resolve().parent
ID_NAMESPACE = uuid.UUID("6f1c7a52-3f0e-4c59-9d0a-2b51b0c3e7a1")
"""Fixed namespace for the UUID5 expectation ids (never change it: ids would all move)."""

TROY_OUNCE_G = 31.1034768  # same constant as goldstress.settings.TROY_OUNCE_G (kept import-free)

INPUT = {"goldstress": {"evaluate_on": "input"}}
AS_OF_ONLY = {"goldstress": {"applies_when": "as_of"}}

# --- limits, each justified from the data's provenance notes (/work/shared/data/SOURCES.md) ---
RAW_MAX_BLANK_FRACTION = 0.02
"""LBMA usd_pm is blank on half days (Christmas/New Year's Eve) and before 1968-04-01:
147 of 14,068 rows (1.04 %) in the full Nasdaq export, 147 of 14,810 (0.99 %) in the merged
file; token layouts have none. 2 % leaves room for that and rejects a mostly-blank column."""

GOLD_MAX_ABS_LOG_RETURN = 0.20
"""Largest real LBMA USD PM moves 1968-2026 are ln-returns -0.142 (1980-01-22), -0.129
(1983-02-28), +0.125 (1980-01-03); 0.20 (about +22 % / -18 %) leaves 40 % headroom over the
worst real day. USD-per-gram values mixed into a USD-per-ounce series jump by
|ln 31.1034768| = 3.44 at each switch, 17 times the bound, so they always breach it."""

GOLD_MAX_GAP_DAYS = 10
"""LBMA fixes are London business days: the longest real gap after 1968-04-01 is 7 calendar
days (Christmas 1979 and 1984); 10 admits any holiday cluster, a 60-day hole breaches it.
The one 18-day gap (market closed 1968-03-15..03-29) predates the PM series."""

GOLD_MAX_UNCHANGED_RUN = 5
"""Counted as repeats of the previous price (0 when it moved). The real LBMA record holds 5
repeats: usd_pm = 43.50 on six fixes 1969-05-12..05-19 while the AM fix moved, a live but sticky
two-tier market. 6+ repeats (7 identical fixes in a row) is treated as a stale feed."""

TOKEN_MAX_ABS_LOG_RETURN = 0.12
"""Meant for liquid 1-oz tokens (PAXG, XAUT) on daily closes. Real maxima: PAXG 2022-26 0.098
(2026-01-30, the gold crash), XAUT 2022-26 0.100 excluding its bad print, PAXG CMC 2019-20 0.088,
XAUT CoinGecko 2020-23 0.070. The XAUT bad print of 2023-05-26 is +0.155 then -0.158 (reverting),
above 0.12, so it is caught. NOT meant for illiquid tokens: DGX (1 g, thin books) has real moves
up to 0.237 and PMGT 0.130; give those their own suite with a looser bound (e.g. 0.30)."""

TOKEN_MAX_GAP_DAYS = 5
"""Tokens trade 24/7 and every token file has one row per calendar day (max real gap 1 day,
apart from the declared 49-day hole 2024-12-10..2025-01-26 in the 2022-26 PAXG/XAUT files)."""

TOKEN_MAX_UNCHANGED_RUN = 3
"""24/7 prices quoted to the cent around 2,000 USD: the real token files repeat a close at
most once (even Binance's whole-dollar ticks); 4 unchanged days in a row is a stale feed."""

USD_PER_G_REL_TOL = 1e-6
"""usd_per_g must equal usd_per_oz / 31.1034768 (contract); float64 rounding gives ~1e-16,
a float32 round trip ~6e-8; a unit mix-up gives 30.1 (or -0.97)."""


@dataclass(frozen=True)
class Spec:
    """One expectation with a readable key (its stable id is derived from suite + key)."""

    key: str
    expectation: Any
    notes: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def _raw_csv() -> tuple[str, dict[str, Any], list[Spec]]:
    notes = (
        "Raw view of any price file (goldstress.io.layouts.raw_view): columns row (1-based data "
        "row in the file), date, price, all strings; '' = blank price."
    )
    meta = {"goldstress": {"frame": "raw_view", "price_column": "price", "row_column": "row"}}
    specs = [
        Spec(
            "columns",
            gxe.ExpectTableColumnsToMatchSet(column_set=["row", "date", "price"], exact_match=True),
            "exactly the raw-view columns of the data contract",
            INPUT,
        ),
        Spec(
            "row_count",
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            "an empty file, a non-CSV file or an unknown header gives an empty raw view",
        ),
        Spec("date_not_null", gxe.ExpectColumnValuesToNotBeNull(column="date")),
        Spec(
            "date_iso",
            gxe.ExpectColumnValuesToMatchRegex(column="date", regex=r"^\d{4}-\d{2}-\d{2}$"),
            "ISO YYYY-MM-DD dates only",
        ),
        Spec(
            "date_calendar",
            gxe.ExpectColumnValuesToMatchStrftimeFormat(column="date", strftime_format="%Y-%m-%d"),
            "a real calendar date (rejects 2023-02-30)",
        ),
        Spec(
            "price_not_null",
            gxe.ExpectColumnValuesToNotBeNull(column="price"),
            "blanks are '' in the raw view, never null",
        ),
        Spec(
            "price_decimal",
            gxe.ExpectColumnValuesToMatchRegex(column="price", regex=r"^(?:\d+(?:\.\d+)?)?$"),
            "an unsigned decimal number or '' (blank); text, signs, separators are rejected",
        ),
        Spec(
            "price_blank_limit",
            gxe.ExpectColumnValuesToNotMatchRegex(column="price", regex=r"^$", mostly=1 - RAW_MAX_BLANK_FRACTION),
            _doc("RAW_MAX_BLANK_FRACTION"),
        ),
    ]
    return notes, meta, specs


def _curated_common(price: str, max_abs_r: float, max_gap: int, max_run: int) -> list[Spec]:
    """Row-level checks shared by the gold and token suites (derived columns included)."""
    return [
        Spec("row_count", gxe.ExpectTableRowCountToBeBetween(min_value=1)),
        Spec(
            "date_type",
            gxe.ExpectColumnTypeToBe(column="date", type_="datetime64[us, UTC]"),
            "tz-aware UTC datetimes; GX compares the exact dtype (unit and tz), so "
            "goldstress.io.validation converts a tz-aware column's unit to 'us' first (lossless): "
            "a naive or non-UTC column still fails",
            INPUT,
        ),
        Spec(
            f"{price}_type",
            gxe.ExpectColumnTypeToBe(column=price, type_="float64"),
            "",
            INPUT,
        ),
        Spec("date_not_null", gxe.ExpectColumnValuesToNotBeNull(column="date")),
        Spec(f"{price}_not_null", gxe.ExpectColumnValuesToNotBeNull(column=price)),
        Spec("source_not_null", gxe.ExpectColumnValuesToNotBeNull(column="source")),
        Spec("source_non_empty", gxe.ExpectColumnValueLengthsToBeBetween(column="source", min_value=1)),
        Spec("date_unique", gxe.ExpectColumnValuesToBeUnique(column="date")),
        Spec(
            "date_increasing",
            gxe.ExpectColumnValuesToBeIncreasing(column="date", strictly=True),
            "curated frames are sorted by date",
        ),
        Spec(
            "date_midnight",
            gxe.ExpectColumnValuesToBeBetween(column="time_of_day_s", min_value=0, max_value=0),
            "derived time_of_day_s: dates are UTC midnight",
        ),
        Spec(
            f"{price}_positive",
            gxe.ExpectColumnValuesToBeBetween(column=price, min_value=0, strict_min=True),
            "prices are strictly positive",
        ),
        Spec(
            "log_return_bound",
            gxe.ExpectColumnValuesToBeBetween(column="log_return", min_value=-max_abs_r, max_value=max_abs_r),
            "",
        ),
        Spec(
            "gap_limit",
            gxe.ExpectColumnValuesToBeBetween(column="unexplained_gap_days", max_value=max_gap),
            "derived unexplained_gap_days = gap_days minus days of declared known gaps "
            "(goldstress/data_quirks.toml [[known_gap]]). ",
        ),
        Spec(
            "stale_run",
            gxe.ExpectColumnValuesToBeBetween(column="unchanged_run", max_value=max_run),
            "derived unchanged_run = consecutive repeats of the previous price. ",
        ),
        Spec(
            "freshness",
            gxe.ExpectColumnMinToBeBetween(column="age_days", max_value={"$PARAMETER": "max_age_days"}),
            "only for an online fetch (as_of and max_age_days given): the newest row is at most "
            "max_age_days older than as_of; historical files are never rejected for being old",
            AS_OF_ONLY,
        ),
    ]


def _doc(name: str) -> str:
    """Return the justification text written under a limit constant in this file."""
    src = Path(__file__).read_text(encoding="utf-8")
    start = src.index(f"\n{name} = ")
    q = src.index('"""', start) + 3
    return " ".join(src[q : src.index('"""', q)].split())


def _with_notes(specs: list[Spec], extra: dict[str, str]) -> list[Spec]:
    """Append the justification of each limit to the matching spec's notes."""
    return [Spec(s.key, s.expectation, (s.notes + extra.get(s.key, "")).strip(), s.meta) for s in specs]


def _gold() -> tuple[str, dict[str, Any], list[Spec]]:
    notes = (
        "Curated gold table (dataset 'gold'): one row per London business day with a PM fix "
        "(LBMA) or per broker trading day; usd_per_oz, usd_per_g = usd_per_oz / 31.1034768."
    )
    meta = {"goldstress": {"frame": "curated", "price_column": "usd_per_oz", "dataset": "gold"}}
    specs = [
        Spec(
            "columns",
            gxe.ExpectTableColumnsToMatchSet(
                column_set=["date", "usd_per_oz", "usd_per_g", "source"], exact_match=True
            ),
            "exact curated gold schema of the data contract",
            INPUT,
        ),
        *_curated_common("usd_per_oz", GOLD_MAX_ABS_LOG_RETURN, GOLD_MAX_GAP_DAYS, GOLD_MAX_UNCHANGED_RUN),
        Spec("usd_per_g_type", gxe.ExpectColumnTypeToBe(column="usd_per_g", type_="float64"), "", INPUT),
        Spec("usd_per_g_not_null", gxe.ExpectColumnValuesToNotBeNull(column="usd_per_g")),
        Spec(
            "usd_per_g_positive",
            gxe.ExpectColumnValuesToBeBetween(column="usd_per_g", min_value=0, strict_min=True),
        ),
        Spec(
            "usd_per_g_consistent",
            gxe.ExpectColumnValuesToBeBetween(
                column="usd_per_g_rel_error", min_value=-USD_PER_G_REL_TOL, max_value=USD_PER_G_REL_TOL
            ),
            "derived usd_per_g_rel_error = usd_per_g * 31.1034768 / usd_per_oz - 1; " + _doc("USD_PER_G_REL_TOL"),
        ),
    ]
    specs = _with_notes(
        specs,
        {
            "log_return_bound": _doc("GOLD_MAX_ABS_LOG_RETURN"),
            "gap_limit": _doc("GOLD_MAX_GAP_DAYS"),
            "stale_run": _doc("GOLD_MAX_UNCHANGED_RUN"),
        },
    )
    return notes, meta, specs


def _token() -> tuple[str, dict[str, Any], list[Spec]]:
    notes = (
        "Curated token table (dataset 'token_<symbol>'): one row per UTC calendar day, "
        "close_usd = USD per token. Bounds are meant for liquid 1-oz tokens (PAXG, XAUT); "
        "illiquid tokens such as DGX or PMGT need their own, looser suite."
    )
    meta = {"goldstress": {"frame": "curated", "price_column": "close_usd", "dataset": "token_<symbol>"}}
    specs = [
        Spec(
            "columns",
            gxe.ExpectTableColumnsToMatchSet(column_set=["date", "token", "close_usd", "source"], exact_match=True),
            "exact curated token schema of the data contract",
            INPUT,
        ),
        *_curated_common("close_usd", TOKEN_MAX_ABS_LOG_RETURN, TOKEN_MAX_GAP_DAYS, TOKEN_MAX_UNCHANGED_RUN),
        Spec("token_not_null", gxe.ExpectColumnValuesToNotBeNull(column="token")),
        Spec(
            "token_symbol",
            gxe.ExpectColumnValuesToBeInSet(column="token", value_set={"$PARAMETER": "token_symbols"}),
            "every row names the dataset's token (token_paxg -> 'PAXG')",
        ),
    ]
    specs = _with_notes(
        specs,
        {
            "log_return_bound": _doc("TOKEN_MAX_ABS_LOG_RETURN"),
            "gap_limit": _doc("TOKEN_MAX_GAP_DAYS"),
            "stale_run": _doc("TOKEN_MAX_UNCHANGED_RUN"),
        },
    )
    return notes, meta, specs


SUITE_BUILDERS = {"raw_csv": _raw_csv, "gold": _gold, "token": _token}


def build_suite_dicts() -> dict[str, dict[str, Any]]:
    """Return ``{suite name: suite JSON dict}`` for every suite, with stable expectation ids.

    Each dict round-trips through ``gx.ExpectationSuite(**d)``. Raises ``ValueError`` if two
    expectations of one suite share a key (their ids would collide).
    """
    out: dict[str, dict[str, Any]] = {}
    for name, builder in SUITE_BUILDERS.items():
        notes, meta, specs = builder()
        keys = [s.key for s in specs]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"suite {name!r}: duplicate expectation keys {dupes}")
        exps = []
        for s in specs:
            cfg = s.expectation.configuration.to_json_dict()
            cfg["id"] = str(uuid.uuid5(ID_NAMESPACE, f"goldstress/{name}/{s.key}"))
            cfg["notes"] = s.notes or None
            cfg["meta"] = {**s.meta, "goldstress_key": s.key} if s.meta else {"goldstress_key": s.key}
            exps.append(cfg)
        suite = gx.ExpectationSuite(name=name, expectations=exps, meta=meta, notes=notes)
        out[name] = json.loads(json.dumps(suite.to_json_dict()))
    return out


def write_suites(out_dir: Path = HERE) -> list[Path]:
    """Write ``<out_dir>/<suite>.json`` for every suite (sorted keys, 2-space indent, LF).

    Returns the written paths. The output is deterministic: same definitions, same bytes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, d in build_suite_dicts().items():
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps(d, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: here)")
    args = parser.parse_args()
    for p in write_suites(args.out):
        print(p)
