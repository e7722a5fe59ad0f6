# goldstress image: the pipeline, a Prefect server or worker, MLflow, the stakeholder service.
#   docker build -t goldstress:0.1.0 .
#   docker run --rm -v "$PWD/data:/data:ro" -v "$PWD/reports:/reports" \
#       -e GOLDSTRESS_DATA_DIR=/data -e GOLDSTRESS_REPORT_URL=/reports goldstress:0.1.0
# More (object storage, the service, compose, Kubernetes): docs/platform/deploy.md.

# ---- builder: a virtual environment from the runtime lock (no test or lint tools)
FROM python:3.11.11-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements-runtime.lock /tmp/requirements-runtime.lock
RUN /opt/venv/bin/pip install --no-deps -r /tmp/requirements-runtime.lock

# ---- runtime: the venv and the code, run as an unprivileged user
FROM python:3.11.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=120 \
    NUMBA_CACHE_DIR=/app/var/numba-cache
# (the compiled engine is cached in /app/var: compiled once, about 6 s for the general loop and each
# token structure the Monte Carlo meets, then loaded)
WORKDIR /app
RUN useradd --create-home --uid 10001 --user-group goldstress \
    && mkdir -p /app/var /reports && chown goldstress:goldstress /app/var /reports
COPY --from=builder /opt/venv /opt/venv
COPY goldstress ./goldstress
COPY models ./models
COPY tasks ./tasks
COPY flows ./flows
COPY service ./service
COPY expectations ./expectations
COPY specs ./specs
COPY prefect.yaml pyproject.toml ./
USER 10001:10001

# the stakeholder service (python -m service.serve --host 0.0.0.0 --port 8000)
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/api/health', timeout=4)"]

# every command (the pipeline, prefect, mlflow, the service) starts with telemetry off
ENTRYPOINT ["python", "-m", "goldstress.telemetry"]
CMD ["python", "-m", "goldstress", "run"]
