"""External tasks (Camunda 7's pattern): the projection table of tasks a worker does over
`/engine-rest`, and its SQL. A task is `open` while its token waits, `done` when completed or
ended by a BPMN error, `cancelled` when the token left otherwise (a boundary event, a cancelled
instance). Fetch-and-lock is a lease (storage/leases.py): `locked_by` is the worker id,
`locked_until` the lock expiry (and, after a failure, "not before" the retry timeout).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Index,
    Row,
    String,
    Text,
    and_,
    bindparam,
    exists,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage import leases
from storage.models import Base, ProcessDefinition, ProcessInstance
from storage.rows import execute_rows
from storage.snapshot_version import SEEN_VERSION


class ExternalTaskRow(Base):
    __tablename__ = "external_task"
    __table_args__ = (Index("ix_external_task_fetch", "state", "topic", "priority"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the SpiffWorkflow task id
    instance_id: Mapped[str] = mapped_column(String(32), index=True)
    definition_id: Mapped[int]
    process_key: Mapped[str] = mapped_column(String(255))
    business_key: Mapped[str | None] = mapped_column(String(255))
    activity_id: Mapped[str] = mapped_column(String(255))
    activity_name: Mapped[str | None] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    priority: Mapped[int] = mapped_column(default=0)
    retries: Mapped[int | None]  # NULL until a worker reports the first failure (as in Camunda)
    state: Mapped[str] = mapped_column(String(12), default="open")
    locked_by: Mapped[str | None] = mapped_column(String(255))
    locked_until: Mapped[datetime | None]
    error_message: Mapped[str | None] = mapped_column(Text)
    error_details: Mapped[str | None] = mapped_column(Text)
    properties: Mapped[dict[str, Any] | None]  # the task's camunda:properties (Camunda's extension properties)
    # the task's local variables when it began waiting (camunda:inputOutput inputs, a multi-instance
    # element variable): a worker fetches them with the process variables, or alone (`localVariables`)
    local_variables: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


_ET = ExternalTaskRow.__table__
_PI = ProcessInstance.__table__
_PD = ProcessDefinition.__table__


def fetchable(now: datetime, topics: Sequence[str]) -> list[Any]:
    return [_ET.c.state == "open", _ET.c.topic.in_(list(topics)),
            or_(_ET.c.retries.is_(None), _ET.c.retries > 0)]


def any_fetchable(conn: Connection, topics: Sequence[str], now: datetime) -> bool:
    """A cheap read for long polling: is there anything a fetch could lock now?"""
    return bool(conn.execute(select(exists().where(*fetchable(now, topics), leases.free(_ET, now)))).scalar())


_CLAIMS: dict[tuple[Any, ...], Any] = {}  # prebuilt claim statements by dialect and filter shape
# a claimed row comes back whole, with what a fetch answers from its instance (so no second read)
_CLAIM_RETURNING = [*_ET.c,
                    select(_PI.c.data).where(_PI.c.id == _ET.c.instance_id).scalar_subquery().label("instance_data"),
                    select(_PI.c.process_version).where(_PI.c.id == _ET.c.instance_id).scalar_subquery()
                    .label("process_version"),
                    select(_PI.c.variable_types).where(_PI.c.id == _ET.c.instance_id).scalar_subquery()
                    .label("instance_variable_types")]


def _claim_statement(dialect: str, use_priority: bool, business_key: bool, process_key: bool, instance_id: bool,
                     among: bool, process_keys: bool = False, definition_ids: bool = False,
                     newest_first: bool = False) -> Any:
    shape = (dialect, use_priority, business_key, process_key, instance_id, among, process_keys, definition_ids,
             newest_first)
    stmt = _CLAIMS.get(shape)
    if stmt is None:
        where = [_ET.c.state == "open", _ET.c.topic == bindparam("b_topic"),
                 or_(_ET.c.retries.is_(None), _ET.c.retries > 0)]
        if among:
            where.append(_ET.c.id.in_(bindparam("b_among", expanding=True)))
        if business_key:
            where.append(_ET.c.business_key == bindparam("b_business_key"))
        if process_key:
            where.append(_ET.c.process_key == bindparam("b_process_key"))
        if instance_id:
            where.append(_ET.c.instance_id == bindparam("b_instance_id"))
        if process_keys:
            where.append(_ET.c.process_key.in_(bindparam("b_process_keys", expanding=True)))
        if definition_ids:
            where.append(_ET.c.definition_id.in_(bindparam("b_definition_ids", expanding=True)))
        stmt = leases.claim_statement(_ET, dialect=dialect, where=where, order_by=_order(use_priority, newest_first),
                                      returning=_CLAIM_RETURNING)
        _CLAIMS[shape] = stmt
    return stmt


def _order(use_priority: bool, newest_first: bool = False) -> list[Any]:
    by_age = [_ET.c.created_at.desc(), _ET.c.id.desc()] if newest_first else [_ET.c.created_at, _ET.c.id]
    return ([_ET.c.priority.desc()] if use_priority else []) + by_age


def _in_order(rows: list[Row], use_priority: bool, newest_first: bool) -> list[Row]:
    """Claimed rows in the order of `_order` (RETURNING gives them in no particular order)."""
    rows.sort(key=lambda r: (r.created_at, r.id), reverse=newest_first)
    if use_priority:
        rows.sort(key=lambda r: -r.priority)  # a stable sort: the age order holds within a priority
    return rows


def definition_ids(conn: Connection, definitions: Sequence[tuple[str, int]]) -> list[int]:
    """The row ids of the (key, version) process definitions that exist."""
    if not definitions:
        return []
    stmt = select(_PD.c.id).where(or_(*(and_(_PD.c.key == key, _PD.c.version == version)
                                        for key, version in definitions)))
    return list(conn.scalars(stmt))


def claim(conn: Connection, worker: str, topic: str, *, now: datetime, until: datetime, limit: int,
          use_priority: bool, business_key: str | None = None, process_key: str | None = None,
          instance_id: str | None = None, among: Sequence[str] | None = None,
          process_keys: Sequence[str] | None = None, definition_ids: Sequence[int] | None = None,
          newest_first: bool = False) -> list[Row]:
    """Lock up to `limit` fetchable tasks of `topic` (only `among` these ids, of these processes or
    definition rows, if given) to `worker` until `until`; their rows (as `get` returns them: with
    `instance_data`, `process_version` and `instance_variable_types`), by priority (with `use_priority`) and age (oldest first
    unless `newest_first`). One statement (leases.py)."""
    if limit <= 0:
        return []
    if (process_keys is not None and not process_keys) or (definition_ids is not None and not definition_ids):
        return []
    stmt = _claim_statement(conn.dialect.name, use_priority, business_key is not None, process_key is not None,
                            instance_id is not None, among is not None, process_keys is not None,
                            definition_ids is not None, newest_first)
    params: dict[str, Any] = {"worker": worker, "now": now, "until": until, "limit": limit, "b_topic": topic}
    if among is not None:
        if not among:
            return []
        params["b_among"] = list(among)
    for name, value in (("business_key", business_key), ("process_key", process_key), ("instance_id", instance_id),
                        ("process_keys", process_keys), ("definition_ids", definition_ids)):
        if value is not None:
            params["b_" + name] = list(value) if isinstance(value, (list, tuple)) else value
    return _in_order(list(conn.execute(stmt, params)), use_priority, newest_first)


def candidates_with_data(conn: Connection, topic: str, now: datetime, limit: int) -> list[Row]:
    """Fetchable tasks of a topic with their instance's variables (a topic filtered by process variables)."""
    stmt = (select(_ET.c.id, _PI.c.data).join(_PI, _PI.c.id == _ET.c.instance_id)
            .where(*fetchable(now, [topic]), leases.free(_ET, now)).order_by(_ET.c.created_at, _ET.c.id).limit(limit))
    return list(conn.execute(stmt))


