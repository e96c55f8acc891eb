"""Logging: one format per process (`log_format`: json or text), on stdout, for our loggers and
the HTTP server's (uvicorn or granian) alike, so a log shipper reads one kind of line.

* json: one object per line. Access lines (`vodorigin.access`, written by web/observe.py) carry
  the request's fields; other lines `time`, `level`, `logger`, `pid` and `message` (and the
  exception, on one line, when there is one).
* text: `<time> <level> <logger>: <message>`; access lines as
  `<time> <client> "<method> <path>" <status> <bytes> <ms>ms cache=<..> upstream=<reads>/<bytes>
  range=<..> id=<request id> "<user agent>"`.

Times are ISO 8601 in UTC with milliseconds.
"""

from __future__ import annotations

import json
import logging
import logging.config
import time
from typing import Any

ACCESS_LOGGER = "vodorigin.access"


def iso_time(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds * 1000) % 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        if fields is not None:
            return json.dumps(fields, separators=(",", ":"))
        line: dict[str, Any] = {"time": iso_time(record.created), "level": record.levelname.lower(),
                                "logger": record.name, "pid": record.process, "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        if fields is not None:
            return (f"{fields['time']} {fields['client']} \"{fields['method']} {fields['path']}\" "
                    f"{fields['status']} {fields['bytes']} {fields['duration_ms']}ms "
                    f"cache={fields['cache']} upstream={fields['upstream_reads']}/{fields['upstream_bytes']} "
                    f"range={fields['range']} "
                    f"id={fields['request_id']} \"{fields['user_agent']}\"")
        line = f"{iso_time(record.created)} {record.levelname.lower()} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += " | " + self.formatException(record.exc_info).replace("\n", " | ")
        return line


def configure_logging(log_format: str, level: str) -> None:
    """Our loggers and the HTTP server's on stdout in one format (called in every worker process)."""
    logging.config.dictConfig(logging_config(log_format, level))


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """The logging.config dictionary of configure_logging(): ours, uvicorn's and granian's loggers
    (granian's main process is handed it as its log_dictconfig)."""
    formatter = f"vodorigin.web.logs.{'JsonFormatter' if log_format == 'json' else 'TextFormatter'}"
    server = {"handlers": ["stdout"], "level": level.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"()": formatter}},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "line", "stream": "ext://sys.stdout"}},
        "loggers": {
            "vodorigin": {"handlers": ["stdout"], "level": level.upper(), "propagate": False},
            ACCESS_LOGGER: {"handlers": ["stdout"], "level": "INFO", "propagate": False},
            "uvicorn": server, "uvicorn.error": server, "_granian": server,
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "granian.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
