"""goldstress stakeholder service: a FastAPI app over the pipeline's run folders.

Start it with ``make serve`` (``uvicorn --factory service.app:create_app``). Modules:

- :mod:`service.app`    the ``create_app`` factory: routes, middleware, static dashboard;
- :mod:`service.auth`   password hashes, JWTs, API keys, roles, start-up checks;
- :mod:`service.runs`   the cached index of run folders under ``settings.storage.report_url``;
- :mod:`goldstress.whatif` the what-if computation (token model under a shock and Monte Carlo);
- :mod:`service.limits` token-bucket rate limits and the request-body size limit;
- :mod:`service.hashpw` ``python -m service.hashpw``: make a password hash or an API key.

The service imports ``goldstress.settings``, ``tasks`` and ``models``; it never imports
``flows`` (large what-ifs trigger the Prefect deployment by name).
"""
