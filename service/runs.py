"""The index of pipeline runs under ``settings.storage.report_url``, cached in memory.

A run folder ``<report_url>/<run_id>/`` is listed once its completion marker ``published.json``
exists and its files have the recorded sizes (publishing guarantee: docs/platform/catalog.md);
files are served only at those sizes. A listed run is immutable: its summary bytes, listing item
and fan chart are computed once. The listing is refreshed every ``settings.service.index_ttl_s``
seconds, and at once when a local report folder's modification time changes.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from goldstress.catalog import WHATIF_FOLDER, Catalog
from goldstress.io import storage
from goldstress.publish import published, recorded_size
from goldstress.settings import Settings
from service.cache import LRUCache

log = logging.getLogger("goldstress.service.runs")

RUN_ID_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_.-]{0,127}$")
"""Names accepted as run folders (no path separators, no leading dot: ``..`` cannot match)."""

SCENARIO_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_.+-]{0,127}$")
"""Scenario names accepted in URLs (e.g. ``mc_champion``, ``shock_-20pct``)."""

RESERVED_FOLDERS = frozenset({WHATIF_FOLDER})
"""Folders under ``report_url`` that are not runs (what-if results live in ``whatif/``)."""

_TIMESTAMP_RE = re.compile(r"^(\d{8}T\d{6}Z)")
_CHUNK_BYTES = 1 << 20


def dumps(obj: Any) -> bytes:
    """Compact strict JSON bytes (``ValueError`` for NaN/inf: callers pass ``json_safe`` data)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")


def created_at_of(run_id: str, summary: dict[str, Any]) -> str:
    """ISO 8601 UTC creation time of a run: from the ``YYYYMMDDTHHMMSSZ`` prefix of its id
    (``goldstress.settings.new_run_id``), else the summary's ``generated_at``, else ``""``."""
    m = _TIMESTAMP_RE.match(run_id)
    if m:
        try:
            return datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).isoformat()
        except ValueError:
            pass
    return str(summary.get("generated_at", ""))


def mc_scenario_name(token: dict[str, Any]) -> str | None:
    """Name of the Monte Carlo scenario of one token's summary (``mc_champion``), if any."""
    scenarios = token.get("scenarios", {})
    if "mc_champion" in scenarios:
        return "mc_champion"
    return next((n for n, m in scenarios.items() if isinstance(m, dict) and m.get("kind") == "monte_carlo"), None)


def listing_item(run_id: str, summary: dict[str, Any]) -> dict[str, Any]:
    """The ``GET /api/runs`` item of one run: id, times, champion, tokens and headline figures.

    Headline per token (Monte Carlo scenario): ``holder_value_var_99_10d_frac`` (99% 10-day VaR
    of holder value, fraction of day-0 value), ``p_backing_below_1``, ``p_liquidation``,
    ``expected_bad_debt_usd``, ``reserve_per_token_var_99_10d_frac`` (99% 10-day VaR of the
    reserve value per token outstanding), and the worst single-path scenario: ``worst_scenario``
    (name), ``worst_scenario_by`` (the figure that ranks them), ``worst_scenario_value`` (that
    figure, a fraction) and ``worst_scenario_window_days``; with the Monte Carlo tail apart,
    ``monte_carlo_tail_figure``, ``monte_carlo_tail_value`` and ``monte_carlo_tail_horizon_days``
    (``tokens.<T>.worst_scenario`` of the summary). Values are copied as stored (a number, or
    ``"inf"``/``"nan"`` strings, or None when absent).
    """
    tokens = summary.get("tokens", {}) or {}
    headline: dict[str, Any] = {}
    for symbol, t in tokens.items():
        mc = t.get("scenarios", {}).get(mc_scenario_name(t) or "", {})
        worst = t.get("worst_scenario") or {}
        tail = worst.get("monte_carlo_tail") or {}
        headline[symbol] = {
            "holder_value_var_99_10d_frac": mc.get("holder_value_var_99_10d_frac"),
            "reserve_per_token_var_99_10d_frac": mc.get("reserve_per_token_var_99_10d_frac"),
            "p_backing_below_1": mc.get("p_backing_below_1"),
            "p_liquidation": mc.get("p_liquidation"),
            "expected_bad_debt_usd": mc.get("expected_bad_debt_usd"),
            "worst_scenario": worst.get("scenario"),
            "worst_scenario_by": worst.get("by"),
            "worst_scenario_value": worst.get("value"),
            "worst_scenario_window_days": worst.get("window_days"),
            "monte_carlo_tail_figure": tail.get("figure"),
            "monte_carlo_tail_value": tail.get("value"),
            "monte_carlo_tail_horizon_days": tail.get("horizon_days"),
        }
    champion = summary.get("champion") or {}
    holdout = ((summary.get("var_backtest") or {}).get("holdout") or {}).get("0.99") or {}
    return {
        "run_id": run_id,
        "created_at": created_at_of(run_id, summary),
        "generated_at": summary.get("generated_at"),
        "champion_version": champion.get("version"),
        "champion_candidate": champion.get("candidate"),
        "tokens": list(tokens),
        "headline": headline,
        "basel_zone_last_250d": holdout.get("basel_zone_last_250d"),
    }


