"""Read services of the task inbox beyond the task lists themselves (those are `Runtime.tasks`):
tab counts and the process filter. Web handlers call these instead of opening sessions."""

from __future__ import annotations

from collections.abc import Iterable

from engine import clock
from engine.assignment import candidate_names
from engine.views import Actor
from storage import queries
from storage.db import Database


def tab_counts(db: Database, actor: Actor, tabs: Iterable[str], process_key: str | None = None) -> dict[str, int]:
    """Exact task counts of the inbox tabs (mine, groups, completed, overdue; all and unassigned for leads), by
    indexed COUNT queries in one read transaction."""
    with db.read() as session:
        return queries.inbox_counts(session, actor.username, candidate_names(actor), lead=actor.is_lead, tabs=list(tabs),
                                    process_key=process_key, now=clock.now())


def process_keys(db: Database) -> list[str]:
    """Keys of the deployed BPMN processes (for the inbox's process filter)."""
    with db.read() as session:
        return queries.process_keys(session)


def process_choices(db: Database) -> list[tuple[str, str]]:
    """(key, display name) of the deployed BPMN processes, by name (the inbox's process filter)."""
    with db.read() as session:
        choices = queries.process_choices(session)
    return sorted(choices, key=lambda kv: kv[1].lower())


def resolve_process(db: Database, value: str | None) -> str | None:
    """The process key a filter names: a key, or a process's display name (case-insensitive). A value
    naming no process is kept as it is (it then matches no task)."""
    if not value:
        return None
    choices = process_choices(db)
    if any(key == value for key, _ in choices):
        return value
    wanted = value.strip().lower()
    return next((key for key, name in choices if name.lower() == wanted), value)
