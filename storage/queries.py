"""Read and small write queries the web layer needs (users, tokens, complaint references, inbox).

All statements are built with SQLAlchemy expressions; nothing here formats SQL from strings.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, func, or_, select, union, union_all, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import BindParameter

from storage.api_tokens import ApiToken, ComplaintReference
from storage.models import Group, HumanTask, HumanTaskGroup, ProcessDefinition, User, UserGroup


def list_users(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(User).options(selectinload(User.groups)).order_by(User.username)).all()
    return [{"username": u.username, "role": u.role, "email": u.email, "active": u.active,
             "groups": sorted(g.name for g in u.groups)} for u in rows]


def list_groups(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(Group).options(selectinload(Group.members)).order_by(Group.name)).all()
    return [{"name": g.name, "members": sorted(m.username for m in g.members)} for g in rows]


def group_names(session: Session) -> list[str]:
    return list(session.scalars(select(Group.name).order_by(Group.name)))


def add_token(session: Session, username: str, token_hash: str, created_at: datetime, expires_at: datetime,
              label: str | None = None, generation: int = 0) -> bool:
    """Store a token issued under the user's token `generation` (a token from a sign-in that raced a
    password change is born revoked: its generation is already behind)."""
    user_id = session.scalar(select(User.id).where(User.username == username, User.active.is_(True)))
    if user_id is None:
        return False
    session.add(ApiToken(token_hash=token_hash, user_id=user_id, label=label, created_at=created_at,
                         expires_at=expires_at, generation=generation))
    return True


# ---------------------------------------------------------------------- who is calling
# Every authenticated request runs one of these (through `Database.single_read`; prebuilt: building
# and caching a statement costs more than SQLite takes to answer it). Each returns the user's row
# once per group (none: one row with a NULL group), so the caller gets who it is, its role and its
# groups in one round trip.
def _with_groups(stmt: Any) -> Any:
    return (stmt.outerjoin(UserGroup, UserGroup.user_id == User.id)
            .outerjoin(Group, Group.id == UserGroup.group_id).add_columns(Group.name.label("group_name")))


_TOKEN_IDENTITY = _with_groups(
    select(User.username, User.role, ApiToken.id.label("token_id"), ApiToken.last_used_at)
    .select_from(ApiToken).join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None),
           ApiToken.expires_at > bindparam("now"), ApiToken.generation == User.token_generation,
           User.active.is_(True)))

_USER_IDENTITY = _with_groups(
    select(User.username, User.role, User.session_generation, User.token_generation)
    .select_from(User).where(User.username == bindparam("username"), User.active.is_(True)))


def token_identity(conn: Connection, token_hash: str, now: datetime) -> list[Any]:
    """The rows (username, role, token_id, last_used_at, group_name) of a valid token: unexpired,
    unrevoked, of an active user and of the user's current token generation; [] otherwise. Reads
    only; the caller records the use (`touch_token`)."""
    return list(conn.execute(_TOKEN_IDENTITY, {"token_hash": token_hash, "now": now}))


def user_identity(conn: Connection, username: str) -> list[Any]:
    """The rows (username, role, session_generation, token_generation, group_name) of an active
    user; [] for an unknown or inactive one."""
    return list(conn.execute(_USER_IDENTITY, {"username": username}))


def touch_token(session: Session, token_id: int, now: datetime) -> None:
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))


def revoke_token(session: Session, token_hash: str, now: datetime) -> bool:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))
    if token is None or token.revoked_at is not None:
        return False
    token.revoked_at = now
    return True


def user_tokens(session: Session, username: str) -> list[dict[str, Any]]:
    """Every token of a user, newest first; `active` as `token_identity` would decide it (minus expiry)."""
    rows = session.execute(
        select(ApiToken, User.token_generation, User.active).join(User, User.id == ApiToken.user_id)
        .where(User.username == username).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())).all()
    return [{"id": str(t.id), "label": t.label, "created_at": t.created_at, "expires_at": t.expires_at,
             "last_used_at": t.last_used_at, "revoked_at": t.revoked_at,
             "active": bool(active and t.revoked_at is None and t.generation == generation)}
            for t, generation, active in rows]


def revoke_token_by_id(session: Session, token_id: int, now: datetime) -> str | None:
    """Revoke one token by id; returns its owner's name (None: no such token). Revoking twice is fine."""
    row = session.execute(select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
                          .where(ApiToken.id == token_id)).first()
    if row is None:
        return None
    token, username = row
    if token.revoked_at is None:
        token.revoked_at = now
    return username


