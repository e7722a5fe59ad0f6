"""Flow ``whatif``: a large what-if submitted through the stakeholder service.

The service triggers the deployment ``whatif/whatif`` (``settings.service.whatif_deployment``)
with the validated request; this flow runs the same computation as the service's in-process
path (``goldstress.whatif.compute_whatif``) and writes
``<report_url>/whatif/<flow run id>/result.json``, which ``GET /api/whatif/{id}`` returns.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, runtime

from goldstress.settings import settings_with
from tasks.whatif import compute, model_for, parse_request, spec_for, store


@flow(name="whatif")
def whatif(request: dict[str, Any], whatif_id: str | None = None) -> dict[str, Any]:
    """Run one what-if (body of ``POST /api/whatif``: ``token_spec`` or ``token_preset``,
    ``shock_frac``, ``shock_horizon_days``, ``n_paths``, ``horizon_days``, ...) and store its
    result under ``whatif_id`` (default: this flow run's id). Returns ``{"id", "result_url"}``.
    Fails (``pydantic.ValidationError``/``ValueError`` naming the field) on a bad request, and
    with ``goldstress.whatif.NoModelError`` when no model exists yet."""
    settings = settings_with()
    wid = whatif_id or str(runtime.flow_run.id)
    req = parse_request(request)
    spec = spec_for(req, settings)
    model = model_for(settings)
    result = compute(req, spec, model, settings)
    url = store(wid, "deployment", result, settings)
    return {"id": wid, "result_url": url}
