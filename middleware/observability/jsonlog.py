"""One JSON object per log line (`coatcheck serve --log-format json`).

The redacting filter (`service/logfilter.py`) runs on the handler before this formatter,
so what is formatted here is already redacted; JSON's string escaping then keeps every
control character inside its field, so no text can start a line of its own.  Records
written while a request runs carry its `request_id` (`requestid.REQUEST_ID`), uvicorn's
access lines carry `client`, `method`, `path`, `http_version` and `status` as fields.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from coatcheck.middleware.observability.requestid import REQUEST_ID

__all__ = ["JsonFormatter"]

_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "pid", "message", "request_id"?, ...}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,  # which worker, with --workers N
        }
        access = _access_args(record)
        if access is not None:
            entry.update(zip(_ACCESS_FIELDS, access, strict=True))
            client, method, path, version, status = access
            entry["message"] = f'{client} - "{method} {path} HTTP/{version}" {status}'
        else:
            entry["message"] = record.getMessage()
            if record.exc_info and record.exc_info[0] is not None:
                entry["message"] += "\n" + self.formatException(record.exc_info)
            elif record.exc_text:
                entry["message"] += "\n" + record.exc_text
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        return json.dumps(entry, ensure_ascii=False)


def _access_args(record: logging.LogRecord) -> tuple[Any, ...] | None:
    """uvicorn's access record: `(client, method, path, http_version, status)`."""
    args = record.args
    if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
        return args
    return None
