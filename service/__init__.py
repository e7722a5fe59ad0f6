"""goldstress stakeholder service: a FastAPI app over the pipeline's run folders.

Start it with ``make serve`` (``python -m service.serve``, which runs uvicorn on
``service.app:create_app`` after its start-up checks).
Modules, routes and authentication: docs/platform/service.md.
"""
