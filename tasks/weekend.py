"""Weekend gap task: each calibration set's token against the broker gold bars of
``settings.calibration.gold_file`` (:mod:`models.weekend`): weekend move against gold's reopening,
the holder's weekend VaR/ES, gold's own weekend gap over the whole bar history, and the premium
while gold and the primary market are shut. Absent files are reported, never fatal."""

from __future__ import annotations

import logging
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from goldstress.io.bars import NoBarOpensError, load_broker_bars
from goldstress.io.prices import load_price_input
from goldstress.settings import Settings
from models import weekend as wk

THRESHOLDS = (0.005, 0.01)
"""|difference| and |premium| levels whose exceedance shares are reported (fractions: 0.5%, 1%)."""

UNITS = {
    "horizon": "weekend, Friday 24:00 UTC to Sunday 24:00 UTC (= Monday 00:00 UTC) for the token; "
    "Friday close to the Monday bar's open (00:00 UTC) for gold",
    "var_es": "loss fraction of holder value over the weekend, 1 - value at Sunday 24:00 UTC / value at Friday "
    "24:00 UTC; empirical VaR = lower quantile of the weekend losses at the confidence level in the key "
    "(var_99 = 99% confidence), ES = Acerbi & Tasche (2002) mean of the losses beyond it; "
    "tail_weekends_<level> = weekends the tail rests on, n x (1 - level)",
    "gold_gap": "the same loss fraction for a holder of gold from the broker's Friday close to its Monday open",
    "tracking": "token weekend log return minus gold's Friday-close-to-Monday-open log return, per weekend "
    "(log-return units, 0.01 ~ 1%); shares count weekends with |difference| beyond 0.5% and 1%",
    "premium": "token close / (troy ounces per token x gold USD per oz) - 1, fraction; weekend days against "
    "Friday's gold close and against Monday's gold open, weekdays against the same day's gold close; "
    "q01/q99 numpy 'linear' quantiles; shares count days with |premium| beyond 0.5% and 1%",
}
"""The units of the section in words, stored in it (``weekend.units``) and quoted by the report."""


def _logger() -> Any:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def _gold(settings: Settings) -> tuple[Any, dict[str, Any]]:
    """The broker bars (or None) and the gold entry of the section."""
    file = settings.calibration.gold_file
    entry: dict[str, Any] = {"file": file}
    try:
        inp = load_broker_bars(file, settings)
    except NoBarOpensError as exc:
        return None, entry | {"status": "not measured", "note": str(exc)}
    if inp is None:
        return None, entry | {
            "status": "not measured",
            "note": f"{file} is not in data_dir: gold's weekend gap and the token comparisons are not measured",
        }
    table = wk.gold_gap_table(inp["bars"], inp["removed_dates"])
    entry |= {
        "status": "measured",
        "sha256": inp["sha256"],
        "first_date": inp["first_date"],
        "last_date": inp["last_date"],
        "n_bars": inp["n"],
        "n_bars_removed_on_import": len(inp["dropped"]),
        "opens_removed_on_import": [e["date"] for e in inp["nulled_opens"]],
        "gap_var_es": wk.weekend_var_es(table["gold_gap_log_return"], settings.risk.var_levels),
        "skipped": wk.skip_counts(table["skip"]),
    }
    return inp, entry


@task(name="measure-weekend-gap", cache_policy=NO_CACHE)
def measure_weekend(settings: Settings) -> dict[str, Any]:
    """The ``weekend`` section of the summary (JSON-ready except non-finite floats).

    Returns ``{"status", "units", "skip_reasons", "gold", "tokens"}``: ``gold`` the broker file
    (``settings.calibration.gold_file``) with its Friday-close-to-Monday-open gap VaR/ES over the
    whole bar history; ``tokens`` one entry per ``settings.calibration.sets`` item with the
    holder's weekend VaR/ES (:func:`models.weekend.weekend_var_es`), the tracking against gold
    (:func:`models.weekend.weekend_tracking`) and the premium (:func:`models.weekend.weekend_premium`).
    A file that is not in ``data_dir`` (or a gold file without bar opens) gives an entry with
    ``status: "not measured"`` and a ``note`` saying why. Raises ``ValueError`` naming the file
    (from the importer) for a file with bad content.
    """
    log = _logger()
    out: dict[str, Any] = {"units": UNITS, "skip_reasons": dict(wk.SKIP_REASONS)}
    if settings.data.data_dir is None:
        log.warning("weekend gap: data_dir is not set, nothing measured")
        return out | {"status": "not measured", "note": "data_dir is not set", "gold": {}, "tokens": {}}
    gold, out["gold"] = _gold(settings)
    if gold is None:
        log.warning("weekend gap: %s", out["gold"]["note"])
    tokens: dict[str, Any] = {}
    for name, cset in settings.calibration.sets.items():
        entry: dict[str, Any] = {"token": cset.token.upper(), "file": cset.file, "oz_per_token": cset.oz_per_token}
        tok = load_price_input(cset.file, f"token_{cset.token}", settings)
        if tok is None:
            tokens[name] = entry | {"status": "not measured", "note": f"{cset.file} is not in data_dir"}
            log.warning("weekend gap %s: token file %s is not in data_dir", name, cset.file)
            continue
        bars = None if gold is None else gold["bars"]
        removed = () if gold is None else gold["removed_dates"]
        table = wk.weekend_table(tok["series"], bars, removed)
        entry |= {
            "status": "measured",
            "sha256": tok["sha256"],
            "first_date": tok["first_date"],
            "last_date": tok["last_date"],
            "holder_weekend": wk.weekend_var_es(table["token_log_return"], settings.risk.var_levels),
        }
        if gold is None:
            entry["note"] = "no gold bars: only the token's own weekend VaR/ES is measured"
        else:
            entry["tracking"] = wk.weekend_tracking(table, THRESHOLDS)
            entry["premium"] = wk.weekend_premium(tok["series"], bars, cset.oz_per_token, THRESHOLDS)
            tr = entry["tracking"]
            log.info(
                "weekend gap %s: %d weekends vs gold, correlation %.3f, tracking error mean %.4f sd %.4f",
                name,
                tr["n_weekends"],
                tr["correlation"],
                tr["tracking_error_mean"],
                tr["tracking_error_sd"],
            )
        tokens[name] = entry
    out["tokens"] = tokens
    out["status"] = "measured"
    return out
