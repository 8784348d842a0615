"""JSON log lines (PDCAFLOW_LOG_FORMAT=json): one object per line with the context's fields."""

from __future__ import annotations

import json
import logging

import pytest

from engine import logs
from engine.settings import Settings, SettingsError


def _record(message: str, exc_info=None, **extra) -> logging.LogRecord:
    record = logging.LogRecord("pdcaflow.test", logging.WARNING, __file__, 1, message, (), exc_info)
    record.__dict__.update(extra)
    return record


def test_json_line_has_time_level_logger_message_and_bound_fields():
    token = logs.bind(request_id="r-1", method="POST", path="/complain")
    try:
        line = json.loads(logs.JsonFormatter().format(_record("filed \"C-1\"\nnext line", fields={"status": 201})))
    finally:
        logs.unbind(token)
    assert line["level"] == "warning" and line["logger"] == "pdcaflow.test"
    assert line["message"] == "filed \"C-1\"\nnext line"  # quotes and newlines stay inside one JSON line
    assert (line["request_id"], line["method"], line["path"], line["status"]) == ("r-1", "POST", "/complain", 201)
    assert line["time"].endswith("+00:00")
    outside = json.loads(logs.JsonFormatter().format(_record("later")))
    assert "request_id" not in outside  # unbound after the request


def test_exception_is_part_of_the_same_line():
    try:
        raise ValueError("bad value")
    except ValueError:
        import sys

        text = logs.JsonFormatter().format(_record("failed", exc_info=sys.exc_info()))
    assert "\n" not in text
    assert "ValueError: bad value" in json.loads(text)["exception"]


def test_log_format_setting():
    assert Settings.from_env({}).log_format == "text"
    assert Settings.from_env({"PDCAFLOW_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(SettingsError, match="PDCAFLOW_LOG_FORMAT must be text or json"):
        Settings.from_env({"PDCAFLOW_LOG_FORMAT": "xml"})