def new_reference(session: Session, year: int, now: datetime) -> str:
    row = ComplaintReference(created_at=now)
    session.add(row)
    session.flush()
    row.reference = f"C-{year}-{row.id:06d}"
    return row.reference


# ---------------------------------------------------------------------- the task inbox
# Visibility: a task is visible to its assignee, to whoever completed it, and (in the task's states)
# to members of its candidate groups; quality leads and admins see every task. Each rule is its own
# indexed SELECT and the inbox takes their UNION, instead of one OR over an IN-subquery that the
# planners answer with a scan of the whole task table.
def _given(value: Any) -> bool:
    """A filter value is given: a non-empty value, or the bind parameter a cached statement fills in."""
    return isinstance(value, BindParameter) or bool(value)


def task_filters(stmt: Any, states: tuple[str, ...], instance_id: str | None, process_key: Any) -> Any:
    stmt = stmt.where(HumanTask.state == states[0] if len(states) == 1 else HumanTask.state.in_(states))
    if instance_id:
        stmt = stmt.where(HumanTask.instance_id == instance_id)
    if _given(process_key):
        stmt = stmt.where(HumanTask.process_key == process_key)
    return stmt


def visible_task_ids(username: Any, groups: Iterable[str] | BindParameter[Any], *, lead: bool,
                     states: tuple[str, ...], mine: bool = False, in_groups: bool = False,
                     instance_id: str | None = None, process_key: Any = None) -> Any:
    """A SELECT of the ids of the tasks in `states` the user may see.

    `mine`: only tasks assigned to or completed by the user; `in_groups`: only tasks of the user's
    candidate groups (also for leads); otherwise everything the user may see. The user, groups and
    process may be bind parameters (a cached statement, `inbox_counts`).
    """
    def branch(stmt: Any) -> Any:
        return task_filters(stmt, states, instance_id, process_key)

    names = groups if isinstance(groups, BindParameter) else sorted(groups)
    # task_state is kept equal to human_task.state by triggers (storage.models.TASK_GROUP_TRIGGERS),
    # so this branch is one range of ix_human_task_group_inbox with no look-up of the tasks; it joins
    # the tasks only to filter by instance or process. Runtime.tasks checks the loaded rows again.
    group_branch = select(HumanTaskGroup.task_id).where(HumanTaskGroup.group_name.in_(names), _group_state(states))
    if instance_id or _given(process_key):
        group_branch = branch(group_branch.join(HumanTask, HumanTask.id == HumanTaskGroup.task_id))
    if in_groups:
        return group_branch.distinct()
    if lead and not mine:
        return branch(select(HumanTask.id))
    branches = [branch(select(HumanTask.id).where(HumanTask.assignee == username)),
                branch(select(HumanTask.id).where(HumanTask.completed_by == username))]
    if not mine and _given(names):
        branches.append(group_branch)
    return union(*branches)


def _group_state(states: tuple[str, ...]) -> Any:
    return HumanTaskGroup.task_state == states[0] if len(states) == 1 else HumanTaskGroup.task_state.in_(states)