_WITH_INSTANCE = select(_ET, _PI.c.data.label("instance_data"), _PI.c.process_version,
                        _PI.c.variable_types.label("instance_variable_types")).join(
    _PI, _PI.c.id == _ET.c.instance_id)


# prebuilt: the fetch/complete round trip is the hot path
_ONE_WITH_INSTANCE = _WITH_INSTANCE.where(_ET.c.id == bindparam("task_id"))
_LOCK_ROW = select(_ET).where(_ET.c.id == bindparam("task_id")).with_for_update()


def get(conn: Connection, task_id: str) -> Row | None:
    return conn.execute(_ONE_WITH_INSTANCE, {"task_id": task_id}).first()


# the instance row of a task, locked (FOR UPDATE applies to process_instance only, not the subquery)
_LOCK_INSTANCE_OF = select(_PI).where(
    _PI.c.id == select(_ET.c.instance_id).where(_ET.c.id == bindparam("task_id")).scalar_subquery()
).with_for_update()
# ... and with every external-task row of the instance as "id:state,..." (the ids are uuids), and the
# instance's version as the statement's snapshot saw it (storage/snapshot_version.py: are they current?)
_ROWS_OF = _ET.alias("rows_of")
_LOCK_INSTANCE_OF_WITH_ROWS = _LOCK_INSTANCE_OF.add_columns(
    select(func.aggregate_strings(_ROWS_OF.c.id + ":" + _ROWS_OF.c.state, ","))
    .where(_ROWS_OF.c.instance_id == _PI.c.id).scalar_subquery().label("external_rows"),
    SEEN_VERSION)


