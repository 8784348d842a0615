"""The runtime's SQL: instance rows and their projections (human tasks, waits, incidents, audit).

Statements are built once at import: SQLAlchemy then reuses their cache keys and compiled forms
instead of rebuilding them per call. They are Core statements run on the unit of work's
connection (same transaction, without the ORM's execution layer); callers get plain rows.
The engine decides *what* to write (engine/runtime/unit_of_work.py); this module only says *how*.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    bindparam,
    case,
    cast,
    column,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    table,
    union_all,
    update,
)

from storage import queries
from storage.models import (
    AuditEvent,
    EventSubscription,
    HumanTask,
    HumanTaskGroup,
    Incident,
    ProcessDefinition,
    ProcessInstance,
    Timer,
    User,
)
from storage.rows import execute_rows
from storage.snapshot_version import SEEN_VERSION

OPEN_STATES = ("open", "claimed")

_PI = ProcessInstance.__table__
_US = User.__table__
_PD = ProcessDefinition.__table__
_HT = HumanTask.__table__
_HTG = HumanTaskGroup.__table__
_AE = AuditEvent.__table__
_INC = Incident.__table__
_TM = Timer.__table__
_MS = EventSubscription.__table__

INSTANCE_COLUMNS = tuple(c.name for c in _PI.c)

# ---------------------------------------------------------------------- definitions
_LATEST_DEFINITION = (select(_PD.c.id, _PD.c.key, _PD.c.version)
                      .where(_PD.c.key == bindparam("key"), _PD.c.kind == "bpmn")
                      .order_by(_PD.c.version.desc()).limit(1))
_DEFINITION_VERSION = select(_PD.c.id, _PD.c.key, _PD.c.version).where(
    _PD.c.key == bindparam("key"), _PD.c.version == bindparam("version"), _PD.c.kind == "bpmn")


def definition_ref(conn: Connection, key: str, version: int | None) -> Row | None:
    """(id, key, version) of a deployed process, the latest one unless `version` is given."""
    if version is None:
        return conn.execute(_LATEST_DEFINITION, {"key": key}).first()
    return conn.execute(_DEFINITION_VERSION, {"key": key, "version": version}).first()


# ---------------------------------------------------------------------- instance rows
_LOCK_INSTANCE = select(_PI).where(_PI.c.id == bindparam("instance_id")).with_for_update()
_LOCK_INSTANCE_UNLESS_LOCKED = select(_PI).where(_PI.c.id == bindparam("instance_id")).with_for_update(skip_locked=True)
_UPDATE_INSTANCE = _PI.update().where(_PI.c.id == bindparam("b_id"), _PI.c.version == bindparam("b_version"))
# .inline(): the writes never read generated keys back, so PostgreSQL need not RETURN them
_INSERT_INSTANCE = insert(_PI).inline()


def lock_instance(conn: Connection, instance_id: str, *, skip_locked: bool = False) -> Row | None:
    """Read and lock an instance row (PostgreSQL FOR UPDATE; SQLite write units hold the database
    lock). With `skip_locked`, None when another transaction holds it (PostgreSQL only)."""
    stmt = _LOCK_INSTANCE_UNLESS_LOCKED if skip_locked else _LOCK_INSTANCE
    return conn.execute(stmt, {"instance_id": instance_id}).first()


def lock_instances(conn: Connection, instance_ids: Iterable[str], *, skip_locked: bool) -> dict[str, Row]:
    """Several instance rows locked in id order (one lock order for every batch: no deadlocks)."""
    ids = sorted(set(instance_ids))
    if not ids:
        return {}
    stmt = select(_PI).where(_PI.c.id.in_(ids)).order_by(_PI.c.id).with_for_update(skip_locked=skip_locked)
    return {r.id: r for r in conn.execute(stmt)}


def insert_instances(conn: Connection, rows: list[dict[str, Any]]) -> None:
    execute_rows(conn, _INSERT_INSTANCE, rows)


def update_instances(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Versioned updates (`b_id`, `b_version` + new values; the columns a row names are the ones it
    sets, e.g. `variable_types` only when they changed); returns how many rows matched. One
    statement per set of columns."""
    if len(rows) == 1:
        return execute_rows(conn, _UPDATE_INSTANCE, rows).rowcount
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(tuple(row), []).append(row)
    return sum(execute_rows(conn, _UPDATE_INSTANCE, same).rowcount for same in shapes.values())