def first_group_task_ids(groups: Iterable[str], states: tuple[str, ...], n: int) -> Any:
    """The ids of the first `n` tasks in `states` of the groups in inbox order (due first, undated
    last, then priority, then age; Runtime.tasks' "due" sort), for the plain "my groups" tab: the
    group rows carry copies of those sort keys (TASK_GROUP_TRIGGERS), so this is one index-only range
    of ix_human_task_group_inbox and only the `n` tasks listed are read, instead of every open task of
    the groups. A task in two of the groups is one group (GROUP BY: its copies agree)."""
    g = HumanTaskGroup
    firsts = (select(g.task_id).where(g.group_name.in_(sorted(groups)), _group_state(states))
              .group_by(g.task_id, g.task_due_at, g.task_priority, g.task_created_at)
              .order_by(g.task_due_at.is_(None), g.task_due_at, g.task_priority.desc(), g.task_created_at, g.task_id)
              .limit(n))
    return select(firsts.subquery().c.task_id)


def unassigned_condition(task_id: Any, assignee: Any) -> Any:
    """No assignee and no candidate group or user: the task waits for a quality lead to assign it."""
    return and_(assignee.is_(None), ~exists(select(HumanTaskGroup.task_id).where(HumanTaskGroup.task_id == task_id)))


def first_task_ids(states: tuple[str, ...], n: int, instance_id: str | None = None,
                   process_key: str | None = None) -> Any:
    """The ids of the first `n` tasks in `states` in inbox order (due first, undated last, then
    priority, then age), for leads' unrestricted lists: one ordered range of
    ix_human_task_state_order per state and dated/undated, instead of sorting every open task."""
    parts = []
    for state in states:
        for dated in (True, False):
            sub = task_filters(select(HumanTask.id), (state,), instance_id, process_key)
            if dated:
                sub = sub.where(HumanTask.due_at.is_not(None)).order_by(HumanTask.due_at)
            else:
                sub = sub.where(HumanTask.due_at.is_(None))
            sub = sub.order_by(HumanTask.priority.desc(), HumanTask.created_at, HumanTask.id).limit(n)
            parts.append(select(sub.subquery().c.id))
    return union_all(*parts)


def _count_of(ids: Any) -> Any:
    return select(func.count()).select_from(ids.subquery())


_USER = bindparam("c_user")
_GROUPS = bindparam("c_groups", expanding=True)
_PROCESS = bindparam("c_process")
_NOW = bindparam("c_now")


def inbox_counts(session: Session, username: str, groups: Iterable[str], *, lead: bool, tabs: Iterable[str],
                 process_key: str | None = None, now: Any = None) -> dict[str, int]:
    """Exact task counts of the inbox tabs: mine (held by me), groups (open in my groups),
    completed (completed by or assigned to me), overdue and, for leads, all (every open or claimed
    task) and unassigned.

    One statement of scalar subqueries (one indexed count each): a page's counts cost one round trip.
    The statement is built once per shape (tabs, lead, process filter, groups) with bind parameters:
    building it costs more than running it."""
    groups = sorted(groups)
    tabs = list(tabs)
    out = {tab: 0 for tab in tabs}
    stmt = _counts_statement(tuple(tabs), lead, bool(process_key), bool(groups))
    if stmt is not None:
        row = session.execute(stmt, {"c_user": username, "c_groups": groups, "c_process": process_key,
                                     "c_now": now}).one()
        out.update({tab: value or 0 for tab, value in row._mapping.items()})
    return out


