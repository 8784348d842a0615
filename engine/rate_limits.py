"""The one attempt limiter: fixed windows counted in the database (storage/rate_limits.py), so
every web worker, process and machine on one database counts together.

Used for sign-in (engine/credentials.py), the public complaint form and API and the public status
look-up (web/ratelimit.py), and customer acknowledgements per recipient (engine/customer_mail.py).
A check is one statement (an upsert that counts only while the window has room; on PostgreSQL in
autocommit); a refused attempt counts nothing. Windows that are over are deleted when a key starts
a new window, per scope, so the table holds about one row per client active in the last window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from engine import clock
from engine.errors import EngineError
from storage import rate_limits as counters
from storage.db import Database
from storage.errors import ConcurrentUpdateError


class RateLimitedError(EngineError):
    """Too many attempts in the window (from this address, for this user…): refused, nothing done.
    `retry_after`: seconds until the window that refused it is over (the 429's Retry-After)."""

    http_status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limit:
    """`attempts` per fixed `window` for each subject (a client address, a recipient…) of `scope`."""

    scope: str
    attempts: int
    window: timedelta

    def key(self, subject: str) -> str:
        return f"{self.scope}|{subject}"[:200]


class _Refused(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after


def _retry_after(executor: Session | Connection, key: str, window: timedelta, now: datetime) -> int:
    started = counters.window_start(executor, key)
    left = window if started is None else started + window - now
    return max(1, math.ceil(left.total_seconds()))


def take(db: Database, limit: Limit, subject: str, message: str) -> None:
    """Count one attempt of `subject`; RateLimitedError (nothing counted) when its window is full."""
    take_all(db, [(limit, subject)], message)


def take_all(db: Database, slots: Sequence[tuple[Limit, str]], message: str) -> None:
    """Count one attempt under every (limit, subject), all or none (one transaction); RateLimitedError,
    nothing counted, when one window is full."""
    now = clock.now()
    fresh: list[Limit] = []
    try:
        with db.single_statement() if len(slots) == 1 else db.write() as executor:
            for limit, subject in slots:
                hits = counters.reserve(executor, limit.key(subject), limit.attempts, limit.window, now)
                if hits is None:  # the failing slot raises: the slots before it are rolled back
                    raise _Refused(_retry_after(executor, limit.key(subject), limit.window, now))
                if hits == 1:
                    fresh.append(limit)
    except _Refused as refused:
        raise RateLimitedError(message, refused.retry_after) from None
    for limit in fresh:  # a new window began: time to drop the scope's windows that are over
        _purge(db, limit, now)


def reserve_in(session: Session, limit: Limit, subject: str, now: datetime) -> bool:
    """Count one attempt inside the caller's unit of work (its commit or rollback decides); False
    (nothing counted) when the window is full."""
    hits = counters.reserve(session, limit.key(subject), limit.attempts, limit.window, now)
    if hits == 1:
        counters.purge(session, f"{limit.scope}|", now - limit.window)
    return hits is not None


def forget(db: Database, clear: Sequence[tuple[Limit, str]], give_back: Sequence[tuple[Limit, str]]) -> None:
    """Drop the windows of `clear` and return one attempt to each of `give_back` (a successful sign-in)."""
    with db.write() as session:
        for limit, subject in clear:
            counters.forget(session, limit.key(subject))
        for limit, subject in give_back:
            counters.give_back(session, limit.key(subject))


def _purge(db: Database, limit: Limit, now: datetime) -> None:
    try:
        with db.write() as session:
            counters.purge(session, f"{limit.scope}|", now - limit.window)
    except ConcurrentUpdateError:  # PostgreSQL broke a lock cycle anyway: the next new window purges
        pass
