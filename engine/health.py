"""Readiness for load balancers: is the database reachable and at the newest migration?"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from storage.db import Database
from storage.migrate import schema_status


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str  # the schema revision when ready, else what is wrong (no secrets: no URL)


def readiness(db: Database) -> Readiness:
    try:
        ok, detail = schema_status(db.engine)
    except SQLAlchemyError as exc:
        # the driver's message names host/file problems without the password; keep its first line
        first = str(getattr(exc, "orig", exc) or exc).strip().splitlines()
        return Readiness(False, "database unreachable: " + (first[0] if first else type(exc).__name__))
    return Readiness(ok, detail)
