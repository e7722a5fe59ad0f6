# goldstress runtime image: the pipeline, a Prefect worker, or the MLflow UI.
#   docker build -t goldstress .
#   docker run --rm -v $PWD/data:/data -e GOLDSTRESS_DATA_DIR=/data goldstress            # one stress test
#   docker run --rm -e PREFECT_API_URL=http://prefect:4200/api goldstress \
#       prefect worker start --pool goldstress-pool                                        # a worker
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=120 \
    PYTHONPATH=/app
WORKDIR /app

COPY requirements.lock ./
RUN pip install --no-deps -r requirements.lock

COPY goldstress ./goldstress
COPY models ./models
COPY tasks ./tasks
COPY flows ./flows
COPY service ./service
COPY expectations ./expectations
COPY specs ./specs
COPY prefect.yaml pyproject.toml README.md ./

RUN useradd --create-home --uid 10001 goldstress && mkdir -p /app/var /app/reports && chown -R goldstress /app
USER goldstress

# every command (the pipeline, prefect, mlflow, uvicorn) starts with telemetry off
ENTRYPOINT ["python", "-m", "goldstress.telemetry"]
CMD ["python", "-m", "goldstress", "run"]
