"""Log set-up: plain lines for people, or one JSON object a line (with the request's context) for machines."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

NOISY_LIBRARIES = ("httpx", "httpcore", "apscheduler")
# uvicorn's loggers: by default uvicorn gives them handlers and formats of its own, so their lines (and
# the tracebacks of "Exception in ASGI application") would not be JSON in a JSON log.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
# Context that call sites attach with `extra=`; anything else in a record is logging's own.
CONTEXT_KEYS = ("correlation_id", "platform", "chat_user", "teleport_user", "subcommand", "request_id",
                "outcome", "duration_seconds")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({key: getattr(record, key) for key in CONTEXT_KEYS if hasattr(record, key)})
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str = "WARNING", fmt: str = "plain", stream: TextIO = sys.stderr) -> None:
    handler = logging.StreamHandler(stream)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in UVICORN_LOGGERS:  # through the bot's handler (the server also passes log_config=None)
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    logging.captureWarnings(True)  # a library's warning is a log line too, in the same format
    # One INFO line per HTTP call (httpx, under the Mattermost driver) or per reminder job (apscheduler)
    # would drown the bot's own lines.
    for chatty in NOISY_LIBRARIES:
        logging.getLogger(chatty).setLevel(max(logging.getLevelName(level), logging.WARNING))