class ReportStoreUnavailable(RuntimeError):
    """The report store could not be listed: the service cannot tell which runs exist."""

    def __init__(self, root: str, cause: BaseException) -> None:
        super().__init__(f"report store unavailable: cannot list {root} ({type(cause).__name__})")
        self.root = root


@dataclass(frozen=True)
class RunEntry:
    """One listed (complete, immutable) run."""

    run_id: str
    created_at: str
    item: dict[str, Any]
    tokens: tuple[str, ...]
    scenarios: frozenset[str]
    sizes: dict[str, int] = field(default_factory=dict, compare=False)
    """Recorded size of each file of the run (name relative to the run folder)."""


@dataclass(frozen=True)
class _Snapshot:
    version: int
    entries: tuple[RunEntry, ...]  # newest first
    by_id: dict[str, RunEntry]
    tokens: frozenset[str]
    scenarios: frozenset[str]
    metrics: frozenset[str]
    pending: frozenset[str] = field(default_factory=frozenset)


class RunIndex:
    """Cached index of the runs under ``settings.storage.report_url``.

    Parameters
    ----------
    settings : Settings
        ``report_url``/``storage_options`` locate the runs; ``service_index_ttl_s`` bounds how
        long a listing is reused.
    summary_cache_size : int
        Summaries (raw bytes) kept in memory; older ones are re-read from storage on demand.

    Only files whose real path lies inside the local report folder are read (:meth:`confined`):
    a file or run folder linked from outside is treated as absent (404, no path in the answer).

    Reads that can hit storage (``refresh``, ``summary``, ``fan``, ``timeseries``, the
    streams) are blocking: call them from a worker thread in async code. ``is_stale`` and the
    ``*_cached`` lookups never touch storage.
    """

    def __init__(self, settings: Settings, summary_cache_size: int = 128) -> None:
        self.settings = settings
        self.catalog = Catalog.of(settings)
        self.root = self.catalog.report_url.rstrip("/")
        self.ttl_s = float(settings.service.index_ttl_s)
        self._local_root = storage.local_path(self.root)
        self._lock = threading.Lock()
        self._snap = _Snapshot(0, (), {}, frozenset(), frozenset(), frozenset())
        self._refreshed_at = -float("inf")
        self._root_mtime: int | None = None
        self._summaries = LRUCache(summary_cache_size)
        self._fans = LRUCache(summary_cache_size)
        self._series = LRUCache(256)
        self._listing_bytes: dict[tuple[int, int], bytes] = {}
        self._unavailable: ReportStoreUnavailable | None = None

    # ------------------------------------------------------------------ confinement
    def confined(self, url: str) -> bool:
        """Whether ``url`` may be read: for a local report folder, its real path (symlinks
        resolved, at every level) must lie inside the folder's real path; object-store URLs
        have no symlinks and always pass. Never raises."""
        if self._local_root is None:
            return True
        local = storage.local_path(url)
        if local is None:
            return False
        root = os.path.realpath(self._local_root)
        real = os.path.realpath(local)
        return real == root or real.startswith(root.rstrip(os.sep) + os.sep)

    def _refuse(self, url: str) -> None:
        log.warning("run index: refused %s: it resolves outside the report folder", url)

    # ------------------------------------------------------------------ index
    def check_available(self) -> None:
        """Raise :class:`ReportStoreUnavailable` when the last listing of the report store failed
        (no I/O): an unreachable store is not "no runs"."""
        if self._unavailable is not None:
            raise self._unavailable

    def _mtime(self) -> int | None:
        if self._local_root is None:
            return None
        try:
            return os.stat(self._local_root).st_mtime_ns
        except OSError:
            return None

    def staleness(self) -> str | None:
        """Why the listing should be refreshed, or None when it is fresh (no storage I/O).

        ``"never"``: not listed yet; ``"changed"``: the local report folder's modification time
        changed (a run folder was added or removed); ``"ttl"``: ``service_index_ttl_s`` passed.
        """
        if self._refreshed_at == -float("inf"):
            return "never"
        if self._local_root is not None and self._mtime() != self._root_mtime:
            return "changed"
        if time.monotonic() - self._refreshed_at >= self.ttl_s:
            return "ttl"
        return None

    def is_stale(self) -> bool:
        """Whether the listing should be refreshed (see :meth:`staleness`)."""
        return self.staleness() is not None

    def refresh(self, force: bool = False) -> None:
        """Re-list the report folder and index new complete runs (blocking I/O).

        Runs already indexed are not read again, only checked to still have their marker (a run
        being rewritten drops out); folders not published whole stay pending and are checked
        again at the next refresh. When the store cannot be listed the error is
        logged in one line and :meth:`check_available` raises until a listing succeeds.
        """
        with self._lock:
            if not force and not self.is_stale():
                return  # another thread refreshed while this one waited
            mtime = self._mtime()
            started = time.monotonic()
            try:
                names = self._list_names()
                names -= self._unpublished(names & set(self._snap.by_id))
            except Exception as exc:  # storage unreachable: readers are told so (503)
                self._unavailable = ReportStoreUnavailable(self.root, exc)
                log.warning("run index: cannot list %s: %s", self.root, exc)
                self._refreshed_at = started
                return
            self._unavailable = None
            old = self._snap
            by_id = {n: e for n, e in old.by_id.items() if n in names}
            tokens, scenarios, metrics = set(old.tokens), set(old.scenarios), set(old.metrics)
            pending = set()
            for name in names:
                if name in by_id:
                    continue
                entry = self._load_entry(name, tokens, scenarios, metrics)
                if entry is None:
                    pending.add(name)
                else:
                    by_id[name] = entry
            changed = set(by_id) != set(old.by_id)
            if changed:
                entries = tuple(sorted(by_id.values(), key=lambda e: (e.created_at, e.run_id), reverse=True))
                self._snap = _Snapshot(
                    old.version + 1,
                    entries,
                    by_id,
                    frozenset(tokens),
                    frozenset(scenarios),
                    frozenset(metrics),
                    frozenset(pending),
                )
                self._listing_bytes = {}
            else:
                self._snap = _Snapshot(
                    old.version, old.entries, old.by_id, old.tokens, old.scenarios, old.metrics, frozenset(pending)
                )
            self._refreshed_at = started
            self._root_mtime = mtime

    def _list_names(self) -> set[str]:
        fs, path = storage.filesystem(self.root, self.settings)
        fs.invalidate_cache(path)  # object stores (s3fs) cache listings: always list afresh
        if not fs.exists(path):
            return set()
        out = set()
        for info in fs.ls(path, detail=True):
            if info.get("type") != "directory":
                continue
            name = info["name"].rstrip("/").rsplit("/", 1)[-1]
            if RUN_ID_RE.match(name) and name not in RESERVED_FOLDERS:
                out.add(name)
        return out

    def _unpublished(self, run_ids: set[str]) -> set[str]:
        """Indexed runs whose marker was removed since (their files are being rewritten)."""
        gone = set()
        for run_id in run_ids:
            fs, path = storage.filesystem(self.catalog.run_marker(run_id), self.settings)
            fs.invalidate_cache(path)
            if not fs.exists(path):
                gone.add(run_id)
        return gone

    def _load_entry(self, run_id: str, tokens: set[str], scenarios: set[str], metrics: set[str]) -> RunEntry | None:
        url = self.catalog.run_file(run_id, "summary.json")
        if not self.confined(url):
            self._refuse(url)
            return None
        try:
            marker = published(run_id, self.settings)
            if marker is None:  # not published (yet), or its files no longer match the marker
                return None
            raw = storage.read_bytes(url, self.settings)
            if len(raw) != recorded_size(marker, "summary.json"):
                return None
            summary = json.loads(raw)
            if not isinstance(summary, dict):
                raise ValueError("summary.json is not a JSON object")
        except FileNotFoundError:
            return None
        except Exception as exc:  # corrupt: retry at the next refresh
            log.warning("run index: %s not readable: %s", url, exc)
            return None
        run_scen: set[str] = set()
        for symbol, t in (summary.get("tokens") or {}).items():
            tokens.add(symbol)
            for name, m in (t.get("scenarios") or {}).items():
                run_scen.add(name)
                if isinstance(m, dict):
                    metrics.update(k for k, v in m.items() if not isinstance(v, (dict, list)))
        scenarios.update(run_scen)
        self._summaries.put(run_id, raw)
        item = listing_item(run_id, summary)
        sizes = {str(f["name"]): int(f["size"]) for f in marker["files"]}
        return RunEntry(run_id, item["created_at"], item, tuple(item["tokens"]), frozenset(run_scen), sizes)

    # ------------------------------------------------------------------ cached reads
    def entries(self) -> tuple[RunEntry, ...]:
        """Indexed runs, newest first (no I/O)."""
        return self._snap.entries

    def get(self, run_id: str) -> RunEntry | None:
        """The indexed run ``run_id`` or None (no I/O)."""
        return self._snap.by_id.get(run_id)

    def listing_bytes(self, limit: int) -> bytes:
        """``{"runs": [...]}`` of the newest ``limit`` runs as JSON bytes (cached per index
        version and limit; no I/O)."""
        snap = self._snap
        key = (snap.version, int(limit))
        cached = self._listing_bytes.get(key)
        if cached is None:
            cached = dumps({"runs": [e.item for e in snap.entries[:limit]]})
            if len(self._listing_bytes) > 64:
                self._listing_bytes = {}
            self._listing_bytes[key] = cached
        return cached

    def latest_bytes(self) -> bytes | None:
        """The newest run's listing item as JSON bytes, None when there is no run (no I/O)."""
        entries = self._snap.entries
        if not entries:
            return None
        key = (self._snap.version, -1)
        cached = self._listing_bytes.get(key)
        if cached is None:
            cached = dumps(entries[0].item)
            self._listing_bytes[key] = cached
        return cached

    def summary_cached(self, run_id: str) -> bytes | None:
        """The stored summary bytes if they are in memory (no I/O)."""
        return self._summaries.get(run_id)

    # ------------------------------------------------------------------ reads that may hit storage
    def summary_bytes(self, run_id: str) -> bytes | None:
        """``summary.json`` of an indexed run, bytes as stored; None if the run is not indexed
        (or its folder was deleted since)."""
        if run_id not in self._snap.by_id:
            return None
        raw = self._summaries.get(run_id)
        if raw is None:
            url = self.catalog.run_file(run_id, "summary.json")
            if not self.confined(url):
                self._refuse(url)
                return None
            try:
                raw = storage.read_bytes(url, self.settings)
            except FileNotFoundError:  # deleted since it was indexed
                return None
            self._summaries.put(run_id, raw)
        return raw

    def fan_cached(self, run_id: str) -> bytes | None:
        """The fan chart bytes if they are in memory (no I/O)."""
        return self._fans.get(run_id)

    def fan_bytes(self, run_id: str) -> bytes | None:
        """Fan chart of the run's Monte Carlo gold paths from ``manifest.json``:
        ``{"scenario", "description", "unit", "paths", "days": [0..T], "quantiles": {"q0.05":
        [...], ...}}`` (USD per troy ounce by day). None when the run is not indexed or has no
        Monte Carlo scenario with fan quantiles."""
        if run_id not in self._snap.by_id:
            return None
        cached = self._fans.get(run_id)
        if cached is not None:
            return cached or None
        url = self.catalog.run_file(run_id, "manifest.json")
        try:
            if not self.confined(url):
                self._refuse(url)
                raise FileNotFoundError(url)
            manifest = storage.read_json(url, self.settings)
        except FileNotFoundError:
            manifest = {}
        res = next(
            (
                r
                for r in manifest.get("scenarios", [])
                if (r.get("scenario") or {}).get("kind") == "monte_carlo" and r.get("fan_quantiles")
            ),
            None,
        )
        if res is None:
            out = b""
        else:
            fq = res["fan_quantiles"]
            n = len(next(iter(fq.values())))
            out = dumps(
                {
                    "scenario": res["scenario"]["name"],
                    "description": res["scenario"].get("description"),
                    "unit": "usd_per_oz",
                    "paths": (manifest.get("settings") or {}).get("fan_chart_paths"),
                    "days": list(range(n)),
                    "quantiles": fq,
                }
            )
        self._fans.put(run_id, out)
        return out or None

    def timeseries_bytes(self, token: str, metric: str, scenario: str) -> bytes | None:
        """``{"token", "metric", "scenario", "points": [{"run_id", "created_at", "value"}]}``,
        oldest run first, over the runs whose summary has
        ``tokens.<token>.scenarios.<scenario>.<metric>`` (a scalar). None when no run has it."""
        snap = self._snap
        if token not in snap.tokens or scenario not in snap.scenarios or metric not in snap.metrics:
            return None
        key = (token, metric, scenario)
        cached = self._series.get(key)
        if cached is not None and cached[0] == snap.version:
            return cached[1]
        values: dict[str, Any] = dict(cached[2]) if cached is not None else {}
        for e in snap.entries:
            if e.run_id in values or token not in e.tokens or scenario not in e.scenarios:
                continue
            raw = self.summary_bytes(e.run_id)
            if raw is None:
                continue
            summary = json.loads(raw)
            m = ((summary.get("tokens", {}).get(token) or {}).get("scenarios", {}).get(scenario)) or {}
            v = m.get(metric, _MISSING)
            values[e.run_id] = v if not isinstance(v, (dict, list)) else _MISSING
        points = [
            {"run_id": e.run_id, "created_at": e.created_at, "value": values[e.run_id]}
            for e in reversed(snap.entries)
            if values.get(e.run_id, _MISSING) is not _MISSING
        ]
        out = None if not points else dumps({"token": token, "metric": metric, "scenario": scenario, "points": points})
        self._series.put(key, (snap.version, out, values))
        return out

    def _stream(self, url: str, expected_size: int | None) -> tuple[Iterator[bytes], int] | None:
        if not self.confined(url):
            self._refuse(url)
            return None
        fs, path = storage.filesystem(url, self.settings)
        if self._local_root is not None:  # open the checked real path, not the link
            path = os.path.realpath(path)
        try:
            size = int(fs.info(path)["size"])
        except FileNotFoundError:
            return None
        if size != expected_size:  # not the published file (rewritten or cut short since)
            log.warning("run index: %s has %d bytes, %s were published", url, size, expected_size)
            return None

        def chunks() -> Iterator[bytes]:
            with fs.open(path, "rb") as fh:
                while True:
                    block = fh.read(_CHUNK_BYTES)
                    if not block:
                        return
                    yield block

        return chunks(), size

    def report_stream(self, run_id: str) -> tuple[Iterator[bytes], int] | None:
        """``(chunks, size)`` of the run's ``report.html``; None if absent, not indexed, or not
        of its published size."""
        entry = self._snap.by_id.get(run_id)
        if entry is None:
            return None
        return self._stream(self.catalog.run_file(run_id, "report.html"), entry.sizes.get("report.html"))

    def results_stream(self, run_id: str, scenario: str) -> tuple[Iterator[bytes], int] | None:
        """``(chunks, size)`` of ``results/<scenario>.parquet``; None unless the run is indexed
        and its summary lists the scenario, and the file has its published size."""
        entry = self._snap.by_id.get(run_id)
        if entry is None or scenario not in entry.scenarios or not SCENARIO_RE.match(scenario):
            return None
        return self._stream(self.catalog.result(run_id, scenario), entry.sizes.get(f"results/{scenario}.parquet"))


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


_MISSING = _Missing()
