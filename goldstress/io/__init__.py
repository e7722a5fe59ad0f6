"""I/O adapters of the platform: object storage, sources, file layouts and quirks, raw snapshots,
Great Expectations validation and curated tables, MLflow tracking and the model registry."""
