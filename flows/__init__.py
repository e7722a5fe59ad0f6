"""Prefect flows: each composes tasks into one stage of the stress test; ``stress_test`` runs them
all. Importing the package switches telemetry off (flow runs started by a worker included)."""

from goldstress.telemetry import switch_off

switch_off()
