"""Price series read for the premium calibration, with their lineage: from a file in the data
folder through the importer, or from the curated table built from the same file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from goldstress.catalog import Catalog
from goldstress.records import frame_sha256
from goldstress.settings import Settings


def calibration_inputs_present(settings: Settings) -> bool:
    """True when ``data_dir`` holds the calibration's gold file and at least one token file of
    ``settings.calibration.sets`` (the ``calibrate`` flow has something to fit)."""
    if settings.data.data_dir is None:
        return False
    d = Path(settings.data.data_dir)
    return (d / settings.calibration.gold_file).is_file() and any(
        (d / c.file).is_file() for c in settings.calibration.sets.values()
    )


class PriceInput(dict):
    """A price series with its lineage: keys ``series`` (pd.Series, date-indexed UTC midnight,
    USD per oz for gold / USD per token for tokens), ``file``, ``origin`` (``data_dir`` file or
    curated table URL), ``sha256`` (of the raw file bytes, or of the curated ``date,value`` CSV),
    ``source_tag`` (curated source prefix, e.g. ``broker_close``), ``dropped`` (rows the importer
    removed, with reasons), ``first_date``, ``last_date``, ``n``."""


def load_price_input(file_name: str, dataset: str, settings: Settings) -> PriceInput | None:
    """One price series through the importer, or the curated table of ``dataset`` built from the
    same file; None when neither exists.

    ``dataset`` is ``"gold"`` or ``"token_<symbol>"``. With ``settings.data.data_dir`` and the file in
    it: bytes read (:func:`goldstress.io.sources.read_data_file`), layout detected from the header,
    :func:`goldstress.io.layouts.standardise` with the quirks registry. Otherwise the curated
    ``<store_url>/curated/<dataset>.parquet`` is used only if its ``source`` ends with
    ``:<file_name>``. Raises ``ValueError`` (from the importer) for a file in no known layout or
    with bad content, naming the file.
    """
    from goldstress.io.layouts import detect_layout, standardise
    from goldstress.io.sources import read_data_file

    value_col = "usd_per_oz" if dataset == "gold" else "close_usd"
    if settings.data.data_dir is not None and (Path(settings.data.data_dir) / file_name).is_file():
        path = Path(settings.data.data_dir) / file_name
        data = read_data_file(path)
        header = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip().lstrip("\ufeff")
        try:
            layout = detect_layout([h.strip() for h in header.split(",")])
        except ValueError as exc:
            raise ValueError(f"{file_name}: {exc}") from None
        result = standardise(data, layout, dataset, str(path))
        frame, origin, sha = result.frame, str(path), hashlib.sha256(data).hexdigest()
        dropped = [e for e in result.log if e.get("action") == "drop_row"]
    else:
        from goldstress.io.validation import load_curated

        try:
            frame = load_curated(dataset, settings)
        except FileNotFoundError:
            return None
        if not frame["source"].astype(str).str.endswith(f":{file_name}").all():
            return None
        origin = Catalog.of(settings).curated(dataset)
        sha, dropped = frame_sha256(frame, value_col), []
    if frame.empty:
        raise ValueError(f"{file_name}: no rows left after import")
    series = pd.Series(
        frame[value_col].to_numpy(dtype=float), index=pd.DatetimeIndex(frame["date"], name="date"), name=value_col
    )
    return PriceInput(
        series=series,
        file=file_name,
        origin=origin,
        sha256=sha,
        source_tag=str(frame["source"].iloc[0]).split(":", 1)[0],
        dropped=dropped,
        first_date=str(series.index[0].date()),
        last_date=str(series.index[-1].date()),
        n=int(series.size),
    )
