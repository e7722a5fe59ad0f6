"""Acquisition tasks: fetch or import each dataset and keep an immutable raw snapshot of it.

With ``settings.data.data_dir`` set, the CSV files it holds are imported (layouts detected from the
header); without it, the LBMA gold price JSON feed and CoinGecko's market_chart API are fetched.
Either way the exact bytes received are stored once, content-addressed, with fetch time, origin
and sha256 (``goldstress.io.snapshots``); nothing downstream reads a source directly.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from goldstress.io.snapshots import SnapshotRef, import_file, write_snapshot
from goldstress.io.sources import (
    fetch_coingecko_market_chart,
    fetch_lbma,
)
from goldstress.settings import Settings


@task(name="acquire-gold", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
def acquire_gold(settings: Settings) -> SnapshotRef:
    """Acquire the gold price series: the configured CSV in ``data_dir`` or the LBMA PM feed."""
    if settings.data.data_dir is not None:
        return import_file(Path(settings.data.data_dir) / settings.data.gold_file, "gold", settings)
    data = fetch_lbma(settings.data.lbma_pm_url, settings)
    return write_snapshot(
        data,
        source="lbma_pm_json",
        origin=settings.data.lbma_pm_url,
        dataset="gold",
        layout="lbma_json",
        settings=settings,
    )


@task(name="acquire-token", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
def acquire_token(symbol: str, settings: Settings) -> SnapshotRef:
    """Acquire one token's daily USD prices: the configured CSV or CoinGecko market_chart."""
    dataset = f"token_{symbol}"
    if settings.data.data_dir is not None:
        return import_file(Path(settings.data.data_dir) / settings.data.token_files[symbol], dataset, settings)
    coin = settings.data.coingecko_ids[symbol]
    data = fetch_coingecko_market_chart(coin, settings, days=settings.data.coingecko_days)
    return write_snapshot(
        data,
        source=f"coingecko:{coin}",
        origin=f"{settings.data.coingecko_url}/coins/{coin}/market_chart",
        dataset=dataset,
        layout="coingecko_market_chart",
        settings=settings,
    )
