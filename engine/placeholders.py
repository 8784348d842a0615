"""`${name}` in texts a model writes (connector properties, form-field default values such as a
reply template "Dear ${customer_name},"): replaced by the process variable's text, '' when unset.
Nothing is evaluated, so a template can never run code or fail."""

from __future__ import annotations

import json
import re
from typing import Any

_PLACEHOLDER = re.compile(r"\$\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}")


def has_placeholders(template: Any) -> bool:
    return isinstance(template, str) and _PLACEHOLDER.search(template) is not None


def fill(template: str | None, variables: dict[str, Any]) -> str:
    """`${name}` replaced by the variable's text ('' when unset); nothing is evaluated."""
    if not template:
        return ""
    return _PLACEHOLDER.sub(lambda m: _text(variables.get(m.group(1))), template)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)
