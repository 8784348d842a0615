"""Credentials: signing in under attempt limits every process shares, and the per-user generations
that end sessions and API tokens server-side.

Sign-in (web form, `POST /api/v1/auth/token`, HTTP Basic on /engine-rest) reserves its attempt
before any password is hashed: one slot per (client address, user name) and one under a generous
per-address ceiling, both by the shared database limiter (engine/rate_limits.py), so every worker
and process counts together and parallel guesses cannot all be evaluated. A success gives its slots back.

A session carries the user's session generation, a token the token generation it was issued under;
logout bumps the first, a password change, deactivation or `pdcaflow revoke-tokens` both, so a
replayed cookie or an old token is refused on its next request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from werkzeug.security import check_password_hash

from engine import clock
from engine.errors import NotFoundError
from engine.rate_limits import Limit, forget, take_all
from engine.rate_limits import RateLimitedError as RateLimitedError  # re-exported: web/auth.py, web/engine_rest.py
from engine.views import Actor
from storage import queries
from storage.db import Database
from storage.users import bump_generations, get_user


@dataclass(frozen=True)
class SignInLimits:
    """Attempts allowed per window; settings PDCAFLOW_SIGNIN_ATTEMPTS, …_ADDRESS_ATTEMPTS, …_WINDOW."""

    per_user: int = 10  # per (address, user name): a guesser of one account
    per_address: int = 100  # per address over all user names: a sprayer, loose enough for an office behind one NAT
    window: timedelta = timedelta(minutes=5)

    def slots(self, address: str, username: str) -> tuple[tuple[Limit, str], tuple[Limit, str]]:
        """(limit, subject) per (address, user name) and per address, in the order they are taken."""
        return ((Limit("user", self.per_user, self.window), f"{address[:64]}|{username.lower()[:100]}"),
                (Limit("addr", self.per_address, self.window), address[:64]))


@dataclass(frozen=True)
class Credential:
    """A verified sign-in: who, and the generations a new session or token is bound to."""

    actor: Actor
    session_generation: int
    token_generation: int


def sign_in(db: Database, address: str, username: str, password: str, limits: SignInLimits) -> Credential | None:
    """The user's credential when the password is right and the account active; None otherwise.

    Raises RateLimitedError, without hashing anything, when the attempt does not fit the limits."""
    if not username or not password:
        return None
    user_slot, address_slot = limits.slots(address, username)
    take_all(db, (user_slot, address_slot), "too many failed sign-in attempts; try again later")
    credential = _verify(db, username, password)
    if credential is not None:  # same key order as the reservation: no lock cycle
        forget(db, clear=[user_slot], give_back=[address_slot])
    return credential


def _verify(db: Database, username: str, password: str) -> Credential | None:
    with db.read() as session:
        user = get_user(session, username)
        if user is None or not user.active:
            return None
        stored = user.password_hash
        credential = Credential(Actor(user.username, frozenset(g.name for g in user.groups), user.role),
                                user.session_generation, user.token_generation)
    # hashed after the read session is closed: scrypt takes tens of milliseconds
    return credential if check_password_hash(stored, password) else None


def identity_actor(rows: list[Any]) -> Actor:
    """The Actor of a user's identity rows (storage/queries.py: one row per group)."""
    first = rows[0]
    return Actor(first.username, frozenset(r.group_name for r in rows if r.group_name is not None), first.role)


def session_actor(db: Database, username: str, session_generation: int) -> Actor | None:
    """The actor of a session cookie, or None when the session was ended (logout, password change,
    deactivation, revocation) or the user is gone. One statement: it runs on every page request."""
    with db.single_read() as conn:
        rows = queries.user_identity(conn, username)
    if not rows or rows[0].session_generation != session_generation:
        return None
    return identity_actor(rows)


def verified_actor(db: Database, username: str, token_generation: int) -> Actor | None:
    """The actor (role and groups as they are now) of credentials verified under `token_generation`,
    or None when they no longer hold: the password changed, the user was deactivated or
    `pdcaflow revoke-tokens` ran since. A cache of verified HTTP Basic credentials asks this on every
    request (one statement), so what an admin changes takes effect at once."""
    with db.single_read() as conn:
        rows = queries.user_identity(conn, username)
    if not rows or rows[0].token_generation != token_generation:
        return None
    return identity_actor(rows)


def end_session(db: Database, username: str) -> None:
    """Logout: every session cookie of the user is refused from now on (API tokens stay)."""
    with db.write() as session:
        bump_generations(session, username, tokens=False, now=clock.now())


def revoke_all(db: Database, username: str) -> int:
    """End every session and API token of the user; returns how many tokens were revoked."""
    with db.write() as session:
        revoked = bump_generations(session, username, tokens=True, now=clock.now())
    if revoked < 0:
        raise NotFoundError(f"no user {username}")
    return revoked
