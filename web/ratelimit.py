"""The public pages' attempt limits per client address: complaints (form and API together) and
status look-ups (page and API together). Configured once in web/__init__.py (`COMPLAINT_LIMIT`,
`STATUS_LIMIT`: attempts, seconds), counted by the one database limiter (engine/rate_limits.py), so
every gunicorn worker and every `pdcaflow serve` on the database shares them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import current_app

from engine import rate_limits
from engine.rate_limits import Limit
from web.context import client_ip, database

PUBLIC = ("complaint", "status")


def public_limits(config: Mapping[str, Any]) -> dict[str, Limit]:
    """The app's limits by name (`app.extensions["pdcaflow.limits"]`) from its `<NAME>_LIMIT` settings."""
    limits = {}
    for name in PUBLIC:
        attempts, seconds = config[f"{name.upper()}_LIMIT"]
        limits[name] = Limit(name, int(attempts), timedelta(seconds=seconds))
    return limits


def take(name: str, message: str) -> None:
    """Count one attempt of this client under the app's `name` limit; RateLimitedError (429 with
    Retry-After, nothing counted) when its window is full."""
    rate_limits.take(database(), current_app.extensions["pdcaflow.limits"][name], client_ip(), message)
