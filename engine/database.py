"""The database handle the engine's service functions take.

Web handlers get it from the app factory and pass it to engine functions (directory, inbox,
notifications, escalation, ...); only engine code opens sessions on it. Named here so the layers
above the engine can type it without importing storage.
"""

from __future__ import annotations

from storage.db import Database

__all__ = ["Database"]
