"""The SQL of /engine-rest's list queries (Camunda 7's GET /task and GET /process-instance and their
counts): filters, sorting and paging run in the database, so a list and its count are right at any
size (a capped read filtered afterwards silently loses rows beyond the cap).

Who may see what is the engine's to say (engine/permissions.py); a caller passes it as a `Viewer`,
and the task visibility in SQL is storage.queries.visible_task_ids, the inbox's. Filter values are
bound parameters; nothing here formats SQL from strings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, and_, false, func, or_, select

from storage import queries
from storage.instances import OPEN_STATES, task_order
from storage.models import HumanTask, HumanTaskGroup, ProcessInstance

_HT = HumanTask.__table__
_HTG = HumanTaskGroup.__table__
_PI = ProcessInstance.__table__
TASK_STATES = ("open", "claimed", "completed", "cancelled")
ENDED = ("completed", "cancelled")


@dataclass(frozen=True)
class Viewer:
    """Who asks, as the visibility rule needs it (engine.permissions.task_viewer): the user, the
    candidate names that offer a task to them (groups and their own `user:` key), and whether they
    see everything (`sees_all`: no restriction at all)."""

    username: str
    names: frozenset[str]
    sees_all: bool


def _like(dialect: str, column: Any, pattern: str) -> Any:
    """`column` matches `pattern`, whose `%` is any run of characters; everything else is literal and
    case-sensitive on both databases (SQLite's LIKE ignores ASCII case, its GLOB does not)."""
    if dialect == "sqlite":
        glob = "".join("*" if ch == "%" else f"[{ch}]" if ch in "*?[" else ch for ch in pattern)
        return column.op("GLOB")(glob)
    escaped = pattern.replace("\\", "\\\\").replace("_", "\\_")
    return column.like(escaped, escape="\\")


def _sorted(fields: dict[str, list[Any]], sort: Sequence[tuple[str, bool]], nullable: set[str]) -> list[Any]:
    """ORDER BY terms of (a `fields` name, descending) pairs, the first one first; NULLs last
    ascending and first descending on both databases (PostgreSQL's own default; SQLite would put
    them first)."""
    out = []
    for name, descending in sort:
        for c in fields[name]:
            if getattr(c, "name", None) in nullable:
                out.append(c.is_(None).desc() if descending else c.is_(None))
            out.append(c.desc() if descending else c)
    return out


# ---------------------------------------------------------------------- user tasks
@dataclass(frozen=True)
class TaskFilter:
    """TaskQueryDto's filters (Camunda's names in comments). Tasks are open or claimed (Camunda's
    runtime query). `offered_to`: each entry is a set of candidate names the task must be offered to
    one of (candidateUser: the user's groups and their own key; candidateGroup(s): the groups)."""

    task_id: str | None = None  # taskId
    name: str | None = None  # name
    name_like: str | None = None  # nameLike
    assignee: str | None = None  # assignee
    assignees: tuple[str, ...] | None = None  # assigneeIn
    spec_id: str | None = None  # taskDefinitionKey
    spec_ids: tuple[str, ...] | None = None  # taskDefinitionKeyIn
    instance_id: str | None = None  # processInstanceId
    process_key: str | None = None  # processDefinitionKey
    business_key: str | None = None  # processInstanceBusinessKey
    assigned_only: bool = False  # assigned
    unassigned_only: bool = False  # unassigned; candidate queries without includeAssignedTasks
    offered_to: tuple[frozenset[str], ...] = ()

    def plain(self) -> bool:
        """Nothing but the instance or process: the inbox's ordered index ranges answer it."""
        return self == TaskFilter(instance_id=self.instance_id, process_key=self.process_key)


# Camunda's sortBy values for tasks; the case ones and lastUpdated have no column here (the default
# order stands); executionId is the task's id (each task is its own execution here)
TASK_SORTS: dict[str, list[Any]] = {
    "instanceId": [_HT.c.instance_id], "dueDate": [_HT.c.due_at], "executionId": [_HT.c.id],
    "assignee": [_HT.c.assignee], "created": [_HT.c.created_at], "followUpDate": [_HT.c.follow_up_at],
    "description": [_HT.c.documentation], "id": [_HT.c.id], "name": [_HT.c.name],
    "nameCaseInsensitive": [func.lower(_HT.c.name)], "priority": [_HT.c.priority],
    "caseInstanceId": [], "caseExecutionId": [], "lastUpdated": []}
_TASK_NULLABLE = {"due_at", "follow_up_at", "assignee", "documentation"}


def _task_conditions(dialect: str, f: TaskFilter) -> list[Any]:
    out: list[Any] = [_HT.c.state.in_(OPEN_STATES)]
    for column, value in ((_HT.c.id, f.task_id), (_HT.c.name, f.name), (_HT.c.assignee, f.assignee),
                          (_HT.c.spec_id, f.spec_id), (_HT.c.instance_id, f.instance_id),
                          (_HT.c.process_key, f.process_key)):
        if value is not None:
            out.append(column == value)
    for column, values in ((_HT.c.assignee, f.assignees), (_HT.c.spec_id, f.spec_ids)):
        if values is not None:
            out.append(column.in_(list(values)) if values else false())
    if f.name_like is not None:
        out.append(_like(dialect, _HT.c.name, f.name_like))
    if f.business_key is not None:
        out.append(_HT.c.instance_id.in_(select(_PI.c.id).where(_PI.c.business_key == f.business_key)))
    if f.assigned_only:
        out.append(_HT.c.assignee.is_not(None))
    if f.unassigned_only:
        out.append(_HT.c.assignee.is_(None))
    for names in f.offered_to:
        out.append(_HT.c.id.in_(select(_HTG.c.task_id).where(_HTG.c.group_name.in_(sorted(names))))
                   if names else false())
    return out


def _tasks_statement(conn: Connection, viewer: Viewer, f: TaskFilter, columns: Any) -> Any:
    stmt = select(columns).where(*_task_conditions(conn.dialect.name, f))
    if not viewer.sees_all:  # the inbox's rule: assigned to, completed by, or offered to the user
        stmt = stmt.where(_HT.c.id.in_(queries.visible_task_ids(
            viewer.username, viewer.names, lead=False, states=OPEN_STATES, instance_id=f.instance_id,
            process_key=f.process_key)))
    return stmt


def tasks(conn: Connection, viewer: Viewer, f: TaskFilter, sort: Sequence[tuple[str, bool]], offset: int,
          limit: int) -> list[Row]:
    """Open and claimed tasks the viewer sees that meet `f`, ordered by `sort` ((a TASK_SORTS name,
    descending), ...) then the inbox's order (due first, undated last, priority, age, id: pages never
    overlap), `limit` of them after `offset`."""
    stmt = _tasks_statement(conn, viewer, f, _HT)
    if viewer.sees_all and not sort and f.plain():
        # the default order over every task: its first rows from ordered index ranges, not a sort of all
        stmt = stmt.where(_HT.c.id.in_(queries.first_task_ids(OPEN_STATES, offset + limit, instance_id=f.instance_id,
                                                              process_key=f.process_key)))
    order = _sorted(TASK_SORTS, sort, _TASK_NULLABLE)
    return list(conn.execute(stmt.order_by(*order, *task_order("due")).offset(offset).limit(limit)))


def count_tasks(conn: Connection, viewer: Viewer, f: TaskFilter) -> int:
    return conn.execute(select(func.count()).select_from(
        _tasks_statement(conn, viewer, f, _HT.c.id).subquery())).scalar_one()


# ---------------------------------------------------------------------- process instances
@dataclass(frozen=True)
class InstanceFilter:
    """ProcessInstanceQueryDto's filters (Camunda's names in comments); instances are unfinished
    (Camunda's runtime query knows running instances only)."""

    process_key: str | None = None  # processDefinitionKey
    process_keys: tuple[str, ...] | None = None  # processDefinitionKeyIn
    definitions: tuple[tuple[str, int], ...] | None = None  # processDefinitionId: (key, version)
    business_key: str | None = None  # businessKey
    business_key_like: str | None = None  # businessKeyLike
    instance_ids: tuple[str, ...] | None = None  # processInstanceIds


INSTANCE_SORTS: dict[str, list[Any]] = {
    "instanceId": [_PI.c.id], "definitionKey": [_PI.c.process_key],
    "definitionId": [_PI.c.process_key, _PI.c.process_version], "businessKey": [_PI.c.business_key],
    "tenantId": []}
_INSTANCE_COLUMNS = (_PI.c.id, _PI.c.process_key, _PI.c.process_version, _PI.c.business_key, _PI.c.status)


def _instances_statement(conn: Connection, viewer: Viewer, f: InstanceFilter, *columns: Any) -> Any:
    stmt = select(*columns).where(_PI.c.status.not_in(ENDED))
    for column, value in ((_PI.c.process_key, f.process_key), (_PI.c.business_key, f.business_key)):
        if value is not None:
            stmt = stmt.where(column == value)
    for column, values in ((_PI.c.process_key, f.process_keys), (_PI.c.id, f.instance_ids)):
        if values is not None:
            stmt = stmt.where(column.in_(list(values)) if values else false())
    if f.definitions is not None:
        stmt = stmt.where(or_(false(), *(and_(_PI.c.process_key == key, _PI.c.process_version == version)
                                         for key, version in f.definitions)))
    if f.business_key_like is not None:
        stmt = stmt.where(_like(conn.dialect.name, _PI.c.business_key, f.business_key_like))
    if not viewer.sees_all:  # an instance one of whose tasks (of any state) the viewer may see
        seen = queries.visible_task_ids(viewer.username, viewer.names, lead=False, states=TASK_STATES)
        stmt = stmt.where(_PI.c.id.in_(select(_HT.c.instance_id).where(_HT.c.id.in_(seen))))
    return stmt


def instances(conn: Connection, viewer: Viewer, f: InstanceFilter, sort: Sequence[tuple[str, bool]], offset: int,
              limit: int) -> list[Row]:
    """Unfinished instances the viewer sees that meet `f` (id, process_key, process_version,
    business_key, status), ordered by `sort` ((an INSTANCE_SORTS name, descending), ...) then newest
    first (then id: pages never overlap)."""
    order = _sorted(INSTANCE_SORTS, sort, {"business_key"})
    stmt = _instances_statement(conn, viewer, f, *_INSTANCE_COLUMNS)
    return list(conn.execute(stmt.order_by(*order, _PI.c.started_at.desc(), _PI.c.id.desc())
                             .offset(offset).limit(limit)))


def instance_stream(conn: Connection, viewer: Viewer, f: InstanceFilter, sort: Sequence[tuple[str, bool]],
                    batch: int) -> Iterator[Row]:
    """Every row `instances` would list, `data` included, unpaged: one ordered statement whose rows
    are fetched `batch` at a time (a server-side cursor on PostgreSQL), for a caller that filters
    them further and stops when its page is full (close the iterator then: that closes the cursor)."""
    order = _sorted(INSTANCE_SORTS, sort, {"business_key"})
    stmt = _instances_statement(conn, viewer, f, *_INSTANCE_COLUMNS, _PI.c.data)
    with conn.execution_options(yield_per=batch).execute(
            stmt.order_by(*order, _PI.c.started_at.desc(), _PI.c.id.desc())) as result:
        yield from result


def count_instances(conn: Connection, viewer: Viewer, f: InstanceFilter) -> int:
    return conn.execute(select(func.count()).select_from(
        _instances_statement(conn, viewer, f, _PI.c.id).subquery())).scalar_one()