def list_instances(conn: Connection, *, key: str | None, status: str | None, limit: int, offset: int) -> list[Row]:
    stmt = select(_PI.c.id, _PI.c.process_key, _PI.c.process_version, _PI.c.status, _PI.c.business_key,
                  _PI.c.started_at, _PI.c.ended_at)
    if key:
        stmt = stmt.where(_PI.c.process_key == key)
    if status:
        stmt = stmt.where(_PI.c.status == status)
    return list(conn.execute(stmt.order_by(_PI.c.started_at.desc()).limit(limit).offset(offset)))


def unfinished_instances_of(conn: Connection, definition_id: int, limit: int) -> list[Row]:
    """The newest running (or in incident) instances of one definition version, state included."""
    return list(conn.execute(select(_PI).where(_PI.c.definition_id == definition_id,
                                               _PI.c.status.in_(("running", "incident")))
                             .order_by(_PI.c.started_at.desc()).limit(limit)))


def instance_row(conn: Connection, instance_id: str) -> Row | None:
    return conn.execute(select(_PI).where(_PI.c.id == instance_id)).first()


def instances_by_business_key(conn: Connection, business_key: str, process_key: str) -> list[Row]:
    """The (few) instances of one process with this business key, newest first, without their state."""
    return list(conn.execute(
        select(_PI.c.id, _PI.c.status, _PI.c.data, _PI.c.started_at, _PI.c.ended_at)
        .where(_PI.c.business_key == business_key, _PI.c.process_key == process_key)
        .order_by(_PI.c.started_at.desc()).limit(5)))


def last_activity(conn: Connection, instance_id: str) -> datetime | None:
    """When anything last happened to the instance (its newest audit event)."""
    return conn.execute(select(func.max(_AE.c.at)).where(_AE.c.instance_id == instance_id)).scalar()


# ---------------------------------------------------------------------- human tasks
_TASK_WITH_GROUPS = (select(_HT, _HTG.c.group_name).outerjoin(_HTG, _HTG.c.task_id == _HT.c.id)
                     .where(_HT.c.id == bindparam("task_id")))
_TASKS_OF_INSTANCES = (select(_HT, _HTG.c.group_name).outerjoin(_HTG, _HTG.c.task_id == _HT.c.id)
                       .where(_HT.c.instance_id.in_(bindparam("instance_ids", expanding=True)))
                       .order_by(_HT.c.created_at, _HT.c.id))
_ASKED = _HT.alias("asked")
# Every task of the asked task's instance (with groups), and the instance row on each; its state and data
# (the big columns) only on the asked task's rows. Locks the instance row.
_TASK_WITH_INSTANCE = (select(_HT, _HTG.c.group_name,
                              *[(case((_HT.c.id == bindparam("task_id"), c), else_=null()).label(f"pi_{c.name}")
                                 if c.name in ("state", "data") else c.label(f"pi_{c.name}")) for c in _PI.c],
                              SEEN_VERSION)
                       .select_from(_HT.join(_PI, _PI.c.id == _HT.c.instance_id)
                                    .outerjoin(_HTG, _HTG.c.task_id == _HT.c.id))
                       .where(_HT.c.instance_id == select(_ASKED.c.instance_id)
                              .where(_ASKED.c.id == bindparam("task_id")).scalar_subquery())
                       .order_by(_HT.c.created_at, _HT.c.id)
                       .with_for_update(of=_PI))
_TAKE_TASK_UNASSIGNED = _HT.update().where(_HT.c.id == bindparam("b_id"), _HT.c.state == bindparam("b_state"),
                                           _HT.c.assignee.is_(None))
