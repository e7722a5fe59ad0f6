"""Records the pipeline writes and reads: JSON-safe conversion, and the fingerprints of the data
that a model was fitted or scored on."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np
import pandas as pd


def json_safe(obj: Any) -> Any:
    """Replace non-finite floats by strings ``"inf"``, ``"-inf"``, ``"nan"`` so summary.json is
    strict JSON (a backing ratio is +inf when no supply is left outstanding)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return "nan" if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def frame_sha256(frame: pd.DataFrame, value_col: str) -> str:
    """sha256 of the ``date,<value_col>`` CSV of ``frame`` (pandas' default float format): the
    fingerprint of the (date, value) pairs a model was trained on. ``KeyError`` if a column is
    missing."""
    payload = frame[["date", value_col]].to_csv(index=False).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()


def premia_sha256(premia: pd.Series) -> str:
    """sha256 of the ``date,premium_frac`` CSV (ISO dates, repr floats) of a premium series: the
    fingerprint of exactly the data a process was fitted or scored on."""
    buf = io.StringIO()
    pd.DataFrame({"date": premia.index.strftime("%Y-%m-%d"), "premium_frac": premia.to_numpy()}).to_csv(
        buf, index=False, float_format="%.17g"
    )
    return hashlib.sha256(buf.getvalue().encode("utf-8")).hexdigest()
