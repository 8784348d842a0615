"""Process data as JSON columns can hold it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any


def json_safe(value: Any) -> Any:
    """`value` with dict keys as text, sequences as lists, dates as ISO text, anything else as text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def json_roundtrip(value: Any) -> Any:
    """What a JSON column gives back for `value`."""
    return json.loads(json.dumps(value)) if value is not None else None
