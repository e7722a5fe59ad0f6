"""Weekend gap risk of a gold token: its Friday-to-Sunday move against gold's reopening gap,
the holder's weekend VaR/ES, and its premium while gold and the primary market are shut.

Clock (UTC): a token close is at 24:00 of its day; a gold bar of a day opens at 00:00 and closes at
24:00. A weekend is keyed by its Friday F: token close F -> close F+2 (Sunday 24:00 = Monday
00:00), gold close F -> open of the bar of F+3 (Monday 00:00). Returns are natural-log returns;
losses are fractions of the value at the start (``1 - exp(r)``). Method and sources:
docs/models/weekend.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from models.checks import check_daily_prices, check_level
from models.risk import var_es

__all__ = [
    "SKIP_REASONS",
    "check_bars",
    "gold_gap_table",
    "level_label",
    "skip_counts",
    "threshold_label",
    "weekend_premium",
    "weekend_table",
    "weekend_tracking",
    "weekend_var_es",
]

SKIP_REASONS: dict[str, str] = {
    "no_token_close_friday": "no token close on the Friday (hole in the token file or a row removed on import)",
    "no_token_close_sunday": "no token close on the Sunday (hole in the token file or a row removed on import)",
    "outside_gold_history": "the weekend lies before the first or after the last gold bar (removed bars counted)",
    "gold_bar_removed_friday": "the gold bar of the Friday was removed on import (a flagged bar)",
    "gold_holiday_friday": "no gold bar on the Friday (market holiday, e.g. Good Friday)",
    "gold_bar_removed_monday": "the gold bar of the Monday was removed on import (a flagged bar)",
    "gold_holiday_monday": "no gold bar on the Monday (market holiday, e.g. Easter Monday): the gap is not measured",
    "gold_open_removed_monday": "the open of the Monday bar was removed on import (a known bad print)",
}
"""Why a weekend was skipped, by the ``skip`` code of :func:`weekend_table` / :func:`gold_gap_table`."""

_DAY = pd.Timedelta(days=1)


def level_label(level: float) -> str:
    """Key suffix of a confidence level: 0.99 -> ``"99"``, 0.975 -> ``"97.5"``. Raises
    ``ValueError`` unless ``level`` is a fraction in (0, 1)."""
    return f"{round(check_level(level) * 100, 6):g}"


def threshold_label(threshold: float) -> str:
    """Key suffix of a threshold given as a fraction: 0.005 -> ``"0.5pct"``, 0.01 -> ``"1pct"``.
    Raises ``ValueError`` unless ``threshold`` is a finite number > 0."""
    t = float(threshold)
    if not np.isfinite(t) or t <= 0:
        raise ValueError(f"threshold: expected a fraction > 0 (0.005 = 0.5%), got {threshold!r}")
    return f"{round(t * 100, 6):g}pct"


def check_bars(bars: Any, name: str = "bars") -> pd.DataFrame:
    """Daily gold bars checked and reduced to columns ``open`` and ``close`` (USD per troy ounce).

    ``bars`` is a DataFrame indexed by unique, increasing midnight dates (the UTC day of the bar),
    with float columns ``close`` (finite, > 0) and ``open`` (> 0, or NaN where a known bad open
    was removed). Raises ``ValueError`` naming the column and the row otherwise.
    """
    if not isinstance(bars, pd.DataFrame):
        raise ValueError(f"{name}: expected a DataFrame with columns open, close; got {type(bars).__name__}")
    for col in ("open", "close"):
        if col not in bars.columns:
            raise ValueError(f"{name}: no column '{col}' (columns: {', '.join(map(str, bars.columns))})")
    check_daily_prices(bars["close"], f"{name}.close")
    opens = pd.to_numeric(bars["open"], errors="coerce").to_numpy(dtype=float)
    bad = (pd.isna(opens) & bars["open"].notna().to_numpy()) | np.isinf(opens) | (opens <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}.open: row {bars.index[i]!r} has price {bars['open'].iloc[i]!r}; must be > 0 or NaN")
    return pd.DataFrame({"open": opens, "close": bars["close"].to_numpy(dtype=float)}, index=bars.index)


def _same_tz(a: pd.Index, b: pd.Index, what: str) -> None:
    if str(getattr(a, "tz", None)) != str(getattr(b, "tz", None)):
        raise ValueError(f"{what}: time zones differ ({getattr(a, 'tz', None)} vs {getattr(b, 'tz', None)})")


def _fridays(first: pd.Timestamp, last: pd.Timestamp) -> pd.DatetimeIndex:
    """Every Friday F with ``first <= F`` and ``F <= last`` (empty when none)."""
    start = first + (4 - first.weekday()) % 7 * _DAY
    if start > last:
        return pd.DatetimeIndex([], tz=first.tz, name="friday")
    return pd.date_range(start, last, freq="7D", name="friday")


def _span(bars: pd.DataFrame, removed: set[pd.Timestamp]) -> tuple[Any, Any]:
    """First and last day of the bar history, counting the bars removed on import."""
    days = list(bars.index[[0, -1]]) if len(bars) else []
    days += list(removed)
    return (min(days), max(days)) if days else (None, None)


def _gold_legs(fridays: pd.DatetimeIndex, bars: pd.DataFrame, removed: set[pd.Timestamp]) -> pd.DataFrame:
    """Gold close of each Friday, open of the following Monday, their log gap and the skip code."""
    mondays = fridays + 3 * _DAY
    fri_close = bars["close"].reindex(fridays).to_numpy()
    mon_open = bars["open"].reindex(mondays).to_numpy()
    mon_bar = bars["close"].reindex(mondays).notna().to_numpy()
    skip = np.full(len(fridays), "", dtype=object)
    first, last = _span(bars, removed)
    if first is not None:
        outside = (fridays < first) | (mondays > last)
    else:
        outside = np.ones(len(fridays), dtype=bool)
    for i, (f, m) in enumerate(zip(fridays, mondays)):
        if outside[i]:
            skip[i] = "outside_gold_history"
        elif np.isnan(fri_close[i]):
            skip[i] = "gold_bar_removed_friday" if f in removed else "gold_holiday_friday"
        elif not mon_bar[i]:
            skip[i] = "gold_bar_removed_monday" if m in removed else "gold_holiday_monday"
        elif np.isnan(mon_open[i]):
            skip[i] = "gold_open_removed_monday"
    return pd.DataFrame(
        {
            "gold_fri_close": fri_close,
            "gold_mon_open": mon_open,
            "gold_gap_log_return": np.log(mon_open / fri_close),
            "gold_skip": skip,
        },
        index=fridays,
    )


def _removed_set(removed_bar_dates: Iterable[Any], tz: Any) -> set[pd.Timestamp]:
    out = set()
    for d in removed_bar_dates:
        ts = pd.Timestamp(d)
        if ts.tz is None and tz is not None:
            ts = ts.tz_localize(tz)
        out.add(ts.normalize())
    return out


def gold_gap_table(bars: pd.DataFrame, removed_bar_dates: Iterable[Any] = ()) -> pd.DataFrame:
    """Gold's weekend gap for every weekend of the bar history: Friday close -> Monday open.

    Parameters
    ----------
    bars : pd.DataFrame, shape (m, >= 2)
        Daily gold bars (:func:`check_bars`): ``open``, ``close`` in USD per troy ounce, on the UTC
        day of the bar; bars that are not trading days (short Sunday sessions, partial snapshots)
        must already be removed.
    removed_bar_dates : iterable of date-like
        Days whose bar was removed on import: a weekend missing such a bar is skipped as
        ``gold_bar_removed_*`` rather than as a holiday.

    Returns
    -------
    pd.DataFrame, one row per Friday F from the first bar to the last bar minus 3 days (bars
    removed on import count for this span), index
    ``friday``; columns ``gold_fri_close``, ``gold_mon_open`` (USD/oz, NaN when no bar),
    ``gold_gap_log_return`` (``ln(open(F+3) / close(F))``, NaN when skipped) and ``skip`` ("" or
    a code of :data:`SKIP_REASONS`).

    Raises
    ------
    ValueError
        As :func:`check_bars`.
    """
    b = check_bars(bars)
    if b.empty:
        raise ValueError("bars: no rows")
    removed = _removed_set(removed_bar_dates, b.index.tz)
    first, last = _span(b, removed)
    fridays = _fridays(first, last - 3 * _DAY)
    legs = _gold_legs(fridays, b, removed)
    return legs.rename(columns={"gold_skip": "skip"})


def weekend_table(
    token_close: pd.Series, bars: pd.DataFrame | None = None, removed_bar_dates: Iterable[Any] = ()
) -> pd.DataFrame:
    """Every weekend of a token's history, with gold's reopening gap beside it when bars are given.

    Parameters
    ----------
    token_close : pd.Series, shape (n,)
        Token closes, USD per token, on increasing midnight dates (the UTC day whose 24:00 close it
        is), finite and > 0. Weekend rows are expected (tokens trade every day).
    bars : pd.DataFrame | None
        Gold bars as for :func:`gold_gap_table` (same index time zone as ``token_close``); None:
        only the token legs are filled and every weekend is skipped as ``outside_gold_history``.
    removed_bar_dates : iterable of date-like
        As for :func:`gold_gap_table`.

    Returns
    -------
    pd.DataFrame, one row per Friday F with ``F >= first token date`` and ``F + 2 <= last token
    date``, index ``friday``; columns ``token_fri_close``, ``token_sat_close``, ``token_sun_close``
    (USD per token, NaN when missing), ``token_log_return`` (``ln(close(F+2) / close(F))``, NaN
    when a close is missing), ``gold_fri_close``, ``gold_mon_open``, ``gold_gap_log_return`` (as
    :func:`gold_gap_table`), ``skip`` (the first reason, in the order of :data:`SKIP_REASONS`, why
    the token move cannot be set against gold's gap; "" when it can).

    Raises
    ------
    ValueError
        A bad ``token_close`` (not a daily Series, unsorted or duplicate dates, NaN or price <= 0),
        bad ``bars`` (:func:`check_bars`), or time zones that differ.
    """
    check_daily_prices(token_close, "token_close")
    tok = token_close.astype(float)
    if tok.empty:
        raise ValueError("token_close: no rows")
    fridays = _fridays(tok.index[0], tok.index[-1] - 2 * _DAY)
    fri = tok.reindex(fridays).to_numpy()
    sat = tok.reindex(fridays + _DAY).to_numpy()
    sun = tok.reindex(fridays + 2 * _DAY).to_numpy()
    if bars is not None:
        b = check_bars(bars)
        _same_tz(tok.index, b.index, "token_close/bars")
    else:
        b = pd.DataFrame({"open": [], "close": []}, index=pd.DatetimeIndex([], tz=tok.index.tz))
    legs = _gold_legs(fridays, b, _removed_set(removed_bar_dates, tok.index.tz))
    skip = np.where(np.isnan(fri), "no_token_close_friday", np.where(np.isnan(sun), "no_token_close_sunday", ""))
    skip = np.where(skip == "", legs["gold_skip"].to_numpy(dtype=object), skip).astype(object)
    return pd.DataFrame(
        {
            "token_fri_close": fri,
            "token_sat_close": sat,
            "token_sun_close": sun,
            "token_log_return": np.log(sun / fri),
            "gold_fri_close": legs["gold_fri_close"].to_numpy(),
            "gold_mon_open": legs["gold_mon_open"].to_numpy(),
            "gold_gap_log_return": legs["gold_gap_log_return"].to_numpy(),
            "skip": skip,
        },
        index=fridays,
    )


def skip_counts(skip: pd.Series) -> dict[str, int]:
    """Weekends skipped, by code of :data:`SKIP_REASONS` (in that order; codes with no weekend
    left out), from the ``skip`` column of :func:`weekend_table` or :func:`gold_gap_table`."""
    counts = skip[skip != ""].value_counts()
    return {code: int(counts[code]) for code in SKIP_REASONS if code in counts.index}


def _day(ts: Any) -> str | None:
    return None if ts is None else str(pd.Timestamp(ts).date())


def weekend_tracking(table: pd.DataFrame, thresholds: Sequence[float] = (0.005, 0.01)) -> dict[str, Any]:
    """The token's weekend move against gold's reopening gap (its weekend tracking error).

    Over the rows of :func:`weekend_table` with ``skip == ""``: ``d = token_log_return -
    gold_gap_log_return`` per weekend. Returns ``n_weekends``, ``first_friday``,
    ``last_friday``, ``correlation`` (Pearson, of the two log returns; NaN with fewer than 3
    weekends or a constant leg), ``token_sd`` / ``gold_sd`` (sample sd, ddof 1, of each leg),
    ``tracking_error_mean`` / ``tracking_error_sd`` (mean and sample sd of ``d``, log-return
    units, 0.01 ~ 1%), ``max_abs_difference`` with its ``max_abs_difference_friday``,
    ``share_abs_difference_above_<t>`` for each threshold (share of weekends with ``|d| > t``,
    strict), and ``skipped`` (weekends dropped, by :data:`SKIP_REASONS` code). NaN where
    undefined (no weekend). Raises ``ValueError`` when a column of :func:`weekend_table` is
    missing or a threshold is not > 0.
    """
    for col in ("token_log_return", "gold_gap_log_return", "skip"):
        if col not in table.columns:
            raise ValueError(f"table: no column '{col}' (expected the output of weekend_table)")
    labels = [threshold_label(t) for t in thresholds]
    ok = table[table["skip"] == ""]
    tok = ok["token_log_return"].to_numpy(dtype=float)
    gold = ok["gold_gap_log_return"].to_numpy(dtype=float)
    d = tok - gold
    n = int(d.size)
    nan = float("nan")
    corr = nan
    if n >= 3 and np.std(tok) > 0 and np.std(gold) > 0:
        corr = float(np.corrcoef(tok, gold)[0, 1])
    out: dict[str, Any] = {
        "n_weekends": n,
        "first_friday": _day(ok.index[0]) if n else None,
        "last_friday": _day(ok.index[-1]) if n else None,
        "correlation": corr,
        "token_sd": float(np.std(tok, ddof=1)) if n >= 2 else nan,
        "gold_sd": float(np.std(gold, ddof=1)) if n >= 2 else nan,
        "tracking_error_mean": float(d.mean()) if n else nan,
        "tracking_error_sd": float(np.std(d, ddof=1)) if n >= 2 else nan,
        "max_abs_difference": float(np.abs(d).max()) if n else nan,
        "max_abs_difference_friday": _day(ok.index[int(np.argmax(np.abs(d)))]) if n else None,
    }
    for t, lab in zip(thresholds, labels):
        out[f"share_abs_difference_above_{lab}"] = float(np.mean(np.abs(d) > t)) if n else nan
    out["skipped"] = skip_counts(table["skip"])
    return out


def weekend_var_es(log_returns: pd.Series, levels: Sequence[float] = (0.95, 0.99)) -> dict[str, Any]:
    """Empirical VaR and ES of a weekend log return, as a loss fraction of the value at the start.

    Parameters
    ----------
    log_returns : pd.Series, shape (n,)
        One natural-log return per weekend, indexed by its Friday; NaN rows (skipped weekends)
        are ignored.
    levels : sequence of float
        Confidence levels in (0, 1), e.g. (0.95, 0.99).

    Returns
    -------
    dict
        ``n_weekends``, ``first_friday``, ``last_friday``; per level ``var_<L>`` and ``es_<L>``
        (``L = level_label(level)``): with losses ``1 - exp(r)``, the VaR is the lower empirical
        ``level``-quantile of the losses and the ES the Acerbi & Tasche (2002) estimator
        (:func:`models.risk.var_es`); ``tail_weekends_<L>`` = ``n * (1 - level)``, the number of
        weekends the tail estimate rests on; ``worst_loss`` and ``worst_loss_friday``. NaN / None
        when there is no weekend.

    Raises
    ------
    ValueError
        ``log_returns`` is not a Series or has an infinite value; a level outside (0, 1).
    """
    if not isinstance(log_returns, pd.Series):
        raise ValueError(f"log_returns: expected a pandas Series, got {type(log_returns).__name__}")
    r = log_returns.dropna().astype(float)
    if not np.isfinite(r.to_numpy()).all():
        raise ValueError("log_returns: infinite value (a price of 0?)")
    labels = [level_label(lv) for lv in levels]
    losses = -np.expm1(r.to_numpy())
    n = int(losses.size)
    out: dict[str, Any] = {
        "n_weekends": n,
        "first_friday": _day(r.index[0]) if n else None,
        "last_friday": _day(r.index[-1]) if n else None,
    }
    for lv, lab in zip(levels, labels):
        v, e = var_es(losses, lv) if n else (float("nan"), float("nan"))
        out[f"var_{lab}"] = v
        out[f"es_{lab}"] = e
        out[f"tail_weekends_{lab}"] = n * (1.0 - float(lv))
    out["worst_loss"] = float(losses.max()) if n else float("nan")
    out["worst_loss_friday"] = _day(r.index[int(np.argmax(losses))]) if n else None
    return out


def _premium_stats(p: np.ndarray, thresholds: Sequence[float], labels: list[str]) -> dict[str, Any]:
    n = int(p.size)
    nan = float("nan")
    out: dict[str, Any] = {
        "n_days": n,
        "mean": float(p.mean()) if n else nan,
        "sd": float(np.std(p, ddof=1)) if n >= 2 else nan,
    }
    q = np.quantile(p, [0.01, 0.99]) if n else (nan, nan)
    out["q01"], out["q99"] = float(q[0]), float(q[1])
    for t, lab in zip(thresholds, labels):
        out[f"share_abs_above_{lab}"] = float(np.mean(np.abs(p) > t)) if n else nan
    return out


def weekend_premium(
    token_close: pd.Series,
    bars: pd.DataFrame,
    oz_per_token: float = 1.0,
    thresholds: Sequence[float] = (0.005, 0.01),
) -> dict[str, Any]:
    """The token premium on Saturday and Sunday, against gold's last close and its next open,
    beside the weekday premium against the same day's gold close.

    Premium ``p = token_close / (oz_per_token * gold) - 1`` (fraction, 0.01 = +1%). Weekend
    sample: the weekends (Friday F) that have both a gold close on F and a gold bar on F+3, so
    both references use the same days; Saturday is F+1, Sunday F+2 (a day without a token close
    is left out). References: ``friday_close`` = gold close of F (the last gold price while the
    market is shut), ``monday_open`` = gold open of F+3 (00:00 UTC Monday, the clock of the
    Sunday 24:00 close). Weekday sample: token closes Monday-Friday with a gold bar that day,
    against its close.

    Parameters
    ----------
    token_close : pd.Series, shape (n,)
        As for :func:`weekend_table`.
    bars : pd.DataFrame
        As for :func:`gold_gap_table`, same time zone as ``token_close``.
    oz_per_token : float
        Troy ounces of gold per token (> 0; 1.0 for PAXG and XAUT).
    thresholds : sequence of float
        |premium| levels whose exceedance share is reported (fractions, > 0).

    Returns
    -------
    dict
        Groups ``weekday_vs_same_day_close``, ``saturday_vs_friday_close``,
        ``sunday_vs_friday_close``, ``weekend_vs_friday_close`` (Saturday and Sunday pooled),
        ``saturday_vs_monday_open``, ``sunday_vs_monday_open``, ``weekend_vs_monday_open``; each
        ``n_days``, ``mean``, ``sd`` (ddof 1), ``q01`` / ``q99`` (``numpy.quantile`` default
        "linear" method, Hyndman & Fan 1996 type 7), ``share_abs_above_<t>`` (share with
        ``|p| > t``, strict). ``n_weekends``: weekends in the weekend sample.

    Raises
    ------
    ValueError
        As :func:`weekend_table`, or ``oz_per_token`` not a number > 0.
    """
    try:
        oz = float(oz_per_token)
    except (TypeError, ValueError):
        raise ValueError(f"oz_per_token: expected a number > 0, got {oz_per_token!r}") from None
    if not np.isfinite(oz) or oz <= 0:
        raise ValueError(f"oz_per_token: expected a number > 0, got {oz_per_token!r}")
    labels = [threshold_label(t) for t in thresholds]
    table = weekend_table(token_close, bars)
    b = check_bars(bars)
    both = table[np.isfinite(table["gold_fri_close"]) & np.isfinite(table["gold_mon_open"])]
    out: dict[str, Any] = {"n_weekends": int(len(both))}
    tok = token_close.astype(float)
    wd = tok[tok.index.day_of_week < 5]
    gold_same = b["close"].reindex(wd.index)
    has = gold_same.notna().to_numpy()
    out["weekday_vs_same_day_close"] = _premium_stats(
        wd.to_numpy()[has] / (oz * gold_same.to_numpy()[has]) - 1.0, thresholds, labels
    )
    for ref, col in (("friday_close", "gold_fri_close"), ("monday_open", "gold_mon_open")):
        gold = both[col].to_numpy()
        sat = both["token_sat_close"].to_numpy() / (oz * gold) - 1.0
        sun = both["token_sun_close"].to_numpy() / (oz * gold) - 1.0
        sat, sun = sat[np.isfinite(sat)], sun[np.isfinite(sun)]
        out[f"saturday_vs_{ref}"] = _premium_stats(sat, thresholds, labels)
        out[f"sunday_vs_{ref}"] = _premium_stats(sun, thresholds, labels)
        out[f"weekend_vs_{ref}"] = _premium_stats(np.concatenate([sat, sun]), thresholds, labels)
    return out
