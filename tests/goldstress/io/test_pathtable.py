"""The per-path table read token by token and column by column equals the table read whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from goldstress.io import storage
from goldstress.io.pathtable import token_views
from goldstress.settings import get_settings


def _frame(token: str, first: int, n: int, rng: np.random.Generator) -> pd.DataFrame:
    x = rng.standard_normal(n)
    x[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({"scenario": "mc", "token": token, "path": np.arange(first, first + n), "loss": x})


def test_views_equal_the_whole_table_per_token(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    url = str(tmp_path / "t.parquet")
    frames = [_frame(tok, first, 700, rng) for first in (0, 700, 1400) for tok in ("PAXG", "XAUT", "GUSD")]
    with storage.parquet_writer(url, get_settings()) as write:
        for df in frames:
            write(df)
    whole = pd.read_parquet(url)
    with token_views(url, get_settings()) as views:
        assert list(views) == ["PAXG", "XAUT", "GUSD"]
        for token, view in views.items():
            expected = whole[whole["token"] == token].reset_index(drop=True)
            assert len(view) == 2_100 and "loss" in view and "nope" not in view
            assert list(view.columns) == list(whole.columns)
            for col in ("path", "loss", "path", "token", "scenario", "loss"):  # re-reads past the cache
                pd.testing.assert_series_equal(view[col], expected[col], check_exact=True)
            assert view["loss"].quantile(0.9) == expected["loss"].quantile(0.9)
            with pytest.raises(KeyError):
                view["nope"]


def test_a_row_group_with_two_tokens_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    url = str(tmp_path / "mixed.parquet")
    mixed = pd.concat([_frame("PAXG", 0, 10, rng), _frame("XAUT", 0, 10, rng)], ignore_index=True)
    with storage.parquet_writer(url, get_settings()) as write:
        write(_frame("PAXG", 0, 10, rng))
        write(mixed)
    with pytest.raises(ValueError, match=r"mixed\.parquet: row group 1 does not hold a single token"):
        with token_views(url, get_settings()):
            pass


def test_histograms_read_token_by_token_equal_those_of_the_whole_table(tmp_path: Path) -> None:
    """The report's histograms from the column-at-a-time views equal numpy's histogram of each
    token's finite values between their 0.1% and 99.5% quantiles, read from the whole table."""
    from goldstress.figures import FIGURE_COLUMNS, monte_carlo_histograms

    rng = np.random.default_rng(5)
    url = str(tmp_path / "mc.parquet")
    cols = FIGURE_COLUMNS[1:]
    with storage.parquet_writer(url, get_settings()) as write:
        for _ in range(2):
            for tok in ("GRAM", "GUSD"):
                df = pd.DataFrame({"token": tok, **{c: rng.standard_t(4, 500) for c in cols}})
                df.loc[df.index[:7], "backing_ratio_end"] = np.inf  # no supply left on these paths
                write(df)
    whole = pd.read_parquet(url)
    with token_views(url, get_settings()) as views:
        hists = monte_carlo_histograms(views)
    assert list(hists) == ["GRAM", "GUSD"]
    for tok, by_col in hists.items():
        for col in cols:
            x = whole.loc[whole["token"] == tok, col].to_numpy()
            x = x[np.isfinite(x)]
            lo, hi = np.quantile(x, [0.001, 0.995])
            counts, edges = np.histogram(np.clip(x, lo, hi), bins=40, range=(lo, hi))
            shares, got_edges = by_col[col]
            np.testing.assert_array_equal(got_edges, edges)
            np.testing.assert_array_equal(shares, counts / x.size)
            assert shares.sum() == pytest.approx(1.0)


def test_text_columns_are_dictionary_encoded_floats_byte_stream_split_and_the_frames_read_back_equal(
    tmp_path: Path,
) -> None:
    # a float column of distinct values gains nothing from a dictionary page; the token column does
    import pyarrow.parquet as pq

    rng = np.random.default_rng(6)
    url = str(tmp_path / "enc.parquet")
    frames = [_frame(tok, 0, 300, rng) for tok in ("PAXG", "XAUT")]
    with storage.parquet_writer(url, get_settings()) as write:
        for df in frames:
            write(df)
    meta = pq.ParquetFile(url).metadata
    for g in range(meta.num_row_groups):
        enc = {meta.row_group(g).column(i).path_in_schema: meta.row_group(g).column(i).encodings for i in range(4)}
        assert "RLE_DICTIONARY" in enc["token"] and "RLE_DICTIONARY" in enc["scenario"]
        assert "RLE_DICTIONARY" not in enc["loss"] and "RLE_DICTIONARY" not in enc["path"]
        assert "BYTE_STREAM_SPLIT" in enc["loss"] and "BYTE_STREAM_SPLIT" not in enc["path"]
        assert {meta.row_group(g).column(i).compression for i in range(4)} == {"LZ4"}  # pyarrow writes LZ4_RAW
    pd.testing.assert_frame_equal(pd.read_parquet(url), pd.concat(frames, ignore_index=True), check_exact=True)
