"""Log output: plain lines (the default) or one JSON object per line (PDCAFLOW_LOG_FORMAT=json),
for log pipelines that parse fields instead of text.

A JSON line has `time` (UTC, ISO 8601), `level`, `logger`, `message`, `exception` when there is one,
and the fields bound to the current context (`bind`): the web layer binds a request's `request_id`,
`method` and `path` (web/observability.py), so every line logged while serving it carries them, and
the request's own line adds `status` and `duration_ms`. Fields passed as `extra={"fields": {...}}`
are added too.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("pdcaflow_log_context", default=None)


def bind(**fields: Any) -> contextvars.Token[dict[str, Any] | None]:
    """Add `fields` to every JSON line logged in this context until `unbind(token)`."""
    return _context.set({**(_context.get() or {}), **fields})


def unbind(token: contextvars.Token[dict[str, Any] | None]) -> None:
    _context.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_context.get() or {})
        line.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(log_format: str = "text", *, verbose: bool = False) -> None:
    """The process's log output (the CLI calls it once, before any command runs)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("pdcaflow").setLevel(logging.DEBUG if verbose else logging.INFO)
