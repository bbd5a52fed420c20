"""Log set-up: plain lines for people, or one JSON object a line (with the request's context) for machines."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

# One INFO line per HTTP call (httpx, under the Mattermost driver) or per reminder job (apscheduler)
# would drown the bot's own lines.
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


class PlainFormatter(logging.Formatter):
    """One line for people; a request ID given in `extra` is added when the message does not show it."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # logging calls it by this name
        line = super().formatMessage(record)
        request_id = getattr(record, "request_id", None)
        if request_id and str(request_id) not in record.message:
            line += f" (request {request_id})"
        return line


class _DriverErrorsToDebug(logging.Filter):
    """mattermostautodriver logs every answer that is not a 2xx at ERROR (`Unable to find the user.`)
    before it raises; the bot catches that error and logs it with its context (the request, the step).
    Those lines are made DEBUG, so they show only in a DEBUG log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.funcName == "_check_response" and record.levelno == logging.ERROR and not record.exc_info:
            record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


# The driver's HTTP client logs under this name (it shares it with the driver's websocket).
MATTERMOST_DRIVER_LOGGER = "mattermostautodriver.websocket"
_DRIVER_FILTER = _DriverErrorsToDebug()


def quiet_libraries(level: str = "WARNING") -> None:
    """Keep libraries to what the bot does not log itself: their chatter (one INFO line per HTTP call or
    reminder job) and the Mattermost driver's own line for every refused call."""
    for chatty in NOISY_LIBRARIES:
        logging.getLogger(chatty).setLevel(max(logging.getLevelName(level), logging.WARNING))
    driver = logging.getLogger(MATTERMOST_DRIVER_LOGGER)
    if _DRIVER_FILTER not in driver.filters:
        driver.addFilter(_DRIVER_FILTER)


def uvicorn_through_root() -> None:
    """uvicorn's lines go to the root logger's handlers, like every other line (the server also passes
    log_config=None, so that uvicorn does not put its own back)."""
    for name in UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True


def configure(level: str = "WARNING", fmt: str = "plain", stream: TextIO = sys.stderr) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    uvicorn_through_root()
    logging.captureWarnings(True)  # a library's warning is a log line too, in the same format
    quiet_libraries(level)