def lock_instance_of(conn: Connection, task_id: str) -> Row | None:
    """The task's instance row, locked: an outcome locks it first (the one lock order), in one round trip."""
    return conn.execute(_LOCK_INSTANCE_OF, {"task_id": task_id}).first()


def lock_instance_with_rows(conn: Connection, task_id: str) -> tuple[dict[str, Any], dict[str, str] | None] | None:
    """`lock_instance_of` plus the state of every external-task row of the instance ({id: state}),
    read in the same statement (a completion's save then need not read them again); None for the
    rows when they may be older than the locked row (the statement waited for someone's lock)."""
    record = conn.execute(_LOCK_INSTANCE_OF_WITH_ROWS, {"task_id": task_id}).first()
    if record is None:
        return None
    values = dict(record._mapping)
    packed = values.pop("external_rows") or ""
    if values.pop("seen_version") != values["version"]:
        return values, None
    return values, dict(item.split(":", 1) for item in packed.split(",") if item)


def lock_row(conn: Connection, task_id: str) -> Row | None:
    """The row, locked for this transaction (after its instance row: the one lock order)."""
    return conn.execute(_LOCK_ROW, {"task_id": task_id}).first()


_FINISH_HELD = (update(_ET).where(_ET.c.id == bindparam("b_id"), _ET.c.state == "open",
                                  _ET.c.locked_by == bindparam("b_worker"))
                .values(state=bindparam("state"), ended_at=bindparam("ended_at"), locked_by=None, locked_until=None)
                .returning(_ET.c.retries, _ET.c.activity_id, _ET.c.activity_name, _ET.c.topic))


def finish_held(conn: Connection, task_id: str, worker: str, state: str, at: datetime) -> Row | None:
    """`finish` if the task is open and `worker` holds its lock (checked and written in one statement);
    the row's retries, activity and topic, or None when it is not (nothing written)."""
    return conn.execute(_FINISH_HELD, {"b_id": task_id, "b_worker": worker, "state": state, "ended_at": at}).first()


_SORTS = {"id": [_ET.c.id], "lockExpirationTime": [_ET.c.locked_until], "processInstanceId": [_ET.c.instance_id],
          "processDefinitionId": [_ET.c.process_key, _PI.c.process_version], "processDefinitionKey": [_ET.c.process_key],
          "taskPriority": [_ET.c.priority], "createTime": [_ET.c.created_at], "tenantId": []}
SORT_FIELDS = tuple(_SORTS)  # what `listing` can order by (Camunda's sortBy names)


def listing(conn: Connection, *, instance_id: str | None = None, topic: str | None = None,
            worker: str | None = None, locked: bool | None = None, activity_id: str | None = None,
            with_retries_left: bool | None = None, process_key: str | None = None, now: datetime,
            task_ids: Sequence[str] | None = None, instance_ids: Sequence[str] | None = None,
            activity_ids: Sequence[str] | None = None, definitions: Sequence[tuple[str, int]] | None = None,
            min_priority: int | None = None, max_priority: int | None = None,
            sort: tuple[str, bool] | None = None, limit: int = 1000, offset: int = 0) -> list[Row]:
    """Open tasks with their instance's data and version, filtered; oldest first unless `sort` is
    (a SORT_FIELDS name, descending)."""
    stmt = _filtered(_WITH_INSTANCE, instance_id=instance_id, topic=topic, worker=worker, locked=locked,
                     activity_id=activity_id, with_retries_left=with_retries_left, process_key=process_key, now=now,
                     task_ids=task_ids, instance_ids=instance_ids, activity_ids=activity_ids, definitions=definitions,
                     min_priority=min_priority, max_priority=max_priority)
    order = [_ET.c.created_at, _ET.c.id]
    if sort is not None:
        columns, descending = _SORTS[sort[0]], sort[1]
        order = [c.desc() if descending else c for c in columns] + order
    return list(conn.execute(stmt.order_by(*order).limit(limit).offset(offset)))


def listing_count(conn: Connection, **filters: Any) -> int:
    """How many open tasks `listing` with these filters would list (all of them, unpaged)."""
    stmt = _filtered(select(func.count()).select_from(_ET.join(_PI, _PI.c.id == _ET.c.instance_id)), **filters)
    return conn.execute(stmt).scalar_one()


