-- The compose PostgreSQL holds two databases: prefect (POSTGRES_DB) and mlflow.
CREATE DATABASE mlflow OWNER goldstress;
