"""Inputs checked before any work: the settings and the token specs, together, one line per problem
naming the setting (its environment variable) or the file and field. Rules: docs/platform/preflight.md."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from goldstress.settings import Settings, env_name
from models.token.spec import load_token_spec

__all__ = ["InputProblems", "settings_error_lines", "check_inputs", "require_valid_inputs"]


class InputProblems(ValueError):
    """The inputs cannot be used; ``lines`` holds one message per problem (each names what to fix)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def _env_prefix_of(title: str) -> str | None:
    for field in Settings.model_fields.values():
        cls = field.annotation
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls.__name__ == title:
            prefix = cls.model_config.get("env_prefix")
            return str(prefix) if prefix else None
    return None


def settings_error_lines(exc: ValidationError) -> list[str]:
    """One line per error of a settings section's ``pydantic.ValidationError``: the environment
    variable of the field (``<prefix><FIELD>``, when the section is known) and pydantic's message,
    without the input value (settings may hold secrets)."""
    prefix = _env_prefix_of(exc.title)
    lines = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = [str(p) for p in err.get("loc", ())]
        name = f"{prefix}{loc[0]}".upper() if prefix and loc else exc.title
        where = "".join(f"[{p}]" for p in loc[1:])
        lines.append(f"setting {name}{where}: {err.get('msg', 'invalid')}")
    return lines


def _is_bare_name(value: str) -> bool:
    return bool(value) and Path(value).name == value and value not in (".", "..")


def _file_settings(settings: Settings) -> Iterable[tuple[str, str]]:
    d, c = settings.data, settings.calibration
    yield env_name("data", "gold_file"), d.gold_file
    for sym, name in d.token_files.items():
        yield f"{env_name('data', 'token_files')}[{sym}]", name
    for sym, pair in d.supply_proxy_files.items():
        yield f"{env_name('data', 'supply_proxy_files')}[{sym}]", pair[0]
    yield env_name("calibration", "gold_file"), c.gold_file
    if c.reference_gold_file:
        yield env_name("calibration", "reference_gold_file"), c.reference_gold_file
    for name, cset in c.sets.items():
        yield f"{env_name('calibration', 'sets')}[{name}].file", cset.file


def check_inputs(settings: Settings) -> list[str]:
    """Every problem of the settings and token specs that would stop or mislead a run, one line
    each (empty when none):

    - file settings are file names inside the data folder, never paths (``../x``, ``/etc/x``);
    - the store and report URLs are not empty;
    - each risk horizon is a trading day count from 1 to the Monte Carlo horizon;
    - the recommendation grid's redeem fees are fractions in [0, 1), its gates in (0, 1] or none;
    - at least one token spec; each file exists and is a valid spec (the file and field named,
      magnitudes within the schema's bounds); no two specs share a symbol.

    Raises nothing: problems are returned, not raised."""
    out: list[str] = []
    for env, value in _file_settings(settings):
        if not _is_bare_name(value):
            out.append(f"setting {env}: {value!r} is a path; give the name of a file inside the data folder")
    for field in ("store_url", "report_url"):
        if not str(getattr(settings.storage, field)).strip():
            out.append(f"setting {env_name('storage', field)}: empty; give a folder or an s3:// URL")
    mc_h = settings.monte_carlo.horizon_days
    for h in settings.risk.horizons_days:
        if not 1 <= h <= mc_h:
            out.append(
                f"setting {env_name('risk', 'horizons_days')}: {h} is not a horizon from 1 to the Monte Carlo "
                f"horizon ({env_name('monte_carlo', 'horizon_days')} = {mc_h}) trading days"
            )
    if not settings.risk.horizons_days:
        out.append(f"setting {env_name('risk', 'horizons_days')}: empty; give at least one horizon")
    for fee in settings.liquidity.recommend_redeem_fees:
        if not 0.0 <= fee < 1.0:
            out.append(
                f"setting {env_name('liquidity', 'recommend_redeem_fees')}: {fee} is not a fee fraction in [0, 1)"
            )
    for gate in settings.liquidity.recommend_redemption_limits:
        if gate is not None and not 0.0 < gate <= 1.0:
            out.append(
                f"setting {env_name('liquidity', 'recommend_redemption_limits')}: {gate} is not a share in (0, 1] or none"
            )
    specs = settings.scenarios.token_specs
    if not specs:
        out.append(f"setting {env_name('scenarios', 'token_specs')}: empty; give at least one token spec file")
    seen: dict[str, Path] = {}
    for path in specs:
        p = Path(path)
        if not p.is_file():
            out.append(f"token spec {p}: no such file ({env_name('scenarios', 'token_specs')})")
            continue
        try:
            spec: Any = load_token_spec(p)
        except ValueError as exc:
            out.append(" ".join(str(exc).split()))
            continue
        if spec.symbol in seen:
            out.append(
                f"token spec {p}: symbol {spec.symbol} is also the symbol of {seen[spec.symbol]}; symbols must differ"
            )
        else:
            seen[spec.symbol] = p
    return out


def require_valid_inputs() -> Settings:
    """The process settings, checked: :func:`goldstress.settings.get_settings` and
    :func:`check_inputs`. Raises :class:`InputProblems` with one line per problem (a settings
    section that does not validate, or any problem found)."""
    from goldstress.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:
        raise InputProblems(settings_error_lines(exc)) from None
    problems = check_inputs(settings)
    if problems:
        raise InputProblems(problems)
    return settings
