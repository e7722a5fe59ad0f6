"""Logging configuration: plain text, or one JSON object per line (``GOLDSTRESS_MONITORING_JSON_LOGS``)."""

from __future__ import annotations

from typing import Any

JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
"""Fields of each JSON log line (python-json-logger); ``asctime`` and ``levelname`` are renamed
``time`` and ``level``."""


def json_logging_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` mapping (also uvicorn's ``log_config``) that writes every
    record of the root, ``uvicorn``, ``uvicorn.error``, ``uvicorn.access`` and ``goldstress``
    loggers as one JSON object per line on stderr (access lines on stdout), at ``level``
    (a ``logging`` level name)."""
    formatter = {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": JSON_FIELDS,
        "rename_fields": {"asctime": "time", "levelname": "level"},
    }
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": formatter},
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
            "access": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
            "goldstress": {"handlers": ["default"], "level": level, "propagate": False},
        },
        "root": {"handlers": ["default"], "level": level},
    }
