"""One structlog configuration for every service and the CLI.

JSON lines when not on a TTY (or when asked), readable console output otherwise. A
correlation id set with `bind_correlation_id` travels in every log line of the request or
Kafka record being handled. Log personal data never: events carry pseudonyms and ids only.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from shared.plumbing.settings import LogFormat


def configure_logging(service: str, log_format: LogFormat = LogFormat.AUTO, level: str = "INFO") -> None:
    as_json = log_format is LogFormat.JSON or (log_format is LogFormat.AUTO and not sys.stderr.isatty())
    renderer: Any = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    # Libraries (aiokafka, uvicorn) log through stdlib logging: route them to stderr plainly.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")


def bind_correlation_id(correlation_id: str) -> None:
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)


def get_logger(**initial: Any) -> Any:
    return structlog.get_logger(**initial)
