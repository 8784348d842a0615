"""Read services of the task inbox: `InboxRead`, which reads what one inbox page shows — its task
list (as `Runtime.tasks`), tab counts and process choices — in one read transaction, and the
process filter for other pages and the API. Web handlers call these instead of opening sessions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from engine import clock
from engine.assignment import candidate_names
from engine.runtime import tasks as task_lists
from engine.views import Actor, TaskView
from storage import queries
from storage.db import Database


class InboxRead:
    """One inbox page's reads on one connection (a page costs one transaction, not one per part)."""

    def __init__(self, session: Any, actor: Actor) -> None:
        self._session = session
        self.actor = actor
        self._choices: list[tuple[str, str]] | None = None

    def tasks(self, *, state: str | None = None, mine: bool = False, process_key: str | None = None,
              limit: int = 200, in_groups: bool = False, offset: int = 0, overdue: bool = False,
              unassigned: bool = False, **filters: Any) -> list[TaskView]:
        """As `Runtime.tasks` (same arguments and rules)."""
        return task_lists.list_tasks(self._session.connection(), self.actor, state=state, mine=mine, instance_id=None,
                                     process_key=process_key, limit=limit, in_groups=in_groups, offset=offset,
                                     overdue=overdue, unassigned=unassigned, **filters)

    def counts(self, tabs: Iterable[str], process_key: str | None = None) -> dict[str, int]:
        """Exact task counts of the inbox tabs (mine, groups, completed, overdue; all and unassigned for
        leads): one statement of indexed counts (queries.inbox_counts)."""
        return queries.inbox_counts(self._session, self.actor.username, candidate_names(self.actor),
                                    lead=self.actor.is_lead, tabs=list(tabs), process_key=process_key, now=clock.now())

    def process_choices(self) -> list[tuple[str, str]]:
        """As `process_choices` (read once per page)."""
        if self._choices is None:
            self._choices = _by_name(queries.process_choices(self._session))
        return self._choices

    def resolve_process(self, value: str | None) -> str | None:
        """As `resolve_process`."""
        return _resolve(self.process_choices, value)


@contextmanager
def inbox_read(db: Database, actor: Actor) -> Iterator[InboxRead]:
    with db.read() as session:
        yield InboxRead(session, actor)


def process_keys(db: Database) -> list[str]:
    """Keys of the deployed BPMN processes (for the inbox's process filter)."""
    with db.read() as session:
        return queries.process_keys(session)


def process_choices(db: Database) -> list[tuple[str, str]]:
    """(key, display name) of the deployed BPMN processes, by name (the inbox's process filter)."""
    with db.read() as session:
        return _by_name(queries.process_choices(session))


def _by_name(choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted(choices, key=lambda kv: kv[1].lower())


def resolve_process(db: Database, value: str | None) -> str | None:
    """The process key a filter names: a key, or a process's display name (case-insensitive). A value
    naming no process is kept as it is (it then matches no task)."""
    return _resolve(lambda: process_choices(db), value)


def _resolve(choices_of: Any, value: str | None) -> str | None:
    if not value:
        return None
    choices = choices_of()
    if any(key == value for key, _ in choices):
        return value
    wanted = value.strip().lower()
    return next((key for key, name in choices if name.lower() == wanted), value)
