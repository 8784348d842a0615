"""The KPI figures read from the fact tables alone (complaint_fact, action_fact, task_fact): the
query shapes (``KpiRules``, ``FactQuery``, scopes and filters), the ``_..._raw`` figures that
storage/kpi_queries.py falls back to when a period cannot be summed from the rollups, and the reads
that always go to the facts (actions, scores by day, filter options, exports and the ISO report).
See storage/kpi_queries.py for the speed notes and the rollup reads."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Integer,
    Row,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session

from storage.kpi_facts import ActionFact, ActionRollup, ComplaintFact
from storage.kpi_rollups import closed_earlier
from storage.models import AuditEvent

LONG_PERIOD_DAYS = 180


FILTER_COLUMNS = ("product", "category", "severity", "customer")


@dataclass(frozen=True)
class KpiRules:
    """What the fact columns mean for the processes (engine/kpi_rules.py fills it in)."""

    case_kind: str                 # the kind the case KPIs count when no process is chosen
    kinds: tuple[str, ...]         # every kind the refresh can give
    feedback_kind: str             # counted by feedback type
    report_kinds: tuple[str, ...]  # listed by the ISO §10.2 report
    rejected_status: str           # data status of a rejected case (besides valid = false)
    ack_target_s: int              # acknowledged within target: within this many seconds of receipt
    promoter_min: int              # NPS answers from here up are promoters
    detractor_max: int             # NPS answers up to here are detractors
    cancelled: str                 # instance status the figures leave out (counted apart)
    not_backlog: tuple[str, ...]   # instance statuses whose open actions are not today's backlog


@dataclass(frozen=True)
class FactQuery:
    """A period ([start, end) in UTC; from_date..to_date the same local dates) with its filters."""

    start: datetime
    end: datetime
    from_date: date
    to_date: date
    rules: KpiRules
    process: str | None = None
    product: str | None = None
    category: str | None = None
    severity: str | None = None
    customer: str | None = None

    @property
    def long(self) -> bool:
        """Long periods read GROUP BYs from indexes led by the group keys (no sort of the period's rows);
        short ones from the index on the date column (few rows to sort even with a long history). SQLite
        without table statistics would always prefer one of them, so the other is masked with `_plain`."""
        return (self.to_date - self.from_date).days >= LONG_PERIOD_DAYS


# ---------------------------------------------------------------------------------------- helpers
def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def nulls_sort_first(session: Session) -> bool:
    """Whether the database sorts NULL before other values (SQLite) or after them (PostgreSQL)."""
    return _dialect(session) == "sqlite"


def _epoch(session: Session, column: Any) -> Any:
    if _dialect(session) == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    return cast(func.extract("epoch", column), BigInteger)


def _local_day(session: Session, column: Any, offsets: list[tuple[int, int]]) -> Any:
    """SQL: the local date of `column` as days since 1970-01-01, for a zone whose UTC offset is
    offsets[i][1] seconds from UTC epoch offsets[i][0] on (exact across DST changes)."""
    epoch = _epoch(session, column)
    if len(offsets) == 1:
        shifted = epoch + offsets[0][1]
    else:
        whens = [(epoch < offsets[i][0], literal(offsets[i - 1][1])) for i in range(1, len(offsets))]
        shifted = epoch + case(*whens, else_=literal(offsets[-1][1]))
    return cast(shifted + 86400 * 100000, BigInteger) // 86400 - 100000  # integer floor division for any sign


def _plain(session: Session, column: Any) -> Any:
    """SQLite: `+column`, the same value, but a condition on it no longer chooses an index."""
    if _dialect(session) != "sqlite":
        return column
    return literal_column(f"+{column.table.name}.{column.name}", type_=column.type)


def _in(column: Any, fq: FactQuery) -> Any:
    return and_(column >= fq.start, column < fq.end)


def _filter_conditions(fq: FactQuery, fact: Any = ComplaintFact) -> list[Any]:
    out = []
    for name in FILTER_COLUMNS:
        value = getattr(fq, name)
        if value:
            out.append(getattr(fact, name) == value)
    if fq.process:
        out.append(fact.process_key == fq.process)
    return out


def case_scope(fq: FactQuery, fact: Any = ComplaintFact) -> list[Any]:
    """Conditions of the cases the case KPIs count (complaints, or the chosen process)."""
    out = _filter_conditions(fq, fact)
    if not fq.process:
        out.append(fact.kind == fq.rules.case_kind)
    return out


def _scope(session: Session, fq: FactQuery) -> list[Any]:
    """case_scope for the figures: with a process, every kind the refresh can give and the process masked
    for SQLite's planner, so the (kind, ..., process_key) covering indexes serve instead of table lookups."""
    if not fq.process:
        return case_scope(fq)
    return [*_filter_conditions(replace(fq, process=None)), _plain(session, ComplaintFact.process_key) == fq.process,
            ComplaintFact.kind.in_(fq.rules.kinds)]


def _scope_copies(fq: FactQuery, fact: Any) -> list[Any] | None:
    """Case scope on the kind/process copies of action_fact and task_fact, or None when a filter needs
    columns only complaint_fact has (then the rows are joined to it)."""
    if any(getattr(fq, name) for name in FILTER_COLUMNS):
        return None
    return [fact.process_key == fq.process, fact.kind.is_not(None)] if fq.process \
        else [fact.kind == fq.rules.case_kind]


# ---------------------------------------------------------------------------------------- figures
def _received_figures_raw(session: Session, fq: FactQuery, now: datetime) -> list[int]:
    """Cases received in the period: [received, acknowledged, rejected, cancelled, whose acknowledgement
    outcome is known (acknowledged, or received more than the target ago), acknowledged within target,
    recurrence base (valid with category and product)]."""
    F, r = ComplaintFact, fq.rules
    ack_eligible = and_(or_(F.acknowledged_at.is_not(None), F.received_at <= now - timedelta(seconds=r.ack_target_s)),
                        F.instance_status != r.cancelled)
    row = session.execute(
        select(func.count(), func.count(F.ack_seconds),
               func.sum(case((or_(F.valid.is_(False), F.status == r.rejected_status), 1), else_=0)),
               func.sum(case((F.instance_status == r.cancelled, 1), else_=0)),
               func.sum(case((ack_eligible, 1), else_=0)),
               func.sum(case((and_(ack_eligible, F.ack_seconds <= r.ack_target_s), 1), else_=0)),
               func.sum(case((and_(F.category.is_not(None), F.product.is_not(None),
                                   or_(F.valid.is_(None), F.valid.is_(True))), 1), else_=0)))
        .where(*_scope(session, fq), _in(F.received_at, fq))).one()
    return [int(v or 0) for v in row]


def _received_by_category_raw(session: Session, fq: FactQuery) -> dict[str | None, int]:
    """Cases received in the period per category; long periods walk the index (kind, category,
    received_at) in category order."""
    F = ComplaintFact
    category = F.category if fq.long else _plain(session, F.category)
    received_in = _in(_plain(session, F.received_at), fq) if fq.long else _in(F.received_at, fq)
    return {c: int(n) for c, n in session.execute(
        select(category, func.count()).where(*_scope(session, fq), received_in).group_by(category))}


def _recurrences_raw(session: Session, fq: FactQuery) -> int:
    """Valid cases received in the period whose (kind, category, product) equals that of an earlier case
    that was already closed when they arrived.

    The earliest closure per (kind, category, product) is computed once (an index scan); then per group
    one index range of the cases received after it (no probe per case). A case closed before it was
    received (bad data) could be its own earliest closure: for that case only the EXISTS over the other
    cases decides."""
    F = ComplaintFact
    firsts_where = [F.closed_at.is_not(None), F.category.is_not(None), F.product.is_not(None)]
    if not fq.process:
        firsts_where.append(F.kind == fq.rules.case_kind)
    firsts = (select(F.kind, F.category, F.product, func.min(F.closed_at).label("first_closed"))
              .where(*firsts_where).group_by(F.kind, F.category, F.product).subquery("firsts"))
    other_earlier = closed_earlier()
    return session.scalar(
        select(func.count()).select_from(firsts).join(F, and_(
            F.kind == firsts.c.kind, F.category == firsts.c.category, F.product == firsts.c.product,
            F.received_at > firsts.c.first_closed))
        .where(*_scope(session, fq), _in(F.received_at, fq), or_(F.valid.is_(None), F.valid.is_(True)),
               or_(F.closed_at.is_(None), F.closed_at >= F.received_at, F.closed_at > firsts.c.first_closed,
                   other_earlier))) or 0


def _open_at_end_raw(session: Session, fq: FactQuery) -> int:
    """Cases received before the end of the period and not closed by then (cancelled ones left out)."""
    F = ComplaintFact
    return session.scalar(select(func.count()).select_from(F).where(
        *_scope(session, fq), F.received_at < fq.end, or_(F.closed_at.is_(None), F.closed_at >= fq.end),
        F.instance_status != fq.rules.cancelled)) or 0


def _closed_figures_raw(session: Session, fq: FactQuery) -> list[int]:
    """Cases closed in the period: [closed, with a close time, effectiveness checked, effective at the
    first check, RCA loops of the checked ones, checked ones that looped]."""
    F = ComplaintFact
    checked = F.effective_first_check.is_not(None)
    row = session.execute(select(
        func.count(), func.count(F.close_seconds), func.count(F.effective_first_check),
        func.sum(case((F.effective_first_check.is_(True), 1), else_=0)),
        func.sum(case((checked, F.rca_loops), else_=0)),
        func.sum(case((and_(checked, F.rca_loops > 0), 1), else_=0)),
    ).where(*_scope(session, fq), _in(F.closed_at, fq))).one()
    return [int(v or 0) for v in row]


def _percentiles_raw(session: Session, fq: FactQuery, value: Literal["ack", "close"], n: int,
                     ps: Sequence[float] = (0.5, 0.9)) -> list[float | None]:
    """Percentiles `ps` of the acknowledgement or close times (seconds) of the cases received resp. closed
    in the period, `n` of them with a value; exact (linear interpolation between the closest ranks,
    PostgreSQL percentile_cont).

    SQLite has no percentile aggregate: each percentile reads the two values around its rank with
    ORDER BY ... LIMIT 2 OFFSET rank, from the nearer end (a p90 walks down from the largest value:
    a tenth of the rows). For long periods the rows are walked in value order along the index
    (kind, value, date) (migration 0006), so nothing is sorted; short periods sort their few rows
    from the date index."""
    F = ComplaintFact
    column, date_column = (F.ack_seconds, F.received_at) if value == "ack" else (F.close_seconds, F.closed_at)
    scope = _scope(session, fq)
    if _dialect(session) == "postgresql":
        row = session.execute(select(*[func.percentile_cont(p).within_group(column.asc()) for p in ps])
                              .where(*scope, _in(date_column, fq), column.is_not(None))).one()
        return [float(v) if v is not None else None for v in row]
    if n == 0:
        return [None for _ in ps]
    if fq.long and not fq.process:  # a process spans several kinds: no single ordered index range
        rows, order = select(column).where(*scope, _in(_plain(session, date_column), fq), column.is_not(None)), column
    else:
        rows, order = select(column).where(*scope, _in(date_column, fq), column.is_not(None)), _plain(session, column)
    out: list[float | None] = []
    for p in ps:
        k = (n - 1) * p
        lo = math.floor(k)
        frac = k - lo
        count = 2 if frac else 1  # the values at ranks lo (and lo + 1)
        if lo + count > n - lo:  # in the upper half: walk down from the largest value (p90: a tenth of the rows)
            values = [float(v) for v in session.scalars(rows.order_by(order.desc()).offset(n - lo - count)
                                                        .limit(count))][::-1]
        else:
            values = [float(v) for v in session.scalars(rows.order_by(order).offset(lo).limit(count))]
        out.append(values[0] + (values[1] - values[0]) * frac if len(values) > 1 else values[0])
    return out


def action_counts(session: Session, fq: FactQuery, today: date, real_today: date, *,
                  with_backlog: bool = True) -> list[int]:
    """[due in period, done, done on time, overdue on `today`, backlog open, backlog overdue on
    `real_today`] of the cases' corrective actions (the backlog 0, 0 and not read without `with_backlog`)."""
    A, F, r = ActionFact, ComplaintFact, fq.rules
    scope = _scope(session, fq)
    period = select(func.count(), func.sum(case((A.done_on.is_not(None), 1), else_=0)),
                    func.sum(case((and_(A.done_on.is_not(None), A.done_on <= A.due_on), 1), else_=0)),
                    func.sum(case((and_(A.done_on.is_(None), A.due_on < today), 1), else_=0))
                    ).select_from(A).where(A.due_on >= fq.from_date, A.due_on <= fq.to_date)
    backlog = select(func.count(), func.sum(case((A.due_on < real_today, 1), else_=0))).select_from(A).where(
        A.done_on.is_(None))
    copies = _scope_copies(fq, A)
    totals = [0] * 6
    variants = []
    if copies is not None:  # the rollup and copies kept by the refresh, then the rows written before them (joined)
        R = ActionRollup
        rolled = select(func.sum(R.actions), func.sum(R.done), func.sum(R.on_time),
                        func.sum(case((R.due_on < today, R.actions - R.done), else_=0))).where(
            *([R.process_key == fq.process] if fq.process else [R.kind == r.case_kind]),
            R.due_on >= fq.from_date, R.due_on <= fq.to_date, R.instance_status != r.cancelled)
        variants.append((rolled, backlog.where(*copies, A.instance_status.notin_(r.not_backlog))))
        joined = [A.kind.is_(None)]
    else:
        joined = []
    variants.append((period.join(F, F.instance_id == A.instance_id).where(*scope, *joined,
                                                                          F.instance_status != r.cancelled),
                     backlog.join(F, F.instance_id == A.instance_id).where(
                         *scope, *joined, F.instance_status.notin_(r.not_backlog))))
    for in_period, open_now in variants:
        row = [*session.execute(in_period).one(), *(session.execute(open_now).one() if with_backlog else (0, 0))]
        totals = [t + int(v or 0) for t, v in zip(totals, row, strict=True)]
    return totals


def _score_pairs_raw(session: Session, fq: FactQuery) -> list[tuple[int | None, int | None, int]]:
    """(CSAT, NPS, count) of every instance with a score closed in the period (any kind)."""
    F = ComplaintFact
    keys = (F.csat, F.nps) if fq.long else (_plain(session, F.csat), _plain(session, F.nps))
    closed_in = _in(_plain(session, F.closed_at), fq) if fq.long else _in(F.closed_at, fq)
    return [(csat, nps, int(n)) for csat, nps, n in session.execute(
        select(*keys, func.count()).where(*_filter_conditions(fq), closed_in,
                                          or_(F.csat.is_not(None), F.nps.is_not(None)))
        .group_by(*keys))]


def _nps_counts_raw(session: Session, fq: FactQuery) -> tuple[int, int, int]:
    """(NPS answers, promoters, detractors) of the instances closed in the period (any kind): the
    dashboard tile's figure for the previous period, read along the closed_at range alone."""
    F, r = ComplaintFact, fq.rules
    row = session.execute(select(
        func.count(F.nps), func.sum(case((F.nps >= r.promoter_min, 1), else_=0)),
        func.sum(case((F.nps <= r.detractor_max, 1), else_=0)),
    ).where(*_filter_conditions(fq), _in(F.closed_at, fq), F.nps.is_not(None))).one()
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


def feedback_by_type(session: Session, fq: FactQuery) -> dict[str | None, int]:
    """Feedback received in the period per feedback type (the chosen process's instances, if any)."""
    F = ComplaintFact
    scope = _filter_conditions(fq) + ([] if fq.process else [F.kind == fq.rules.feedback_kind])
    return {k: int(v) for k, v in session.execute(
        select(F.feedback_type, func.count()).where(*scope, _in(F.received_at, fq)).group_by(F.feedback_type))}


def _root_causes_raw(session: Session, fq: FactQuery, limit: int = 10) -> list[tuple[str, int]]:
    """The most frequent root causes of the cases received in the period."""
    F = ComplaintFact
    root = F.root_cause if fq.long else _plain(session, F.root_cause)
    received_in = _in(_plain(session, F.received_at), fq) if fq.long else _in(F.received_at, fq)
    stmt = (select(root, func.count()).where(*_scope(session, fq), received_in, root.is_not(None))
            .group_by(root).order_by(func.count().desc(), root).limit(limit))
    return [(rc, int(n)) for rc, n in session.execute(stmt).all()]


def scores_by_local_day(session: Session, fq: FactQuery,
                        offsets: list[tuple[int, int]]) -> Sequence[Row[Any]]:
    """Per local day of closure (days since 1970-01-01, see `_local_day`): CSAT count and sum, NPS count,
    promoters, detractors."""
    F, r = ComplaintFact, fq.rules
    day = _local_day(session, F.closed_at, offsets).label("day")
    return session.execute(select(
        day, func.count(F.csat), func.sum(F.csat), func.count(F.nps),
        func.sum(case((F.nps >= r.promoter_min, 1), else_=0)), func.sum(case((F.nps <= r.detractor_max, 1), else_=0)),
    ).where(*_filter_conditions(fq), _in(F.closed_at, fq), or_(F.csat.is_not(None), F.nps.is_not(None)))
        .group_by(day)).all()


def distinct_values(session: Session, column: str) -> list[str]:
    """Distinct non-NULL values of a complaint_fact column that leads an index, in order: a loose index
    scan (one index seek per distinct value) instead of reading all 100,000 rows."""
    table = ComplaintFact.__table__
    col = table.c[column]  # KeyError for anything but a real column: never user text
    later = table.alias("later")
    seed = select(func.min(col).label("v")).cte("d", recursive=True)
    step = select(select(func.min(later.c[column])).where(later.c[column] > seed.c.v).scalar_subquery())
    distinct = seed.union_all(step.where(seed.c.v.is_not(None)))
    return list(session.scalars(select(distinct.c.v).where(distinct.c.v.is_not(None))))


# ---------------------------------------------------------------------------------------- listings
def received_facts(session: Session, fq: FactQuery, limit: int | None = None) -> Sequence[ComplaintFact]:
    """The cases received in the period, in order of receipt."""
    F = ComplaintFact
    stmt = select(F).where(*case_scope(fq), _in(F.received_at, fq)).order_by(F.received_at, F.instance_id)
    return session.scalars(stmt.limit(limit) if limit else stmt).all()


def actions_due(session: Session, fq: FactQuery) -> Sequence[Row[Any]]:
    """(ActionFact, case reference) of the cases' actions due in the period."""
    A, F = ActionFact, ComplaintFact
    return session.execute(select(A, F.reference).join(F, F.instance_id == A.instance_id).where(
        *case_scope(fq), A.due_on >= fq.from_date, A.due_on <= fq.to_date)
        .order_by(A.due_on, F.reference, A.action_id)).all()


def scored_facts(session: Session, fq: FactQuery) -> Sequence[ComplaintFact]:
    """Instances with a CSAT or NPS answer closed in the period (any kind)."""
    F = ComplaintFact
    return session.scalars(select(F).where(*_filter_conditions(fq), _in(F.closed_at, fq),
                                           or_(F.csat.is_not(None), F.nps.is_not(None)))
                           .order_by(F.closed_at, F.instance_id)).all()


def report_facts(session: Session, fq: FactQuery, limit: int) -> tuple[int, Sequence[ComplaintFact]]:
    """(how many, the first `limit`) valid cases of the report kinds received in the period."""
    F = ComplaintFact
    scope = _filter_conditions(fq)
    if not fq.process:
        scope.append(F.kind.in_(fq.rules.report_kinds))
    base = [*scope, _in(F.received_at, fq), or_(F.valid.is_(None), F.valid.is_(True))]
    total = session.scalar(select(func.count()).select_from(F).where(*base)) or 0
    return total, session.scalars(select(F).where(*base).order_by(F.received_at, F.instance_id).limit(limit)).all()


def actions_of(session: Session, instance_ids: list[str]) -> Sequence[ActionFact]:
    return session.scalars(select(ActionFact).where(ActionFact.instance_id.in_(instance_ids))
                           .order_by(ActionFact.round, ActionFact.action_id)).all()


def audit_of(session: Session, instance_ids: list[str]) -> Sequence[AuditEvent]:
    return session.scalars(select(AuditEvent).where(AuditEvent.instance_id.in_(instance_ids))
                           .order_by(AuditEvent.id)).all()
