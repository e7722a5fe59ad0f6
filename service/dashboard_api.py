"""Routes the dashboard reads beyond the run files: who is logged in, the what-if presets, a
run's downloadable files and the comparison of two runs (differences computed here).

:func:`add_dashboard_routes` registers them on the app of ``service.app.create_app``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from fastapi import Depends, FastAPI, HTTPException
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from service.auth import Principal
from service.runs import RUN_ID_RE, SCENARIO_RE, RunIndex, dumps, mc_scenario_name

COMPARE_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("holder_value_var_99_10d_frac", "99% 10-day VaR of holder value", "fraction"),
    ("holder_value_es_99_10d_frac", "99% 10-day ES of holder value", "fraction"),
    ("reserve_per_token_var_99_10d_frac", "99% 10-day VaR of reserve value per token outstanding", "fraction"),
    ("p_backing_below_1", "Chance the backing ratio falls below 1 within the horizon", "fraction"),
    ("p_liquidation", "Chance of a liquidation within the horizon", "fraction"),
    ("expected_bad_debt_usd", "Expected bad debt", "usd"),
    ("p_abs_premium_gt_1pct", "Chance the price strays more than 1% from NAV", "fraction"),
    ("liquidity_coverage_30d_q01", "Liquidity coverage over 30 days (1% worst paths)", "ratio"),
)
"""Monte Carlo figures compared between runs: (summary key under
``tokens.<T>.scenarios.mc_champion``, label, unit)."""


def as_float(v: Any) -> float | None:
    """A summary value as a float: numbers as they are, the strings ``"inf"``, ``"-inf"``,
    ``"nan"`` (summary.json's non-finite numbers) as floats, anything else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if v in ("inf", "-inf", "nan"):
        return float(v)
    return None


def difference(a: Any, b: Any) -> tuple[float | None, float | None]:
    """``(b - a, (b - a) / |a|)`` of two summary values; each None when it is undefined (a value
    missing or not finite; the relative difference also when ``a == 0``)."""
    x, y = as_float(a), as_float(b)
    if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
        return None, None
    d = y - x
    return d, (d / abs(x) if x != 0 else None)


def verdict_of(token: dict[str, Any]) -> str | None:
    """``tokens.<T>.verdict.verdict`` of a token's summary, None when the run has no verdict."""
    v = token.get("verdict")
    if isinstance(v, dict) and v.get("verdict") in ("pass", "watch", "fail"):
        return str(v["verdict"])
    return None


def compare_summaries(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Headline figures and verdicts of two runs side by side, with their differences.

    Returns ``{"a": {"run_id", "generated_at"}, "b": {...}, "tokens": {symbol: {"verdict":
    {"a", "b", "changed"}, "figures": [{"key", "label", "unit", "a", "b", "abs_diff",
    "rel_diff"}]}}, "only_in_a", "only_in_b"}`` over the tokens both runs have (those of one run
    only are listed apart). ``abs_diff`` = b - a in the figure's unit, ``rel_diff`` = (b - a) /
    |a| (a fraction); None when undefined (:func:`difference`). Figures are
    :data:`COMPARE_FIGURES` of each run's Monte Carlo scenario, and the worst single-path
    scenario's peak-to-trough holder loss; a figure absent from both runs is left out.
    """
    ta, tb = a.get("tokens") or {}, b.get("tokens") or {}
    tokens: dict[str, Any] = {}
    for sym in [s for s in ta if s in tb]:
        xa, xb = ta[sym] or {}, tb[sym] or {}
        ma = (xa.get("scenarios") or {}).get(mc_scenario_name(xa) or "", {})
        mb = (xb.get("scenarios") or {}).get(mc_scenario_name(xb) or "", {})
        rows = []
        pairs = [(key, label, unit, ma.get(key), mb.get(key)) for key, label, unit in COMPARE_FIGURES]
        wa, wb = xa.get("worst_scenario") or {}, xb.get("worst_scenario") or {}
        pairs.append(
            (
                "worst_scenario_value",
                "Worst single-path scenario: peak-to-trough holder loss",
                "fraction",
                wa.get("value"),
                wb.get("value"),
            )
        )
        for key, label, unit, va, vb in pairs:
            if va is None and vb is None:
                continue
            d, r = difference(va, vb)
            rows.append({"key": key, "label": label, "unit": unit, "a": va, "b": vb, "abs_diff": d, "rel_diff": r})
        va_, vb_ = verdict_of(xa), verdict_of(xb)
        tokens[sym] = {"verdict": {"a": va_, "b": vb_, "changed": va_ != vb_}, "figures": rows}
    return {
        "a": {"run_id": a.get("run_id"), "generated_at": a.get("generated_at")},
        "b": {"run_id": b.get("run_id"), "generated_at": b.get("generated_at")},
        "tokens": tokens,
        "only_in_a": [s for s in ta if s not in tb],
        "only_in_b": [s for s in tb if s not in ta],
    }


def downloadable_files(index: RunIndex, run_id: str) -> list[dict[str, Any]] | None:
    """The files of a listed run the service serves for download: ``summary.json`` and each
    ``results/<scenario>.parquet``, as recorded in the run's ``published.json`` (name, size in
    bytes) with the authenticated route that serves it (``url``). None when the run is not listed.
    """
    entry = index.get(run_id)
    if entry is None:
        return None
    base = f"/api/runs/{run_id}"
    out = []
    if "summary.json" in entry.sizes:
        out.append({"name": "summary.json", "size": entry.sizes["summary.json"], "url": f"{base}/summary"})
    for name in sorted(entry.sizes):
        scenario = name.removeprefix("results/").removesuffix(".parquet")
        if (
            name == f"results/{scenario}.parquet"
            and scenario in entry.scenarios
            and SCENARIO_RE.match(scenario) is not None
        ):
            out.append({"name": name, "size": entry.sizes[name], "url": f"{base}/results/{scenario}.parquet"})
    return out


class WhoAmIOut(BaseModel):
    """``GET /api/whoami`` answer."""

    subject: str = Field(description="User name, or apikey:<hash prefix>.")
    role: str = Field(description="viewer or analyst (analysts may run what-ifs).")


class PresetOut(BaseModel):
    """One what-if preset."""

    symbol: str
    name: str
    kind: str = Field(description="gold_backed or gold_cdp.")


class PresetsOut(BaseModel):
    """``GET /api/presets`` answer: the token specs a what-if may name as ``token_preset``."""

    presets: list[PresetOut]


class RunFileOut(BaseModel):
    """One downloadable file of a run."""

    name: str = Field(description="Name in the run folder, e.g. results/mc_champion.parquet.")
    size: int = Field(description="Bytes, as published.")
    url: str = Field(description="Authenticated route serving it.")


class RunFilesOut(BaseModel):
    """``GET /api/runs/{run_id}/files`` answer."""

    run_id: str
    files: list[RunFileOut]


def add_dashboard_routes(
    app: FastAPI,
    fresh_index: Callable[[], Awaitable[RunIndex]],
    get_presets: Callable[[], dict[str, Any]],
    require_viewer: Callable[..., Awaitable[Principal]],
    errors: dict[int | str, dict[str, Any]],
) -> None:
    """Register ``GET /api/whoami``, ``/api/presets``, ``/api/runs/{run_id}/files`` and
    ``/api/runs/{a}/compare/{b}`` (any role). ``fresh_index`` returns the refreshed run index,
    ``get_presets`` the configured specs by symbol (``goldstress.whatif.load_presets``),
    ``require_viewer`` is the route dependency giving the principal, ``errors`` the OpenAPI
    error answers shared with the other routes."""

    def run_id_param() -> Any:
        """A fresh path-parameter declaration (one object per parameter: FastAPI binds it)."""
        return PathParam(pattern=RUN_ID_RE.pattern, max_length=128, description="Run id.")

    @app.get("/api/whoami", response_model=WhoAmIOut, tags=["public"], responses=errors)
    async def whoami(principal: Principal = Depends(require_viewer)) -> Response:
        """The logged-in principal and its role (the dashboard shows the what-if form to analysts only)."""
        return JSONResponse({"subject": principal.subject, "role": principal.role})

    @app.get("/api/presets", response_model=PresetsOut, tags=["whatif"], responses=errors)
    async def presets(principal: Principal = Depends(require_viewer)) -> Response:
        """The what-if presets: every configured token spec (``settings.scenarios.token_specs``)."""
        try:
            table = await anyio.to_thread.run_sync(get_presets)
        except (OSError, ValueError) as exc:
            raise HTTPException(503, f"presets unavailable: {exc}") from None
        items = [{"symbol": sym, "name": spec.name, "kind": spec.kind} for sym, spec in table.items()]
        return JSONResponse({"presets": items})

    @app.get(
        "/api/runs/{run_id}/files",
        response_model=RunFilesOut,
        tags=["runs"],
        responses={**errors, 404: {"description": "unknown run"}},
    )
    async def run_files(run_id: str = run_id_param(), principal: Principal = Depends(require_viewer)) -> Response:
        """Downloadable files of a run (summary.json, results/*.parquet) as listed in its published.json."""
        files = downloadable_files(await fresh_index(), run_id)
        if files is None:
            raise HTTPException(404, f"unknown run {run_id!r}")
        return JSONResponse({"run_id": run_id, "files": files})

    @app.get(
        "/api/runs/{run_id}/compare/{other_id}",
        tags=["runs"],
        responses={**errors, 404: {"description": "unknown run"}},
    )
    async def compare(
        run_id: str = run_id_param(), other_id: str = run_id_param(), principal: Principal = Depends(require_viewer)
    ) -> Response:
        """Headline figures and verdicts of run ``run_id`` (a) and ``other_id`` (b) with b - a and
        (b - a) / |a| per figure (:func:`compare_summaries`)."""
        idx = await fresh_index()
        docs = []
        for rid in (run_id, other_id):
            raw = None if idx.get(rid) is None else await anyio.to_thread.run_sync(idx.summary_bytes, rid)
            if raw is None:
                raise HTTPException(404, f"unknown run {rid!r}")
            docs.append(json.loads(raw))
        return Response(dumps(compare_summaries(docs[0], docs[1])), media_type="application/json")
