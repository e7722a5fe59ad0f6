"""The Monte Carlo task runs its reserve-backed tokens in one reused workspace: its per-path
tables are those of runs that each allocate their own records."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pandas as pd

from goldstress.settings import settings_with
from models.scenarios import ScenarioDef
from models.token.reserve_backed import ReserveBackedToken
from models.token.spec import load_token_spec
from tasks.simulate import _take_handed_off, simulate_paths
from tests.flows.test_dask import ROOT, _champion


def test_the_reused_workspace_gives_the_tables_of_fresh_buffers(monkeypatch) -> None:
    specs = [load_token_spec(ROOT / "specs" / f"{s}.toml") for s in ("gram", "paxg", "xaut", "dgx", "gusd_cdp")]
    # paths 500..1499 in chunks of at most 400 paths: chunks of unequal sizes in one workspace
    settings = settings_with(monte_carlo={"paths": 10_000, "chunk_paths": 400})
    sc = ScenarioDef(name="mc_champion", kind="monte_carlo", description="test")
    args = (sc, 4000.0, _champion(), specs, settings, "2026-08-14", 500, 1_000)
    workspaces: list[Any] = []
    run = ReserveBackedToken.run

    def record(self: ReserveBackedToken, *a: Any, **k: Any) -> Any:
        workspaces.append(k.get("workspace"))
        return run(self, *a, **k)

    monkeypatch.setattr(ReserveBackedToken, "run", record)
    reused = simulate_paths.fn(*args)
    # one buffer for every token of a chunk, kept for the next chunks unless they are longer
    assert len(workspaces) >= 3 * 4 and len(workspaces) % 4 == 0
    assert all(isinstance(w, np.ndarray) for w in workspaces)
    per_chunk = [workspaces[i : i + 4] for i in range(0, len(workspaces), 4)]
    assert all(all(w is c[0] for w in c) for c in per_chunk)
    assert len({id(c[0]) for c in per_chunk}) < len(per_chunk)

    def fresh(self: ReserveBackedToken, *a: Any, **k: Any) -> Any:
        return run(self, *a, **{**k, "workspace": None})

    monkeypatch.setattr(ReserveBackedToken, "run", fresh)
    plain = simulate_paths.fn(*args)
    assert len(reused["tables"]) == len(plain["tables"]) == 5
    for a, b in zip(reused["tables"], plain["tables"], strict=True):
        assert a.num_rows == 1_000 and a["path"].to_pylist() == list(range(500, 1_500))
        pd.testing.assert_frame_equal(a.to_pandas(), b.to_pandas(), check_exact=True)  # NaN equal to NaN
    assert np.array_equal(reused["fan"], plain["fan"])


def test_tables_handed_off_through_a_file_are_those_returned(tmp_path) -> None:
    specs = [load_token_spec(ROOT / "specs" / f"{s}.toml") for s in ("gram", "gusd_cdp")]
    settings = settings_with(monte_carlo={"paths": 10_000, "chunk_paths": 400})
    sc = ScenarioDef(name="mc_champion", kind="monte_carlo", description="test")
    args = (sc, 4000.0, _champion(), specs, settings, "2026-08-14", 500, 600)
    kept = simulate_paths.fn(*args)
    handed = simulate_paths.fn(*args, str(tmp_path))
    assert handed["tables"] == str(tmp_path / "500.arrow")
    read = list(_take_handed_off(handed["tables"]))
    assert [t.num_rows for t in read] == [600, 600]
    assert [t["token"][0].as_py() for t in read] == ["GRAM", "GUSD"]
    for a, b in zip(read, kept["tables"], strict=True):
        assert a.schema == b.schema
        pd.testing.assert_frame_equal(a.to_pandas(), b.to_pandas(), check_exact=True)
    assert np.array_equal(handed["fan"], kept["fan"])
    assert list(tmp_path.iterdir()) == []  # the reader deletes the file


def test_a_handed_off_task_holds_one_chunk_of_rows_at_a_time(tmp_path) -> None:
    specs = [load_token_spec(ROOT / "specs" / f"{s}.toml") for s in ("gram", "gusd_cdp")]
    settings = settings_with(monte_carlo={"paths": 10_000, "chunk_paths": 400})
    sc = ScenarioDef(name="mc_champion", kind="monte_carlo", description="test")
    champion = _champion()
    simulate_paths.fn(sc, 4000.0, champion, specs, settings, "2026-08-14", 0, 400)  # compile, warm caches

    def traced_peak(n: int, hand_off: str | None) -> tuple[int, Any]:
        tracemalloc.start()
        try:
            out = simulate_paths.fn(sc, 4000.0, champion, specs, settings, "2026-08-14", 0, n, hand_off)
            return tracemalloc.get_traced_memory()[1], out
        finally:
            tracemalloc.stop()

    small, _ = traced_peak(1_600, str(tmp_path))
    large, out = traced_peak(8_000, str(tmp_path))
    tables = list(_take_handed_off(out["tables"]))
    assert [t.num_rows for t in tables] == [8_000, 8_000]
    rows_bytes = sum(t.nbytes for t in tables)  # what a task holding every row would hold
    assert rows_bytes > 8e6
    # five times the paths: the task's peak grows by far less than the rows it wrote
    assert large - small < 0.2 * rows_bytes
    returned, _ = traced_peak(8_000, None)  # without a hand-off folder the rows are returned
    assert returned - large > 0.8 * rows_bytes
