"""goldstress stakeholder service: a FastAPI app over the pipeline's run folders.

Start it with ``make serve`` (``uvicorn --factory service.app:create_app``).
Modules, routes and authentication: docs/platform/service.md.
"""
