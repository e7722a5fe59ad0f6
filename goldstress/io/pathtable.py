"""A scenario's per-path Parquet table read token by token and column by column, so a summary of a
million paths holds a few columns of one token in memory, not the table."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

from goldstress.io import storage
from goldstress.settings import Settings


class TokenColumns:
    """One token's rows of a per-path table as a read-only, column-at-a-time frame: ``len(view)``
    (paths), ``"col" in view``, ``view.columns`` and ``view["col"]`` (a float or string
    ``pd.Series`` of the token's rows in file order, read from its row groups on first use; the
    last ``cache`` columns stay in memory). Enough of the DataFrame interface for
    :func:`models.metrics.distribution_metrics`. ``KeyError`` for an absent column."""

    def __init__(self, parquet: Any, row_groups: list[int], cache: int = 4) -> None:
        self._pf = parquet
        self._row_groups = row_groups
        self._cache: OrderedDict[str, pd.Series] = OrderedDict()
        self._size = cache
        self.columns = pd.Index(parquet.schema_arrow.names)
        self._rows = sum(parquet.metadata.row_group(i).num_rows for i in row_groups)

    def __len__(self) -> int:
        return self._rows

    def __contains__(self, column: object) -> bool:
        return column in self.columns

    def __getitem__(self, column: str) -> pd.Series:
        if column not in self.columns:
            raise KeyError(column)
        if column in self._cache:
            self._cache.move_to_end(column)
            return self._cache[column]
        table = self._pf.read_row_groups(self._row_groups, columns=[column])
        series = table.column(0).to_pandas().rename(column)
        self._cache[column] = series
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return series


@contextmanager
def token_views(url: str, settings: Settings, token_column: str = "token") -> Iterator[dict[str, TokenColumns]]:
    """Context giving ``{token: view}`` for each token of the per-path Parquet table at ``url``, in
    order of first appearance; the file stays open inside the context.

    Each row group must hold one token (its ``token_column`` statistics have min == max), as the
    simulate stage writes them. Raises ``ValueError`` naming the file and the row group otherwise,
    and ``FileNotFoundError`` for a missing table."""
    import pyarrow.parquet as pq

    fs, path = storage.filesystem(url, settings)
    with fs.open(path, "rb") as fh:
        pf = pq.ParquetFile(fh)
        col = pf.schema_arrow.get_field_index(token_column)
        groups: dict[str, list[int]] = {}
        for i in range(pf.metadata.num_row_groups):
            stats = pf.metadata.row_group(i).column(col).statistics
            if stats is None or not stats.has_min_max or stats.min != stats.max:
                raise ValueError(f"{url}: row group {i} does not hold a single {token_column} (statistics {stats})")
            groups.setdefault(str(stats.min), []).append(i)
        yield {token: TokenColumns(pf, row_groups) for token, row_groups in groups.items()}