@functools.lru_cache(maxsize=64)
def _counts_statement(tabs: tuple[str, ...], lead: bool, by_process: bool, has_groups: bool) -> Any:
    username, process_key, now = _USER, _PROCESS if by_process else None, _NOW
    groups: Any = _GROUPS if has_groups else []
    open_states = ("open", "claimed")
    counts: dict[str, Any] = {}
    for tab in tabs:
        if tab == "mine":
            counts[tab] = task_filters(select(func.count()).select_from(HumanTask).where(
                HumanTask.assignee == username), open_states, None, process_key)
        elif tab == "groups":
            counts[tab] = _count_of(visible_task_ids(username, groups, lead=lead, states=("open",), in_groups=True,
                                                     process_key=process_key))
        elif tab == "completed":  # assigned to me, plus completed by me while someone else held it: disjoint
            done = select(func.count()).select_from(HumanTask)
            counts[tab] = select(
                task_filters(done.where(HumanTask.assignee == username), ("completed",), None,
                             process_key).scalar_subquery()
                + task_filters(done.where(HumanTask.completed_by == username, or_(
                    HumanTask.assignee.is_(None), HumanTask.assignee != username)), ("completed",), None,
                               process_key).scalar_subquery())
        elif tab == "all":
            counts[tab] = _count_of(visible_task_ids(username, groups, lead=True, states=open_states,
                                                     process_key=process_key))
        elif tab == "unassigned" and lead:
            counts[tab] = task_filters(select(func.count()).select_from(HumanTask).where(
                unassigned_condition(HumanTask.id, HumanTask.assignee)), ("open",), None, process_key)
        elif tab == "overdue" and lead:
            ids = visible_task_ids(username, groups, lead=lead, states=open_states, process_key=process_key)
            counts[tab] = select(func.count()).select_from(HumanTask).where(
                HumanTask.id.in_(ids), HumanTask.state.in_(open_states), HumanTask.due_at < now)
        elif tab == "overdue":  # the visibility branches, each with the due date in its own index range
            counts[tab] = _count_of(_overdue_ids(username, groups, open_states, process_key, now))
    if not counts:
        return None
    return select(*(stmt.scalar_subquery().label(tab) for tab, stmt in counts.items()))


def _overdue_ids(username: Any, groups: Any, states: tuple[str, ...], process_key: Any, now: Any) -> Any:
    """The ids of the overdue tasks a non-lead sees (visible_task_ids' branches, due before `now`): the
    groups' branch reads the due date the group rows carry, an index-only range instead of a look-up
    of every open task of the groups."""
    def due(stmt: Any) -> Any:
        return task_filters(stmt, states, None, process_key).where(HumanTask.due_at < now)

    branches = [due(select(HumanTask.id).where(HumanTask.assignee == username)),
                due(select(HumanTask.id).where(HumanTask.completed_by == username))]
    if _given(groups):
        g = HumanTaskGroup
        mine = select(g.task_id).where(g.group_name.in_(groups), _group_state(states), g.task_due_at < now)
        if _given(process_key):
            mine = mine.join(HumanTask, HumanTask.id == g.task_id).where(HumanTask.process_key == process_key)
        branches.append(mine)
    return union(*branches)


def process_choices(session: Session) -> list[tuple[str, str]]:
    """(key, display name) of every deployed BPMN process, in one statement: the latest version's name, else the key."""
    rows = session.execute(select(ProcessDefinition.key, ProcessDefinition.name)
                           .where(ProcessDefinition.kind == "bpmn")
                           .order_by(ProcessDefinition.key, ProcessDefinition.version))
    names: dict[str, str] = {}
    for key, name in rows:  # ordered by version: the latest name wins
        names[key] = name or key
    return list(names.items())


def process_keys(session: Session) -> list[str]:
    """Keys of the deployed BPMN processes (for filters), without loading their XML or specs."""
    return list(session.scalars(select(ProcessDefinition.key).where(ProcessDefinition.kind == "bpmn")
                                .distinct().order_by(ProcessDefinition.key)))


_DEPLOY_LOCK = 0x70646366  # any constant: the advisory lock all deploys take


def lock_deployments(session: Session) -> None:
    """One deployment at a time, until its transaction ends: two deploys of one key would both take
    the next version number, and the second would fail on (key, version). SQLite's write lock
    already serialises them; PostgreSQL takes a transaction-level advisory lock."""
    if session.connection().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_DEPLOY_LOCK)))