_TAKE_TASK_ASSIGNED = _HT.update().where(_HT.c.id == bindparam("b_id"), _HT.c.state == bindparam("b_state"),
                                         _HT.c.assignee == bindparam("b_assignee"))
# only a task still open: a save deciding on rows older than a concurrent completion's commit then
# changes nothing instead of turning that completed task into a cancelled one
_CANCEL_TASKS = (_HT.update().where(_HT.c.id == bindparam("b_id"), or_(*(_HT.c.state == s for s in OPEN_STATES)))
                 .values(state="cancelled", completed_at=bindparam("completed_at", type_=_HT.c.completed_at.type)))
_INSERT_TASK = insert(_HT).inline()
_INSERT_TASK_GROUP = insert(_HTG).inline()
_INSERT_TIMER = insert(_TM).inline()
_INSERT_SUBSCRIPTION = insert(_MS).inline()


def task_with_groups(conn: Connection, task_id: str) -> tuple[Row | None, list[str]]:
    """A task row and its sorted candidate groups, in one statement (one result row per group)."""
    row, found = None, []
    for record in conn.execute(_TASK_WITH_GROUPS, {"task_id": task_id}):
        row = record
        if record.group_name is not None:
            found.append(record.group_name)
    return row, sorted(found)


def task_with_instance(conn: Connection, task_id: str
                       ) -> tuple[Row | None, list[str], dict[str, Any] | None, dict[str, tuple[Row, list[str]]]]:
    """A task row, its sorted groups, its instance row (locked: FOR UPDATE OF process_instance) and every
    task of that instance with its sorted groups ({task_id: (row, groups)}, as `tasks_of_instances`), in
    one statement: a completion needs them all (the projection diffs the instance's task rows). When
    the statement waited for the lock, a concurrent completion's changes (its task completed, the tasks
    it created) are missing from those rows (SEEN_VERSION): they are read again, under the lock."""
    tasks: dict[str, tuple[Row, list[str]]] = {}
    for record in conn.execute(_TASK_WITH_INSTANCE, {"task_id": task_id}):
        if record.id not in tasks:
            tasks[record.id] = (record, [])
        if record.group_name is not None:
            tasks[record.id][1].append(record.group_name)
    if task_id not in tasks:
        return None, [], None, {}
    mapping = tasks[task_id][0]._mapping
    instance = {name: mapping[f"pi_{name}"] for name in INSTANCE_COLUMNS}
    if mapping["seen_version"] != instance["version"]:
        tasks = tasks_of_instances(conn, [instance["id"]]).get(instance["id"], {})
        if task_id not in tasks:
            return None, [], None, {}
    for _row, groups in tasks.values():
        groups.sort()
    row, groups = tasks[task_id]
    return row, groups, instance, tasks


def tasks_of_instances(conn: Connection, instance_ids: Sequence[str]) -> dict[str, dict[str, tuple[Row, list[str]]]]:
    """Every human task row of the instances with its groups: {instance_id: {task_id: (row, groups)}}."""
    out: dict[str, dict[str, tuple[Row, list[str]]]] = {}
    if not instance_ids:
        return out
    for record in conn.execute(_TASKS_OF_INSTANCES, {"instance_ids": list(instance_ids)}):
        tasks = out.setdefault(record.instance_id, {})
        if record.id not in tasks:
            tasks[record.id] = (record, [])
        if record.group_name is not None:
            tasks[record.id][1].append(record.group_name)
    return out