def _filtered(stmt: Any, *, instance_id: str | None = None, topic: str | None = None, worker: str | None = None,
              locked: bool | None = None, activity_id: str | None = None, with_retries_left: bool | None = None,
              process_key: str | None = None, now: datetime, task_ids: Sequence[str] | None = None,
              instance_ids: Sequence[str] | None = None, activity_ids: Sequence[str] | None = None,
              definitions: Sequence[tuple[str, int]] | None = None, min_priority: int | None = None,
              max_priority: int | None = None) -> Any:
    stmt = stmt.where(_ET.c.state == "open")
    for column, value in ((_ET.c.instance_id, instance_id), (_ET.c.topic, topic), (_ET.c.locked_by, worker),
                          (_ET.c.activity_id, activity_id), (_ET.c.process_key, process_key)):
        if value:
            stmt = stmt.where(column == value)
    for column, values in ((_ET.c.id, task_ids), (_ET.c.instance_id, instance_ids), (_ET.c.activity_id, activity_ids)):
        if values is not None:
            stmt = stmt.where(column.in_(list(values)))
    if definitions is not None:
        stmt = stmt.where(or_(false(), *(and_(_ET.c.process_key == key, _PI.c.process_version == version)
                                         for key, version in definitions)))
    if min_priority is not None:
        stmt = stmt.where(_ET.c.priority >= min_priority)
    if max_priority is not None:
        stmt = stmt.where(_ET.c.priority <= max_priority)
    if locked is True:
        stmt = stmt.where(_ET.c.locked_by.is_not(None), _ET.c.locked_until > now)
    elif locked is False:
        stmt = stmt.where(leases.free(_ET, now))
    if with_retries_left is True:
        stmt = stmt.where(or_(_ET.c.retries.is_(None), _ET.c.retries > 0))
    elif with_retries_left is False:
        stmt = stmt.where(_ET.c.retries <= 0)
    return stmt


def set_values(conn: Connection, task_id: str, **values: Any) -> None:
    conn.execute(update(_ET).where(_ET.c.id == task_id).values(**values))


def extend_lock(conn: Connection, task_id: str, worker: str, until: datetime, now: datetime) -> int:
    """A new expiry for a lock `worker` still holds."""
    result = conn.execute(update(_ET).where(_ET.c.id == task_id, _ET.c.state == "open", _ET.c.locked_by == worker,
                                            _ET.c.locked_until > now).values(locked_until=until))
    return result.rowcount or 0


def lock_one(conn: Connection, task_id: str, worker: str, until: datetime, now: datetime) -> int:
    """Lock an open task to `worker` unless another worker holds an unexpired lock."""
    result = conn.execute(update(_ET).where(_ET.c.id == task_id, _ET.c.state == "open",
                                            or_(_ET.c.locked_by.is_(None), _ET.c.locked_by == worker,
                                                leases.free(_ET, now)))
                          .values(locked_by=worker, locked_until=until))
    return result.rowcount or 0


# ---------------------------------------------------------------------- projection
_OPEN_OF_INSTANCES = select(_ET.c.id, _ET.c.state, _ET.c.instance_id).where(
    _ET.c.instance_id.in_(bindparam("b_instances", expanding=True)), _ET.c.state == "open")
_OPEN_OR_GIVEN_OF_INSTANCES = select(_ET.c.id, _ET.c.state, _ET.c.instance_id).where(
    _ET.c.instance_id.in_(bindparam("b_instances", expanding=True)),
    or_(_ET.c.state == "open", _ET.c.id.in_(bindparam("b_tasks", expanding=True))))


def of_instances(conn: Connection, instance_ids: Sequence[str], task_ids: Sequence[str]) -> dict[str, Row]:
    """The open rows of the instances, plus rows of the given task ids whatever their state
    (prebuilt: every save of an instance with external tasks runs it)."""
    if task_ids:
        rows = conn.execute(_OPEN_OR_GIVEN_OF_INSTANCES, {"b_instances": list(instance_ids), "b_tasks": list(task_ids)})
    else:
        rows = conn.execute(_OPEN_OF_INSTANCES, {"b_instances": list(instance_ids)})
    return {r.id: r for r in rows}


def insert_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        execute_rows(conn, insert(_ET).inline(), rows)


def close_rows(conn: Connection, task_ids: list[str], state: str, at: datetime) -> None:
    if task_ids:
        conn.execute(update(_ET).where(_ET.c.id.in_(task_ids), _ET.c.state == "open")
                     .values(state=state, ended_at=at, locked_by=None, locked_until=None))


def exhausted_ids(conn: Connection, instance_id: str) -> list[str]:
    return list(conn.scalars(select(_ET.c.id).where(_ET.c.instance_id == instance_id, _ET.c.state == "open",
                                                    _ET.c.retries <= 0)))
