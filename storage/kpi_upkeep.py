"""The SQL of the KPI facts' upkeep: which instances changed since the last refresh (the audit-event
cursor), their rows, and replacing their fact rows together with the rollups' rows they count in.

The refresh (``engine.kpis.refresh_facts``) re-reads the instances that have audit events since the
last refresh (every write of an instance records at least one audit event in the same
transaction), so no hook in the runtime is needed; the scheduler pass runs it, requests never do.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Row,
    delete,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.orm import Session

from storage.models import AuditEvent, HumanTask, ProcessInstance

if TYPE_CHECKING:
    from storage.kpi_queries import KpiRules
from storage.kpi_facts import CHUNK, ActionFact, ComplaintFact, KpiRefreshState, TaskFact
from storage.kpi_rollups import (
    fact_changes,
    fact_days,
    first_closures,
    recount_rollup_days,
    recount_step_days,
    recurrence_days,
    roll_actions,
    rollup_current,
    utc_day,
)

# PostgreSQL sequences may hand out ids to transactions that commit later than a higher id;
# re-read the instances touched in this window on every refresh so such late commits are not missed.
PG_LOOKBACK = timedelta(minutes=5)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def chunks(ids: list[str]) -> Iterator[list[str]]:
    """`ids` in slices short enough for one IN list."""
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


def instance_rows(session: Session, instance_ids: list[str]) -> Sequence[Row[Any]]:
    """(id, process_key, status, data, started_at) of the instances."""
    return session.execute(select(ProcessInstance.id, ProcessInstance.process_key, ProcessInstance.status,
                                  ProcessInstance.data, ProcessInstance.started_at)
                           .where(ProcessInstance.id.in_(instance_ids))).all()


def task_rows(session: Session, instance_ids: list[str]) -> Sequence[Row[Any]]:
    """(id, instance_id, process_key, spec_id, name, state, created_at, completed_at, assignee, completed_by,
    due_at, context) of their human tasks."""
    return session.execute(select(HumanTask.id, HumanTask.instance_id, HumanTask.process_key, HumanTask.spec_id,
                                  HumanTask.name, HumanTask.state, HumanTask.created_at, HumanTask.completed_at,
                                  HumanTask.assignee, HumanTask.completed_by, HumanTask.due_at, HumanTask.context)
                           .where(HumanTask.instance_id.in_(instance_ids))).all()


def replace_facts(session: Session, instance_ids: list[str], facts: list[dict[str, Any]],
                  actions: list[dict[str, Any]], tasks: list[dict[str, Any]], rules: KpiRules | None = None) -> None:
    """Replace the fact rows of the instances by the given ones, keeping the scope copies on action and
    task rows (kind, process_key, instance_status of their complaint_fact row), action_rollup and, with
    `rules` (the rollup is current), complaint_rollup's rows of the days the old and new facts count in."""
    by_instance = {f["instance_id"]: f for f in facts}
    for a in actions:
        fact = by_instance[a["instance_id"]]
        a.update(kind=fact["kind"], process_key=fact["process_key"], instance_status=fact["instance_status"])
    for t in tasks:
        t["kind"] = by_instance[t["instance_id"]]["kind"] if t["instance_id"] in by_instance else None
    roll_actions(session, instance_ids, actions)
    days, groups, before, steps = set(), set(), {}, set()
    if rules is not None:  # only what changes for the rollups is recounted (a refresh mostly rewrites equal rows)
        changed, changed_tasks = fact_changes(session, instance_ids, facts, tasks)
        days = fact_days(changed)
        groups = {(f["kind"], f["category"], f["product"]) for f in changed
                  if f["category"] is not None and f["product"] is not None}
        steps = {utc_day(t["completed_at"]) for t in changed_tasks
                 if t["state"] == "completed" and t["completed_at"] is not None}
        before = first_closures(session, groups)
    for table in (ComplaintFact, ActionFact, TaskFact):
        session.execute(delete(table).where(table.instance_id.in_(instance_ids)))
    if facts:
        session.execute(insert(ComplaintFact), facts)
    if actions:
        session.execute(insert(ActionFact), actions)
    if tasks:
        session.execute(insert(TaskFact), tasks)
    if rules is not None:
        recount_rollup_days(session, days | recurrence_days(session, before, first_closures(session, groups)),
                            rules)
        recount_step_days(session, steps)




def lock_refresh_state(session: Session) -> KpiRefreshState:
    """The refresh cursor, locked for this transaction on PostgreSQL (created on first use: a concurrent
    first refresh then fails with IntegrityError at the flush)."""
    query = select(KpiRefreshState).where(KpiRefreshState.name == "facts")
    if _dialect(session) == "postgresql":
        query = query.with_for_update()
    state = session.scalars(query).first()
    if state is None:
        state = KpiRefreshState(name="facts", last_audit_id=0, refreshed_at=None)
        session.add(state)
        session.flush()
    return state


def refresh_mark(session: Session, state: KpiRefreshState | None = None) -> tuple[int, datetime | None] | None:
    """Where the refresh cursor stands (`state`, else read): every refresh that writes facts moves it."""
    state = state if state is not None else session.get(KpiRefreshState, "facts")
    return None if state is None else (state.last_audit_id, state.refreshed_at)


def last_audit_id(session: Session) -> int:
    return session.scalar(select(func.max(AuditEvent.id))) or 0


def changed_instances(session: Session, state: KpiRefreshState, *, full: bool = False) -> list[str]:
    """Ids of the instances with audit events after the cursor (plus PG_LOOKBACK), or of all instances."""
    if full:
        return list(session.scalars(select(ProcessInstance.id)))
    touched = AuditEvent.id > state.last_audit_id
    if state.refreshed_at is not None and _dialect(session) != "sqlite":
        touched = or_(touched, AuditEvent.at >= state.refreshed_at - PG_LOOKBACK)
    return list(session.scalars(select(AuditEvent.instance_id).where(touched, AuditEvent.instance_id.is_not(None))
                                .distinct()))


def mark_refreshed(state: KpiRefreshState, top_audit_id: int, now: datetime) -> None:
    state.last_audit_id = max(top_audit_id, state.last_audit_id)
    state.refreshed_at = now


def needs_refresh(session: Session, rules: KpiRules) -> bool:
    state = session.get(KpiRefreshState, "facts")
    if state is None or not rollup_current(session, rules):
        return True
    if _dialect(session) != "sqlite":
        return True  # the look-back window (see PG_LOOKBACK) must be re-read
    return last_audit_id(session) > state.last_audit_id


def refreshed_at(session: Session) -> datetime | None:
    """When the facts were last refreshed (None: never)."""
    state = session.get(KpiRefreshState, "facts")
    return state.refreshed_at if state is not None else None

