"""Prefect tasks of the ``whatif`` flow: the stakeholder service's what-if computation
(``goldstress.whatif``) wrapped with Prefect for runs submitted through the deployment."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from goldstress.settings import Settings
from goldstress.whatif import (
    WhatIfModel,
    WhatIfRequest,
    compute_whatif,
    load_model,
    load_presets,
    resolve_spec,
    store_result,
)


@task(name="whatif-parse-request", cache_policy=NO_CACHE)
def parse_request(request: dict[str, Any]) -> WhatIfRequest:
    """Validate a what-if request body; ``pydantic.ValidationError`` names the field."""
    return WhatIfRequest.model_validate(request)


@task(name="whatif-resolve-spec", cache_policy=NO_CACHE)
def spec_for(req: WhatIfRequest, settings: Settings) -> Any:
    """The token spec of the request: inline, or the named preset."""
    return resolve_spec(req, load_presets(settings) if req.token_spec is None else {})


@task(name="whatif-load-model", cache_policy=NO_CACHE)
def model_for(settings: Settings) -> WhatIfModel:
    """The gold-returns model (registered champion, else the documented fallback)."""
    return load_model(settings)


@task(name="whatif-compute", cache_policy=NO_CACHE)
def compute(req: WhatIfRequest, spec: Any, model: WhatIfModel, settings: Settings) -> dict[str, Any]:
    """Shock and Monte Carlo outcome of the what-if (``goldstress.whatif.compute_whatif``)."""
    return compute_whatif(req, spec, model, settings)


@task(name="whatif-store-result", cache_policy=NO_CACHE)
def store(whatif_id: str, mode: str, result: dict[str, Any], settings: Settings) -> str:
    """Write ``<report_url>/whatif/<id>/result.json``; returns its URL."""
    return store_result(whatif_id, mode, result, settings)
