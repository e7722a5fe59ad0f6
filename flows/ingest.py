"""Flow ``ingest``: acquire every dataset and keep an immutable raw snapshot of each."""

from __future__ import annotations

from prefect import flow

from goldstress.settings import RunOptions
from tasks.ingest import acquire_gold, acquire_token


@flow(name="ingest")
def ingest(options: RunOptions = RunOptions()) -> list[dict]:
    """Snapshot the gold series and each token's prices; returns the snapshot references."""
    settings = options.settings()
    symbols = settings.data.token_files if settings.data.data_dir is not None else settings.data.coingecko_ids
    refs = [acquire_gold(settings)] + [acquire_token(symbol, settings) for symbol in symbols]
    return [ref.model_dump(mode="json") for ref in refs]
