"""Request bodies parsed with a depth limit: a deeply nested JSON body is refused with a 400 that
says so, instead of a RecursionError (a 500 and a traceback per request) while parsing it or in
the code that walks it later. Sizes are capped by MAX_CONTENT_LENGTH (413)."""

from __future__ import annotations

from typing import Any

from flask import Request

from web.errors import ApiError

MAX_JSON_DEPTH = 64  # far beyond any form, variable set or Camunda request; far below the recursion limit


def _too_deep(value: Any, limit: int) -> bool:
    stack = [(value, 1)]  # iterative: the check itself must not recurse
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


class LimitedRequest(Request):
    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            payload = super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            payload = None
            too_deep = True
        else:
            too_deep = isinstance(payload, (dict, list)) and _too_deep(payload, MAX_JSON_DEPTH)
        if too_deep:
            raise ApiError(400, f"the JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels of "
                                "objects and arrays)", code="too_deep")
        return payload
