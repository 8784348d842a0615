"""KPI fact tables and the SQL of their upkeep (no business rules: engine/kpi_rules.py decides
what a fact row holds, engine/kpis.py runs the refresh).

The dashboard never loads workflow state: it aggregates these narrow, indexed tables.

* ``complaint_fact``: one row per tracked instance (complaint / feedback / nonconformity).
* ``action_fact``: one row per corrective action of every RCA round.
* ``task_fact``: one row per human task (created → completed), for the bottleneck view.
* ``action_rollup``: actions per (kind, process, instance status, due date).
* ``complaint_rollup``: complaint figures per UTC day of receipt / closure (the dashboard's year).
* ``step_rollup``: completed human tasks per step and UTC day of completion.
* ``kpi_refresh_state``: the audit-event cursor of the incremental refresh.

The refresh (``engine.kpis.refresh_facts``) re-reads the instances that have audit events since the
last refresh (every write of an instance records at least one audit event in the same
transaction), so no hook in the runtime is needed; the scheduler pass runs it, requests never do.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    Index,
    Integer,
    Row,
    String,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from storage.models import AuditEvent, Base, HumanTask, ProcessInstance

if TYPE_CHECKING:
    from storage.kpi_queries import KpiRules

CHUNK = 400  # instance ids per IN list
# PostgreSQL sequences may hand out ids to transactions that commit later than a higher id;
# re-read the instances touched in this window on every refresh so such late commits are not missed.
PG_LOOKBACK = timedelta(minutes=5)


class ComplaintFact(Base):
    __tablename__ = "complaint_fact"
    __table_args__ = (
        Index("ix_complaint_fact_kind_received", "kind", "received_at"),
        Index("ix_complaint_fact_kind_closed", "kind", "closed_at"),
        Index("ix_complaint_fact_process_received", "process_key", "received_at"),
        Index("ix_complaint_fact_recurrence", "category", "product", "closed_at"),
        # covering indexes of the dashboard (migration 0006): each KPI pass reads one index range
        # instead of looking up 100,000 table rows
        Index("ix_complaint_fact_received_cov", "kind", "received_at", "instance_status", "valid", "status",
              "acknowledged_at", "ack_seconds", "closed_at", "category", "product", "instance_id", "process_key"),
        Index("ix_complaint_fact_closed_cov", "kind", "closed_at", "close_seconds", "effective_first_check",
              "rca_loops", "process_key"),
        Index("ix_complaint_fact_survey_cov", "closed_at", "csat", "nps", "kind", "process_key"),
        Index("ix_complaint_fact_first_closed", "kind", "category", "product", "closed_at"),
        Index("ix_complaint_fact_recurrence_cov", "kind", "category", "product", "received_at", "valid", "closed_at",
              "instance_id", "process_key"),
        Index("ix_complaint_fact_root_cause", "kind", "received_at", "root_cause", "process_key"),
        # the same columns with the GROUP BY keys first, for long periods (storage.kpi_queries.FactQuery.long)
        Index("ix_complaint_fact_root_cause_order", "kind", "root_cause", "received_at", "process_key"),
        Index("ix_complaint_fact_severity", "severity"),  # the filter form's distinct severities
        Index("ix_complaint_fact_category_order", "kind", "category", "received_at", "process_key"),
        Index("ix_complaint_fact_ack_order", "kind", "ack_seconds", "received_at", "process_key"),
        Index("ix_complaint_fact_close_order", "kind", "close_seconds", "closed_at", "process_key"),
        Index("ix_complaint_fact_survey_order", "csat", "nps", "closed_at", "kind", "process_key"),
    )

    instance_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    process_key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str | None] = mapped_column(String(255))
    instance_status: Mapped[str] = mapped_column(String(16))
    status: Mapped[str | None] = mapped_column(String(20))
    received_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    ack_seconds: Mapped[float | None] = mapped_column(Float)
    close_seconds: Mapped[float | None] = mapped_column(Float)
    category: Mapped[str | None] = mapped_column(String(40))
    severity: Mapped[str | None] = mapped_column(String(20))
    product: Mapped[str | None] = mapped_column(String(255))
    customer: Mapped[str | None] = mapped_column(String(255))
    valid: Mapped[bool | None] = mapped_column(Boolean)
    rca_loops: Mapped[int] = mapped_column(Integer, default=0)
    effective_first_check: Mapped[bool | None] = mapped_column(Boolean)
    effective: Mapped[bool | None] = mapped_column(Boolean)
    root_cause: Mapped[str | None] = mapped_column(Text)
    csat: Mapped[int | None] = mapped_column(Integer)
    nps: Mapped[int | None] = mapped_column(Integer)
    survey_status: Mapped[str | None] = mapped_column(String(20))
    feedback_type: Mapped[str | None] = mapped_column(String(20))


class ActionFact(Base):
    __tablename__ = "action_fact"
    __table_args__ = (Index("ix_action_fact_due", "due_on", "done_on"),
                      Index("ix_action_fact_instance", "instance_id"),
                      Index("ix_action_fact_kind_due", "kind", "due_on", "done_on", "instance_status"),
                      Index("ix_action_fact_kind_open", "kind", "done_on", "instance_status", "due_on"),
                      Index("ix_action_fact_process_due", "process_key", "due_on", "done_on", "instance_status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(32))
    action_id: Mapped[str] = mapped_column(String(40))
    round: Mapped[int] = mapped_column(Integer, default=1)
    what: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(80))
    due_on: Mapped[date | None] = mapped_column(Date)
    done_on: Mapped[date | None] = mapped_column(Date)
    result: Mapped[str | None] = mapped_column(Text)
    effective: Mapped[bool | None] = mapped_column(Boolean)
    # copies of the instance's complaint_fact columns (set by the refresh, migration 0006) so the
    # dashboard counts actions without joining 300,000 rows; NULL on rows written before: those are joined
    kind: Mapped[str | None] = mapped_column(String(16))
    process_key: Mapped[str | None] = mapped_column(String(255))
    instance_status: Mapped[str | None] = mapped_column(String(16))


class ActionRollup(Base):
    """Actions with a due date per (kind, process, instance status, due date): the dashboard's period
    figures read these few rows instead of scanning 300,000 actions. Kept by the refresh from the
    action_fact rows that carry the kind copy (``_roll_actions``); ``rebuild_action_rollup`` recomputes it
    (migration 0006, bulk loads)."""
    __tablename__ = "action_rollup"
    __table_args__ = (UniqueConstraint("kind", "process_key", "instance_status", "due_on",
                                       name="uq_action_rollup_key"),
                      Index("ix_action_rollup_process_due", "process_key", "due_on"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    process_key: Mapped[str] = mapped_column(String(255))
    instance_status: Mapped[str] = mapped_column(String(16))
    due_on: Mapped[date] = mapped_column(Date)
    actions: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer)
    on_time: Mapped[int] = mapped_column(Integer)


class ComplaintRollup(Base):
    """Complaint figures per UTC day, kept by the refresh (migration 0017): the dashboard sums these
    rows for the whole days of a period and reads only its partial first and last days from
    complaint_fact (storage/kpi_queries.py). One row per (basis, kind, process, instance status, day,
    measure, value): ``basis`` says which date the day is (``received`` or ``closed``; ``received/month``
    and ``closed/month`` sum a month's days, ``day`` its first), ``measure`` which
    count ``n`` is (see ``_contributions``), ``value`` the group of counts by value (category, root cause,
    "csat:nps"). The row with basis ``meta`` names the rules the counts were made with; without it
    (never built, other rules) the figures are read from complaint_fact alone."""
    __tablename__ = "complaint_rollup"
    __table_args__ = (Index("ix_complaint_rollup_kind", "basis", "kind", "measure", "day", "instance_status"),
                      Index("ix_complaint_rollup_process", "basis", "process_key", "measure", "day", "instance_status"),
                      Index("ix_complaint_rollup_measure", "basis", "measure", "day"))

    id: Mapped[int] = mapped_column(primary_key=True)
    basis: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    process_key: Mapped[str] = mapped_column(String(255))
    instance_status: Mapped[str] = mapped_column(String(16))
    day: Mapped[date] = mapped_column(Date)
    measure: Mapped[str] = mapped_column(String(16))
    value: Mapped[str | None] = mapped_column(Text)
    n: Mapped[int] = mapped_column(Integer)


class StepRollup(Base):
    """Completed human tasks per (kind, process, step, name, UTC day of completion), kept by the refresh
    with complaint_rollup (migration 0017): the dashboard's step times for the whole days of a period."""
    __tablename__ = "step_rollup"
    __table_args__ = (Index("ix_step_rollup_kind", "kind", "day"), Index("ix_step_rollup_process", "process_key", "day"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    process_key: Mapped[str] = mapped_column(String(255))
    spec_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    day: Mapped[date] = mapped_column(Date)
    completed: Mapped[int] = mapped_column(Integer)
    seconds_sum: Mapped[float] = mapped_column(Float)
    seconds_n: Mapped[int] = mapped_column(Integer)
    seconds_max: Mapped[float | None] = mapped_column(Float)


class TaskFact(Base):
    __tablename__ = "task_fact"
    __table_args__ = (Index("ix_task_fact_completed", "completed_at", "spec_id"),
                      Index("ix_task_fact_instance", "instance_id"),
                      Index("ix_task_fact_kind_state", "kind", "state", "completed_at", "process_key", "spec_id",
                            "seconds", "name"),
                      Index("ix_task_fact_kind_step", "kind", "state", "process_key", "spec_id", "completed_at",
                            "seconds", "name"))

    task_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(32))
    process_key: Mapped[str] = mapped_column(String(255))
    spec_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    seconds: Mapped[float | None] = mapped_column(Float)
    # the instance's complaint_fact kind (0006); NULL when not tracked or written before: joined
    kind: Mapped[str | None] = mapped_column(String(16))


class KpiRefreshState(Base):
    __tablename__ = "kpi_refresh_state"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_audit_id: Mapped[int] = mapped_column(Integer, default=0)
    refreshed_at: Mapped[datetime | None]


# ---------------------------------------------------------------------------------------- upkeep

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
    _roll_actions(session, instance_ids, actions)
    days, groups, before, steps = set(), set(), {}, set()
    if rules is not None:  # only what changes for the rollups is recounted (a refresh mostly rewrites equal rows)
        changed, changed_tasks = _changes(session, instance_ids, facts, tasks)
        days = fact_days(changed)
        groups = {(f["kind"], f["category"], f["product"]) for f in changed
                  if f["category"] is not None and f["product"] is not None}
        steps = {utc_day(t["completed_at"]) for t in changed_tasks
                 if t["state"] == "completed" and t["completed_at"] is not None}
        before = _first_closures(session, groups)
    for table in (ComplaintFact, ActionFact, TaskFact):
        session.execute(delete(table).where(table.instance_id.in_(instance_ids)))
    if facts:
        session.execute(insert(ComplaintFact), facts)
    if actions:
        session.execute(insert(ActionFact), actions)
    if tasks:
        session.execute(insert(TaskFact), tasks)
    if rules is not None:
        recount_rollup_days(session, days | _recurrence_days(session, before, _first_closures(session, groups)),
                            rules)
        recount_step_days(session, steps)


def _rollup_rows(session: Session, where: list[Any]) -> Any:
    A = ActionFact
    return session.execute(select(A.kind, A.process_key, A.instance_status, A.due_on, func.count(),
                                  func.sum(case((A.done_on.is_not(None), 1), else_=0)),
                                  func.sum(case((A.done_on <= A.due_on, 1), else_=0)))
                           .where(*where, A.kind.is_not(None), A.due_on.is_not(None))
                           .group_by(A.kind, A.process_key, A.instance_status, A.due_on))


def _roll_actions(session: Session, instance_ids: list[str], new_actions: list[dict[str, Any]]) -> None:
    """Apply to action_rollup the change from the instances' current action_fact rows to `new_actions`."""
    delta: dict[tuple[Any, ...], list[int]] = {}
    for kind, process_key, status, due, n, done, on_time in _rollup_rows(
            session, [ActionFact.instance_id.in_(instance_ids)]):
        d = delta.setdefault((kind, process_key, status, due), [0, 0, 0])
        d[0] -= int(n)
        d[1] -= int(done or 0)
        d[2] -= int(on_time or 0)
    for a in new_actions:
        if a.get("kind") is None or a["due_on"] is None:
            continue
        d = delta.setdefault((a["kind"], a["process_key"], a["instance_status"], a["due_on"]), [0, 0, 0])
        d[0] += 1
        d[1] += a["done_on"] is not None
        d[2] += a["done_on"] is not None and a["done_on"] <= a["due_on"]
    delta = {k: v for k, v in delta.items() if any(v)}
    if not delta:
        return
    R = ActionRollup
    existing = {}
    dates = sorted({k[3] for k in delta})
    for i in range(0, len(dates), CHUNK):
        for row in session.execute(select(R.id, R.kind, R.process_key, R.instance_status, R.due_on, R.actions, R.done,
                                          R.on_time).where(R.due_on.in_(dates[i:i + CHUNK]))):
            existing[(row.kind, row.process_key, row.instance_status, row.due_on)] = row
    inserts, updates, gone = [], [], []
    for key, (n, done, on_time) in delta.items():
        row = existing.get(key)
        if row is None:
            inserts.append({"kind": key[0], "process_key": key[1], "instance_status": key[2], "due_on": key[3],
                            "actions": n, "done": done, "on_time": on_time})
        elif row.actions + n == 0:
            gone.append(row.id)
        else:
            updates.append({"rid": row.id, "a": row.actions + n, "d": row.done + done, "o": row.on_time + on_time})
    if gone:
        session.execute(delete(R).where(R.id.in_(gone)))
    if updates:
        session.connection().execute(update(R.__table__).where(R.__table__.c.id == bindparam("rid")).values(
            actions=bindparam("a"), done=bindparam("d"), on_time=bindparam("o")), updates)
    if inserts:
        session.execute(insert(R), inserts)


def rebuild_action_rollup(session: Session) -> None:
    """Recompute action_rollup from action_fact (after bulk loads that bypass the refresh)."""
    session.execute(delete(ActionRollup))
    rows = [{"kind": k, "process_key": p, "instance_status": st, "due_on": due, "actions": int(n),
             "done": int(done or 0), "on_time": int(on_time or 0)}
            for k, p, st, due, n, done, on_time in _rollup_rows(session, [])]
    for i in range(0, len(rows), 5000):
        session.execute(insert(ActionRollup), rows[i:i + 5000])


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


# ---------------------------------------------------------------------------------------- complaint_rollup

ROLLUP_VERSION = 1  # raise when _contributions changes: the next refresh rebuilds the rollup
_ROLLUP_COLUMNS = (ComplaintFact.kind, ComplaintFact.process_key, ComplaintFact.instance_status,
                   ComplaintFact.received_at, ComplaintFact.closed_at, ComplaintFact.ack_seconds,
                   ComplaintFact.close_seconds, ComplaintFact.valid, ComplaintFact.status, ComplaintFact.category,
                   ComplaintFact.product, ComplaintFact.root_cause, ComplaintFact.effective_first_check,
                   ComplaintFact.rca_loops, ComplaintFact.csat, ComplaintFact.nps)


def closed_earlier(fact: Any = ComplaintFact) -> Any:
    """SQL: another case of the same kind, category and product was closed before `fact` was received
    (what makes a valid case a recurrence); one index seek per case (ix_complaint_fact_first_closed)."""
    earlier = aliased(ComplaintFact)
    return exists().where(earlier.kind == fact.kind, earlier.category == fact.category,
                          earlier.product == fact.product, earlier.instance_id != fact.instance_id,
                          earlier.closed_at < fact.received_at)


def _complaint_rows(*where: Any) -> Any:
    return select(*_ROLLUP_COLUMNS, closed_earlier().label("recurs")).where(*where)
RollupKey = tuple[str, str, str, str, date, str, "str | None"]  # basis, kind, process, status, day, measure, value


# value buckets of the acknowledgement / close times (seconds) counted per day, so a percentile's rank is
# found in the counts and only its bucket's values are read: below 0, [0, 1), then four per doubling
SECOND_EDGES = (0.0, *(2 ** (i / 4) for i in range(4 * 40)))


def seconds_bucket(seconds: float) -> int:
    """The bucket of a time: values in [SECOND_EDGES[b - 1], SECOND_EDGES[b]) are in bucket b."""
    return bisect_right(SECOND_EDGES, seconds)


def rollup_stamp(rules: KpiRules) -> str:
    """What the rollup's counts depend on besides the facts: its version and the rules it applies."""
    return f"v{ROLLUP_VERSION}|{rules.rejected_status}|{rules.ack_target_s}"


def utc_day(t: datetime) -> date:
    return t.astimezone(timezone.utc).date()


def _contributions(f: Any, rules: KpiRules) -> Iterator[tuple[str, date, str, str | None, int]]:
    """(basis, UTC day, measure, value, n) that one fact adds to complaint_rollup: the counts behind
    storage/kpi_queries.py's figures (``received_figures``, ``closed_figures``, ``open_at_end``, trends,
    Pareto, root causes, satisfaction), under the same names."""
    day = utc_day(f.received_at)
    yield "received", day, "n", None, 1
    if f.ack_seconds is not None:
        yield "received", day, "acked", None, 1
        yield "received", day, "ack_bucket", str(seconds_bucket(f.ack_seconds)), 1
        if f.ack_seconds <= rules.ack_target_s:
            yield "received", day, "ack_within", None, 1
    if f.valid is False or f.status == rules.rejected_status:
        yield "received", day, "rejected", None, 1
    if f.category is not None and f.product is not None and f.valid is not False:
        yield "received", day, "rec_base", None, 1
        if f.recurs:
            yield "received", day, "recurrence", None, 1
    yield "received", day, "category", f.category, 1
    if f.root_cause is not None:
        yield "received", day, "root_cause", f.root_cause, 1
    if f.closed_at is None:
        return
    day = utc_day(f.closed_at)
    yield "closed", day, "n", None, 1
    if f.close_seconds is not None:
        yield "closed", day, "timed", None, 1
        yield "closed", day, "close_bucket", str(seconds_bucket(f.close_seconds)), 1
    if f.effective_first_check is not None:
        yield "closed", day, "checked", None, 1
        yield "closed", day, "loops", None, f.rca_loops or 0
        if f.effective_first_check:
            yield "closed", day, "effective_first", None, 1
        if (f.rca_loops or 0) > 0:
            yield "closed", day, "reopened", None, 1
    if f.closed_at < f.received_at:  # bad data: open_at_end cannot be read from the rollup then
        yield "closed", day, "before_received", None, 1
    if f.csat is not None or f.nps is not None:
        yield "closed", day, "score", f"{'' if f.csat is None else f.csat}:{'' if f.nps is None else f.nps}", 1


def _add(counts: dict[RollupKey, int], rows: Any, rules: KpiRules, keep: set[tuple[str, date]] | None) -> None:
    for f in rows:
        for basis, day, measure, value, n in _contributions(f, rules):
            if keep is None or (basis, day) in keep:
                key = (basis, f.kind, f.process_key, f.instance_status, day, measure, value)
                counts[key] = counts.get(key, 0) + n


def _insert_rollup(session: Session, counts: dict[RollupKey, int]) -> None:
    rows = [{"basis": b, "kind": k, "process_key": p, "instance_status": st, "day": d, "measure": m, "value": v,
             "n": n} for (b, k, p, st, d, m, v), n in counts.items() if n]
    for i in range(0, len(rows), 5000):
        session.execute(insert(ComplaintRollup), rows[i:i + 5000])


def fact_days(facts: list[dict[str, Any]]) -> set[tuple[str, date]]:
    """The (basis, day) rollup rows the facts count in."""
    out = set()
    for f in facts:
        out.add(("received", utc_day(f["received_at"])))
        if f["closed_at"] is not None:
            out.add(("closed", utc_day(f["closed_at"])))
    return out


def _day_runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as [first, last + 1) runs of consecutive days."""
    runs: list[tuple[date, date]] = []
    for d in days:
        if runs and runs[-1][1] == d:
            runs[-1] = (runs[-1][0], d + timedelta(days=1))
        else:
            runs.append((d, d + timedelta(days=1)))
    return runs


def utc_midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


def recount_rollup_days(session: Session, days: set[tuple[str, date]], rules: KpiRules) -> None:
    """Recount the rollup rows of these (basis, UTC day)s from complaint_fact, then their months from the
    days: the refresh calls it with the days of the replaced facts, before and after (a day holds a few
    hundred facts at most)."""
    R, F = ComplaintRollup, ComplaintFact
    for basis, column in (("received", F.received_at), ("closed", F.closed_at)):
        wanted = sorted(d for b, d in days if b == basis)
        for i in range(0, len(wanted), CHUNK):
            part = wanted[i:i + CHUNK]
            session.execute(delete(R).where(R.basis == basis, R.day.in_(part)))
            counts: dict[RollupKey, int] = {}
            ranges = [and_(column >= utc_midnight(lo), column < utc_midnight(hi)) for lo, hi in _day_runs(part)]
            _add(counts, session.execute(_complaint_rows(or_(*ranges))), rules,
                 {(basis, d) for d in part})
            _insert_rollup(session, counts)
    months = {(basis, d.replace(day=1)) for basis, d in days}
    for basis, month in sorted(months):
        session.execute(delete(R).where(R.basis == f"{basis}/month", R.day == month))
        following = (month + timedelta(days=31)).replace(day=1)
        counts = {}
        for row in session.execute(select(R.kind, R.process_key, R.instance_status, R.measure, R.value, R.n).where(
                R.basis == basis, R.day >= month, R.day < following)):
            key = (f"{basis}/month", row.kind, row.process_key, row.instance_status, month, row.measure, row.value)
            counts[key] = counts.get(key, 0) + row.n
        _insert_rollup(session, counts)


def _by_month(counts: dict[RollupKey, int]) -> dict[RollupKey, int]:
    out: dict[RollupKey, int] = {}
    for (basis, kind, process_key, status, day, measure, value), n in counts.items():
        key = (f"{basis}/month", kind, process_key, status, day.replace(day=1), measure, value)
        out[key] = out.get(key, 0) + n
    return out


def rebuild_complaint_rollup(session: Session, rules: KpiRules) -> None:
    """Recount complaint_rollup from all of complaint_fact and step_rollup from task_fact (first refresh
    after migration 0017, a full refresh, other rules, bulk loads) and stamp them with the rules."""
    session.execute(delete(ComplaintRollup))
    counts: dict[RollupKey, int] = {}
    _add(counts, session.execute(_complaint_rows().execution_options(yield_per=5000)), rules, None)
    _insert_rollup(session, counts)
    _insert_rollup(session, _by_month(counts))
    recount_step_days(session, None)
    session.execute(insert(ComplaintRollup), [{"basis": "meta", "kind": "", "process_key": "", "instance_status": "",
                                               "day": date(1970, 1, 1), "measure": "stamp",
                                               "value": rollup_stamp(rules), "n": 0}])


def _step_rows(session: Session, where: list[Any]) -> list[dict[str, Any]]:
    """step_rollup rows counted from the completed task_fact rows with a kind copy matching `where`."""
    T = TaskFact
    counts: dict[tuple[Any, ...], list[Any]] = {}
    for t in session.execute(select(T.kind, T.process_key, T.spec_id, T.name, T.completed_at, T.seconds).where(
            *where, T.state == "completed", T.kind.is_not(None), T.completed_at.is_not(None))):
        c = counts.setdefault((t.kind, t.process_key, t.spec_id, t.name, utc_day(t.completed_at)), [0, 0.0, 0, None])
        c[0] += 1
        if t.seconds is not None:
            c[1] += t.seconds
            c[2] += 1
            c[3] = t.seconds if c[3] is None else max(c[3], t.seconds)
    return [{"kind": k, "process_key": p, "spec_id": sp, "name": nm, "day": d, "completed": c[0], "seconds_sum": c[1],
             "seconds_n": c[2], "seconds_max": c[3]} for (k, p, sp, nm, d), c in counts.items()]


def recount_step_days(session: Session, days: set[date] | None) -> None:
    """Recount step_rollup for these UTC days of completion (None: all of it) from task_fact."""
    T, S = TaskFact, StepRollup
    if days is None:
        session.execute(delete(S))
        rows = _step_rows(session, [])
    else:
        if not days:
            return
        wanted = sorted(days)
        session.execute(delete(S).where(S.day.in_(wanted)))
        rows = _step_rows(session, [or_(*[and_(T.completed_at >= utc_midnight(lo), T.completed_at < utc_midnight(hi))
                                          for lo, hi in _day_runs(wanted)])])
    for i in range(0, len(rows), 5000):
        session.execute(insert(S), rows[i:i + 5000])


def rollup_current(session: Session, rules: KpiRules) -> bool:
    """Whether complaint_rollup was built with these rules (and is therefore kept by the refresh)."""
    R = ComplaintRollup
    stamp = session.scalar(select(R.value).where(R.basis == "meta", R.measure == "stamp").limit(1))
    return stamp == rollup_stamp(rules)


_FACT_KEYS = ("instance_id", *(c.key for c in _ROLLUP_COLUMNS))
_TASK_KEYS = ("task_id", "kind", "process_key", "spec_id", "name", "state", "completed_at", "seconds")


def _changes(session: Session, instance_ids: list[str], facts: list[dict[str, Any]],
             tasks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The instances' complaint_fact and task_fact rows, old and new, that differ in a column the rollups
    count (as dicts of those columns): only their days and groups need recounting."""
    F, T = ComplaintFact, TaskFact
    out = []
    for keys, table, rows in ((_FACT_KEYS, F, facts), (_TASK_KEYS, T, tasks)):
        old = {tuple(r) for r in session.execute(select(*(getattr(table, k) for k in keys))
                                                 .where(table.instance_id.in_(instance_ids)))}
        new = {tuple(row.get(k) for k in keys) for row in rows}
        out.append([dict(zip(keys, r, strict=True)) for r in old ^ new])
    return out[0], out[1]


def _first_closures(session: Session, groups: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], list[Any]]:
    """The two earliest closures of each (kind, category, product) group (fewer when fewer are closed)."""
    F = ComplaintFact
    out: dict[tuple[str, str, str], list[Any]] = {g: [] for g in groups}
    ordered = sorted(groups)
    for i in range(0, len(ordered), CHUNK):
        rows = session.execute(select(F.kind, F.category, F.product, F.closed_at).where(
            tuple_(F.kind, F.category, F.product).in_(ordered[i:i + CHUNK]), F.closed_at.is_not(None))
            .order_by(F.kind, F.category, F.product, F.closed_at))
        for kind, category, product, closed in rows:
            firsts = out[(kind, category, product)]
            if len(firsts) < 2:
                firsts.append(closed)
    return out


def _recurrence_days(session: Session, before: dict[tuple[str, str, str], list[Any]],
                     after: dict[tuple[str, str, str], list[Any]]) -> set[tuple[str, date]]:
    """Received days of other cases whose recurrence the replaced facts may have changed: a case is one
    when a closure of another case of its group precedes its receipt, so only cases received between a
    group's old and new earliest (or second earliest, for the case that is the earliest) closure can change."""
    F = ComplaintFact
    days: set[tuple[str, date]] = set()
    for group, old in before.items():
        new = after.get(group, [])
        for i in range(2):
            a, b = (old[i] if i < len(old) else None), (new[i] if i < len(new) else None)
            if a == b:
                continue
            lo = min(t for t in (a, b) if t is not None)
            hi = None if a is None or b is None else max(a, b)
            where = [F.kind == group[0], F.category == group[1], F.product == group[2], F.received_at >= lo]
            if hi is not None:
                where.append(F.received_at <= hi)
            days |= {("received", utc_day(t)) for t in session.scalars(select(F.received_at).where(*where))}
    return days