def groups_of(conn: Connection, task_ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if not task_ids:
        return out
    for task_id, group in conn.execute(select(_HTG.c.task_id, _HTG.c.group_name)
                                       .where(_HTG.c.task_id.in_(list(task_ids)))):
        out.setdefault(task_id, []).append(group)
    return {k: sorted(v) for k, v in out.items()}


def take_task(conn: Connection, task_id: str, state: str, assignee: str | None, values: dict[str, Any]) -> bool:
    """Conditional update of a task still in `state` held by `assignee`: of two racing writers one wins."""
    stmt = _TAKE_TASK_UNASSIGNED if assignee is None else _TAKE_TASK_ASSIGNED
    result = conn.execute(stmt, {**values, "b_id": task_id, "b_state": state, "b_assignee": assignee})
    return result.rowcount == 1


def cancel_tasks(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Open tasks whose workflow task is no longer ready (`b_id`, `completed_at`); a task no longer open
    (completed or cancelled by someone else) is left as it is."""
    execute_rows(conn, _CANCEL_TASKS, rows)


def insert_tasks(conn: Connection, rows: list[dict[str, Any]], groups: list[dict[str, str]]) -> None:
    if rows:
        execute_rows(conn, _INSERT_TASK, rows)
    if groups:
        execute_rows(conn, _INSERT_TASK_GROUP, groups)


# ---------------------------------------------------------------------- waits (timers, messages, signals)
def waiting_timers(conn: Connection, instance_ids: Sequence[str]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    if instance_ids:
        for t in conn.execute(select(_TM.c.id, _TM.c.instance_id, _TM.c.task_id, _TM.c.spec_id, _TM.c.due_at,
                                     _TM.c.locked_by)
                              .where(_TM.c.instance_id.in_(list(instance_ids)), _TM.c.state == "waiting")):
            out.setdefault(t.instance_id, []).append(t)
    return out


def subscriptions(conn: Connection, instance_ids: Sequence[str]) -> dict[str, list[Row]]:
    """The message and signal catches the instances wait on: {instance_id: [(id, instance_id, kind, name)]}."""
    out: dict[str, list[Row]] = {}
    if instance_ids:
        for s in conn.execute(select(_MS.c.id, _MS.c.instance_id, _MS.c.kind, _MS.c.name)
                              .where(_MS.c.instance_id.in_(list(instance_ids)))):
            out.setdefault(s.instance_id, []).append(s)
    return out


def subscribed_instances(conn: Connection, name: str, correlation: str | None, kind: str = "message") -> list[str]:
    """Instances waiting for the message/signal `name` (with `correlation`: whose business key or id it is)."""
    stmt = (select(_MS.c.instance_id).where(_MS.c.kind == kind, _MS.c.name == name, _MS.c.instance_id.is_not(None))
            .distinct().order_by(_MS.c.instance_id))
    if correlation:
        stmt = stmt.where(or_(_MS.c.correlation == correlation, _MS.c.instance_id == correlation))
    return list(conn.scalars(stmt))


def event_start_processes(conn: Connection, kind: str, name: str) -> list[str]:
    """Keys of deployed processes whose latest version starts on the message/signal `name`."""
    stmt = (select(_MS.c.process_key).where(_MS.c.kind == kind, _MS.c.name == name, _MS.c.process_key.is_not(None))
            .distinct().order_by(_MS.c.process_key))
    return list(conn.scalars(stmt))


def replace_event_starts(conn: Connection, key: str, starts: Sequence[tuple[str, str]]) -> None:
    """The message/signal start events of a process's newly deployed version replace the older version's."""
    conn.execute(_MS.delete().where(_MS.c.process_key == key))
    if starts:
        conn.execute(insert(_MS), [{"process_key": key, "instance_id": None, "kind": kind, "name": name,
                                    "correlation": None} for kind, name in starts])


def insert_timers(conn: Connection, rows: list[dict[str, Any]]) -> None:
    execute_rows(conn, _INSERT_TIMER, rows)


def move_timers(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """New due times (`b_id`, `due_at`)."""
    execute_rows(conn, _TM.update().where(_TM.c.id == bindparam("b_id")), rows)


def finish_timers(conn: Connection, timer_ids: list[int]) -> None:
    """Timers whose task stopped waiting (fired, cancelled, instance ended)."""
    conn.execute(update(_TM).where(_TM.c.id.in_(timer_ids)).values(state="done", locked_by=None, locked_until=None))


def finish_timers_of_tasks(conn: Connection, instance_id: str, task_ids: list[str]) -> None:
    conn.execute(update(_TM).where(_TM.c.instance_id == instance_id, _TM.c.task_id.in_(task_ids))
                 .values(state="done", locked_by=None, locked_until=None))


def insert_subscriptions(conn: Connection, rows: list[dict[str, Any]]) -> None:
    execute_rows(conn, _INSERT_SUBSCRIPTION, rows)


def delete_subscriptions(conn: Connection, ids: list[int]) -> None:
    conn.execute(_MS.delete().where(_MS.c.id.in_(ids)))


# ---------------------------------------------------------------------- incidents and audit
_INSERT_AUDIT = insert(_AE).inline()
_INSTANCE_AUDIT_AND_INCIDENTS = union_all(
    select(literal(0).label("kind"), _AE.c.id, _AE.c.at, _AE.c.actor, _AE.c.type, _AE.c.task_id, _AE.c.payload,
           cast(null(), _INC.c.task_name.type).label("task_name"), cast(null(), _INC.c.message.type).label("message"),
           cast(null(), _INC.c.resolved_at.type).label("resolved_at"))
    .where(_AE.c.instance_id == bindparam("instance_id")),
    select(literal(1), _INC.c.id, _INC.c.created_at, cast(null(), _AE.c.actor.type), cast(null(), _AE.c.type.type),
           _INC.c.task_id, _INC.c.data, _INC.c.task_name, _INC.c.message, _INC.c.resolved_at)
    .where(_INC.c.instance_id == bindparam("instance_id")),
).order_by("kind", "id")


def insert_audit(conn: Connection, rows: list[dict[str, Any]]) -> None:
    execute_rows(conn, _INSERT_AUDIT, rows)


def insert_incident(conn: Connection, values: dict[str, Any]) -> int:
    """Insert one incident; returns its id (incidents are rare, so one statement each is fine)."""
    return conn.execute(insert(_INC).returning(_INC.c.id), values).scalar_one()


def open_incidents(conn: Connection, instance_id: str) -> list[Row]:
    return list(conn.execute(select(_INC).where(_INC.c.instance_id == instance_id, _INC.c.resolved_at.is_(None))))


def resolve_incidents(conn: Connection, incident_ids: list[int], at: datetime, by: str) -> None:
    if incident_ids:
        conn.execute(update(_INC).where(_INC.c.id.in_(incident_ids)).values(resolved_at=at, resolved_by=by))


def audit_and_incidents(conn: Connection, instance_id: str) -> list[Row]:
    """The instance's audit rows (kind 0) and incidents (kind 1) in one statement, each by id."""
    return list(conn.execute(_INSTANCE_AUDIT_AND_INCIDENTS, {"instance_id": instance_id}))


def mark_incident(conn: Connection, instance_id: str) -> None:
    """A running instance whose work failed outside a unit of work that had it loaded."""
    conn.execute(update(_PI).where(_PI.c.id == instance_id, _PI.c.status == "running")
                 .values(status="incident", version=_PI.c.version + 1))


def list_tasks(conn: Connection, *, username: str, groups: Iterable[str], lead: bool, states: tuple[str, ...],
               mine: bool, in_groups: bool, instance_id: str | None, process_key: str | None,
               due_before: datetime | None, limit: int, offset: int, unassigned: bool = False,
               q: str | None = None, sort: str = "due", group: str | None = None, assignee: str | None = None,
               due_after: datetime | None = None, undated: bool = False,
               min_priority: int | None = None) -> list[Row]:
    """The inbox: tasks in `states` the user may see, due first (undated last), then priority, then age.

    `unassigned`: only tasks with no assignee and no candidates (the leads' Unassigned queue);
    `q`: only tasks whose case matches the search (`search_condition`); `sort`: one of TASK_SORTS;
    `group`: only tasks offered to that candidate group; `assignee`: only tasks held by that user;
    `due_before`/`due_after`: due in that range; `undated`: only tasks without a due date;
    `min_priority`: only tasks of at least that priority."""
    stmt = queries.task_filters(select(_HT), states, instance_id, process_key)
    if q:
        stmt = stmt.where(_HT.c.instance_id.in_(search_condition(conn.dialect.name, q)))
    if due_before is not None:
        # overdue tasks are the earliest-due ones, so the leads' ordered ranges below still cover them
        stmt = stmt.where(_HT.c.due_at < due_before)
    if due_after is not None:
        stmt = stmt.where(_HT.c.due_at >= due_after)
    if undated:
        stmt = stmt.where(_HT.c.due_at.is_(None))
    if group:
        stmt = stmt.where(_HT.c.id.in_(select(_HTG.c.task_id).where(_HTG.c.group_name == group)))
    if assignee:
        stmt = stmt.where(_HT.c.assignee == assignee)
    if min_priority is not None:
        stmt = stmt.where(_HT.c.priority >= min_priority)
    narrowed = bool(q or group or assignee or due_after is not None or undated or min_priority is not None)
    if unassigned:
        # a short queue (each task in it waits for a lead), so a plain filter rather than ordered ranges
        stmt = stmt.where(queries.unassigned_condition(_HT.c.id, _HT.c.assignee))
        if not lead:  # nobody but leads and admins sees these tasks
            return []
    elif in_groups and sort == "due" and not (narrowed or instance_id or process_key or due_before is not None):
        # the plain "my groups" tab: its first tasks in inbox order from the group rows alone
        stmt = stmt.where(_HT.c.id.in_(queries.first_group_task_ids(groups, states, limit + max(0, offset))))
    elif mine or in_groups or not lead:
        # a UNION of indexed branches (assigned / completed by / open in my groups)
        stmt = stmt.where(_HT.c.id.in_(queries.visible_task_ids(
            username, groups, lead=lead, states=states, mine=mine, in_groups=in_groups,
            instance_id=instance_id, process_key=process_key)))
    elif narrowed or sort != "due":  # the ordered index ranges below follow the due order of all tasks only
        pass
    else:  # leads see every task: take the first ones from ordered index ranges, not a sort of all
        stmt = stmt.where(_HT.c.id.in_(queries.first_task_ids(
            states, limit + max(0, offset), instance_id=instance_id, process_key=process_key)))
    stmt = (stmt.order_by(*task_order(sort)).limit(limit).offset(max(0, offset)))
    return list(conn.execute(stmt))


TASK_SORTS = ("due", "priority", "created", "reference")


def task_order(sort: str) -> tuple[Any, ...]:
    """ORDER BY of the inbox's sorts; every one ends on the task id so pages never overlap."""
    due = (_HT.c.due_at.is_(None), _HT.c.due_at)
    if sort == "priority":
        return (_HT.c.priority.desc(), *due, _HT.c.created_at, _HT.c.id)
    if sort == "created":
        return (_HT.c.created_at.desc(), _HT.c.id)
    if sort == "reference":  # the case's business key (a correlated scalar read per row, by primary key)
        ref = select(_PI.c.business_key).where(_PI.c.id == _HT.c.instance_id).scalar_subquery()
        return (ref.is_(None), ref, *due, _HT.c.id)
    return (*due, _HT.c.priority.desc(), _HT.c.created_at, _HT.c.id)


# The case search index (storage.models.CASE_SEARCH_DDL): SQLite's FTS5 table over case_text.
_CASE_SEARCH = table("case_search", column("rowid"), column("case_text"))
_INSTANCE_ROWID = literal_column("process_instance.rowid")


def search_condition(dialect: str, q: str) -> Any:
    """A SELECT of the ids of the instances whose case text (reference, title, summary, customer;
    engine/cases.py) contains `q`, case-insensitively, answered from the case search index."""
    text = " ".join(q.lower().split())
    if dialect == "sqlite":
        if "%" in text or "_" in text:  # FTS5 takes LIKE without ESCAPE only: these few scan the index
            match = _CASE_SEARCH.c.case_text.like(_contains(text), escape="\\")
        else:
            match = _CASE_SEARCH.c.case_text.like("%" + text + "%")
        return select(_PI.c.id).where(_INSTANCE_ROWID.in_(select(_CASE_SEARCH.c.rowid).where(match)))
    # PostgreSQL: the pg_trgm GIN index answers LIKE (backslash is its default escape). It reads the
    # posting list of every trigram of the pattern, so a word found in most cases ("customer") makes
    # it slow: the index looks for the most telling word only (one with digits — a reference, an order
    # or customer number — else the longest), and the whole text is checked on those rows alone (an
    # expression the index cannot take).
    words = [w for w in text.split() if len(w) >= 3]
    if len(words) < 2:
        return select(_PI.c.id).where(_PI.c.case_text.like(_contains(text)))
    telling = max(words, key=lambda w: (any(ch.isdigit() for ch in w), len(w)))
    return select(_PI.c.id).where(_PI.c.case_text.like(_contains(telling)),
                                  _PI.c.case_text.op("||")(literal("")).like(_contains(text)))


def _contains(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its wildcards escaped with a backslash."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def case_rows(conn: Connection, instance_ids: Iterable[str], variables: Sequence[str]) -> dict[str, dict[str, Any]]:
    """What the inbox's case columns are made of, by instance id: business_key, case_title, case_summary,
    `indexed` (a title or summary was written: not an instance waiting for its first save since
    migration 0016) and `variables`: the named top-level variables as text, extracted in SQL (an
    instance's whole data can be large; the list needs a few values of it)."""
    ids = list(set(instance_ids))
    if not ids:
        return {}
    rows = conn.execute(_case_rows_statement(tuple(variables)), {"ids": ids})
    return {r[0]: {"business_key": r[1], "case_title": r[2], "case_summary": r[3], "indexed": bool(r[4]),
                   "variables": dict(zip(variables, r[5:], strict=True))} for r in rows}  # by position: a page lists 50


@functools.lru_cache(maxsize=8)
def _case_rows_statement(variables: tuple[str, ...]) -> Any:
    """Built once per variable list: a JSON extraction's cache key is dear to compute per call."""
    extracted = [_PI.c.data[name].as_string().label(f"v{i}") for i, name in enumerate(variables)]
    indexed = or_(_PI.c.case_title.is_not(None), _PI.c.case_summary.is_not(None)).label("indexed")
    return select(_PI.c.id, _PI.c.business_key, _PI.c.case_title, _PI.c.case_summary, indexed,
                  *extracted).where(_PI.c.id.in_(bindparam("ids", expanding=True)))


def active_usernames(conn: Connection, names: Iterable[str]) -> set[str]:
    """Which of `names` are active user accounts."""
    return {name for name, active in account_states(conn, names).items() if active}


def account_states(conn: Connection, names: Iterable[str]) -> dict[str, bool]:
    """{username: active} of those of `names` that have an account (unknown names are left out)."""
    names = [n for n in set(names) if n]
    if not names:
        return {}
    return {r.username: bool(r.active) for r in conn.execute(
        select(_US.c.username, _US.c.active).where(_US.c.username.in_(names)))}


def process_names(conn: Connection, keys: Iterable[str]) -> dict[str, str]:
    """The display name of each process key (its latest version's name; the key when it has none)."""
    keys = list(set(keys))
    if not keys:
        return {}
    rows = conn.execute(select(_PD.c.key, _PD.c.name, _PD.c.version).where(_PD.c.key.in_(keys), _PD.c.kind == "bpmn")
                        .order_by(_PD.c.key, _PD.c.version))
    names = {k: k for k in keys}
    for r in rows:  # ordered by version: the latest name wins
        names[r.key] = r.name or r.key
    return names


def release_timer_leases(conn: Connection, timer_ids: list[int]) -> None:
    """Timers that were leased for firing and still wait: free again, their failed attempts forgotten."""
    conn.execute(update(_TM).where(_TM.c.id.in_(timer_ids), _TM.c.state == "waiting")
                 .values(locked_by=None, locked_until=None, attempts=0))
