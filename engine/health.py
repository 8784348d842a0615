"""Readiness for load balancers: is the database reachable and at the newest migration?"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from engine.errors import DatabaseUnavailableError
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


def as_unavailable(exc: BaseException) -> DatabaseUnavailableError | None:
    """The transient database failure `exc` is, as a 503-mapped engine error; None for anything else
    (a bug stays a 500). The message says what is wrong without the driver's text (no URLs)."""
    if isinstance(exc, PoolTimeoutError):
        return DatabaseUnavailableError("The database is overloaded (no free connection); try again shortly.")
    if not isinstance(exc, OperationalError) and not (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return None
    text = str(getattr(exc, "orig", exc)).lower()
    if "locked" in text or "busy" in text or "lock timeout" in text:
        return DatabaseUnavailableError("The database is busy (locked by other work); try again shortly.")
    if "full" in text or "no space" in text or "could not extend" in text:
        return DatabaseUnavailableError("The database has no space left; try again later.")
    return DatabaseUnavailableError("The database cannot be reached right now; try again shortly.")
