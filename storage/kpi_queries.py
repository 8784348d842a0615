"""The read SQL of the KPI dashboard, the API, the exports and the ISO report (engine/kpis.py computes
the figures from what these functions return). Every function takes a session and a ``FactQuery``:
the period as UTC instants and local dates, the filters, and the business rules (``KpiRules``,
decided in engine/kpi_rules.py) as plain values.

Speed (issue 7: one year over 100,000 complaints and 300,000 actions): each figure is one pass over
a covering index of migration 0006, never a lookup per fact row; no per-complaint probe (recurrence
uses the first closure per category and product); trend buckets are range counts; action figures for
the period come from ``action_rollup`` and steps/actions are scoped by columns copied onto their facts
(rows without the copies are joined). On SQLite, long periods read GROUP BYs and percentiles from
indexes in key/value order (no sort), short ones from the date indexes (see ``FactQuery.long``/``_plain``).

Issue 15 (the same year in ≤ 300 ms): without filters other than the process, the figures sum the
rollups kept by the refresh (``complaint_rollup``, ``step_rollup``: storage/kpi_rollups.py) for the
period's whole UTC days (whole months from month rows) and read only the partial first and last days
from the facts (see "rollup reads"); percentiles find their rank's value bucket in the rollup and walk
the index from there. The ``_..._raw`` functions (storage/kpi_fact_reads.py) are the figures from the facts alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from storage.kpi_fact_reads import (
    FILTER_COLUMNS,
    LONG_PERIOD_DAYS,
    FactQuery,
    KpiRules,
    _closed_figures_raw,
    _in,
    _nps_counts_raw,
    _open_at_end_raw,
    _percentiles_raw,
    _plain,
    _received_by_category_raw,
    _received_figures_raw,
    _recurrences_raw,
    _root_causes_raw,
    _scope,
    _scope_copies,
    _score_pairs_raw,
    action_counts,
    actions_due,
    actions_of,
    audit_of,
    case_scope,
    distinct_values,
    feedback_by_type,
    nulls_sort_first,
    received_facts,
    report_facts,
    scored_facts,
    scores_by_local_day,
)
from storage.kpi_facts import ComplaintFact, ComplaintRollup, StepRollup, TaskFact
from storage.kpi_rollups import (
    SECOND_EDGES,
    closed_earlier,
    rollup_current,
    rollup_stamp,
    seconds_bucket,
    utc_day,
    utc_midnight,
)


def recurrences(session: Session, fq: FactQuery) -> int:
    """Valid cases received in the period whose (kind, category, product) equals that of an earlier case
    that was already closed when they arrived: the rollup's whole days, the partial ones case by case."""
    days = _whole_days(fq.start, fq.end) if _rolled(session, fq) else None
    if days is None:
        return _recurrences_raw(session, fq)
    F = ComplaintFact
    out = _total(_sums(session, fq, "received", *days, ("recurrence",)), "recurrence")
    for part in _edges(fq, *days):
        out += session.scalar(select(func.count()).select_from(F).where(
            *_scope(session, part), _in(F.received_at, part), F.category.is_not(None), F.product.is_not(None),
            or_(F.valid.is_(None), F.valid.is_(True)), closed_earlier())) or 0
    return out


def percentiles(session: Session, fq: FactQuery, value: Literal["ack", "close"], n: int,
                ps: Sequence[float] = (0.5, 0.9)) -> list[float | None]:
    """Percentiles `ps` of the acknowledgement or close times (seconds) of the cases received resp. closed
    in the period, `n` of them with a value; exact (linear interpolation between the closest ranks, as
    PostgreSQL's percentile_cont). The rollup's value buckets of the whole days and the partial days' values
    say in which bucket each rank lies; the index is walked from that bucket's lower edge only."""
    days = _whole_days(fq.start, fq.end) if n and _rolled(session, fq) else None
    if days is None:
        return _percentiles_raw(session, fq, value, n, ps)
    F = ComplaintFact
    column, date_column = (F.ack_seconds, F.received_at) if value == "ack" else (F.close_seconds, F.closed_at)
    counts: dict[int, int] = {}
    for (_c, _m, bucket), count in _sums(session, fq, date_column.key.removesuffix("_at"), *days,
                                         (f"{value}_bucket",)).items():
        counts[int(bucket or 0)] = counts.get(int(bucket or 0), 0) + count
    for part in _edges(fq, *days):
        for v in session.scalars(select(column).where(*_scope(session, part), _in(date_column, part),
                                                      column.is_not(None))):
            counts[seconds_bucket(v)] = counts.get(seconds_bucket(v), 0) + 1
    if sum(counts.values()) != n:
        return _percentiles_raw(session, fq, value, n, ps)
    out: list[float | None] = []
    for p in ps:
        k = (n - 1) * p
        lo = math.floor(k)
        frac = k - lo
        below = 0
        for bucket in sorted(counts):  # the bucket of rank lo; walk the index from its lower edge
            if lo < below + counts[bucket]:
                break
            below += counts[bucket]
        where = [*_scope(session, fq), _in(_plain(session, date_column), fq), column.is_not(None)]
        if bucket > 0:
            where.append(column >= SECOND_EDGES[bucket - 1])
        values = [float(v) for v in session.scalars(select(column).where(*where).order_by(column)
                                                    .offset(lo - below).limit(2 if frac else 1))]
        out.append(values[0] + (values[1] - values[0]) * frac if frac else values[0])
    return out


def step_times(session: Session, fq: FactQuery) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (process_key, spec_id) of the cases' human tasks: {name, completed (in the period), sum and
    counted (their seconds), max (seconds), open (now)}."""
    T, F = TaskFact, ComplaintFact
    scope = _scope(session, fq)
    completed_at = _plain(session, T.completed_at) if fq.long else T.completed_at
    keys = (T.process_key, T.spec_id) if fq.long else (_plain(session, T.process_key), _plain(session, T.spec_id))
    done = select(*keys, func.max(T.name), func.count(), func.sum(T.seconds), func.count(T.seconds),
                  func.max(T.seconds)).where(T.state == "completed", _in(completed_at, fq)).group_by(*keys)
    waiting = select(T.process_key, T.spec_id, func.max(T.name), func.count()).where(T.state.in_(("open", "claimed")))
    copies = _scope_copies(fq, T)
    variants = []
    if copies is not None:  # the rows with the kind copy: whole days from step_rollup, the rest from task_fact
        days = _whole_days(fq.start, fq.end) if _rolled(session, fq) else None
        if days is None:
            variants.append((done.where(*copies), waiting.where(*copies)))
        else:
            S = StepRollup
            scope_s = [S.process_key == fq.process] if fq.process else [S.kind == fq.rules.case_kind]
            variants.append((select(S.process_key, S.spec_id, func.max(S.name), func.sum(S.completed),
                                    func.sum(S.seconds_sum), func.sum(S.seconds_n), func.max(S.seconds_max))
                             .where(*scope_s, S.day >= days[0], S.day < days[1]).group_by(S.process_key, S.spec_id),
                             waiting.where(*copies)))
            for part in _edges(fq, *days):
                edge = select(T.process_key, T.spec_id, func.max(T.name), func.count(), func.sum(T.seconds),
                              func.count(T.seconds), func.max(T.seconds)).where(
                    T.state == "completed", _in(T.completed_at, part), *copies).group_by(T.process_key, T.spec_id)
                variants.append((edge, None))
        joined = [T.kind.is_(None)]
    else:
        joined = []
    variants.append((done.join(F, F.instance_id == T.instance_id).where(*scope, *joined),
                     waiting.join(F, F.instance_id == T.instance_id).where(*scope, *joined)))
    steps: dict[tuple[str, str], dict[str, Any]] = {}
    for done_q, waiting_q in variants:
        for key, spec, name, n, total, counted, longest in session.execute(done_q):
            s = steps.setdefault((key, spec), {"name": name, "completed": 0, "sum": 0.0, "counted": 0, "max": None,
                                               "open": 0})
            s["name"] = max(s["name"], name)
            s["completed"] += int(n)
            s["sum"] += float(total or 0)
            s["counted"] += int(counted or 0)
            if longest is not None:
                s["max"] = longest if s["max"] is None else max(s["max"], longest)
        if waiting_q is None:
            continue
        for key, spec, name, n in session.execute(waiting_q.group_by(T.process_key, T.spec_id)):
            s = steps.setdefault((key, spec), {"name": name, "completed": 0, "sum": 0.0, "counted": 0, "max": None,
                                               "open": 0})
            s["open"] += int(n)
    return steps


# ---------------------------------------------------------------------------------------- rollup reads
# The figures of a period without filters other than the process: the whole UTC days of the period
# summed from complaint_rollup (storage/kpi_rollups.py, kept by the refresh), its partial first and last
# days read from complaint_fact by the `_..._raw` functions of storage/kpi_fact_reads.py. Any other
# query, or a rollup not (yet) built with these rules, reads complaint_fact alone: the same figures, slower.
def _rolled(session: Session, fq: FactQuery) -> bool:
    if any(getattr(fq, name) for name in FILTER_COLUMNS):
        return False
    cache = session.info.setdefault("complaint_rollup", {})
    stamp = rollup_stamp(fq.rules)
    if stamp not in cache:
        cache[stamp] = rollup_current(session, fq.rules)
    return bool(cache[stamp])


def _day_after_or_at(t: datetime) -> date:
    """The first UTC day starting at or after t."""
    d = utc_day(t)
    return d if utc_midnight(d) == t else d + timedelta(days=1)


def _whole_days(start: datetime, end: datetime) -> tuple[date, date] | None:
    """[first, last) UTC days lying wholly in [start, end), None when there is none."""
    first, last = _day_after_or_at(start), utc_day(end)
    return (first, last) if first < last else None


def _part(fq: FactQuery, start: datetime, end: datetime) -> FactQuery:
    """fq over [start, end) (less than a day: read as a short period)."""
    return replace(fq, start=start, end=end, from_date=start.date(), to_date=start.date())


def _edges(fq: FactQuery, first: date, last: date) -> list[FactQuery]:
    """fq over the parts of its period before day `first` and from day `last` on."""
    out = []
    if fq.start < utc_midnight(first):
        out.append(_part(fq, fq.start, utc_midnight(first)))
    if utc_midnight(last) < fq.end:
        out.append(_part(fq, utc_midnight(last), fq.end))
    return out


def _rollup_scope(fq: FactQuery, case: bool = True) -> list[Any]:
    """Rollup rows of the cases the case KPIs count (`case`), or of every kind (satisfaction)."""
    R = ComplaintRollup
    if fq.process:  # as _scope and _filter_conditions
        return [R.process_key == fq.process, *([R.kind.in_(fq.rules.kinds)] if case else [])]
    return [R.kind == fq.rules.case_kind] if case else []


def _pieces(basis: str, first: date | None, last: date) -> list[tuple[str, date | None, date]]:
    """The rollup rows covering the days [first, last) (first None: from the start): (basis, from, to) with
    the whole months from the month rows and the days around them from the day rows."""
    after = last.replace(day=1)
    if first is None:
        return [(f"{basis}/month", None, after), (basis, after, last)]
    before = first if first.day == 1 else (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    if before >= after:
        return [(basis, first, last)]
    return [(basis, first, before), (f"{basis}/month", before, after), (basis, after, last)]


def _sums(session: Session, fq: FactQuery, basis: str, first: date | None, last: date, measures: Sequence[str],
          case: bool = True) -> dict[tuple[bool, str, str | None], int]:
    """{(cancelled, measure, value): n} summed over the rollup days [first, last) (first None: from the start)."""
    R = ComplaintRollup
    cancelled = R.instance_status == fq.rules.cancelled
    out: dict[tuple[bool, str, str | None], int] = {}
    for piece, lo, hi in _pieces(basis, first, last):
        if lo is not None and lo >= hi:
            continue
        where = [R.basis == piece, *_rollup_scope(fq, case), R.measure.in_(measures), R.day < hi]
        if lo is not None:
            where.append(R.day >= lo)
        for c, m, v, n in session.execute(select(cancelled, R.measure, R.value, func.sum(R.n)).where(*where)
                                          .group_by(cancelled, R.measure, R.value)):
            out[(bool(c), m, v)] = out.get((bool(c), m, v), 0) + int(n or 0)
    return out


def _total(sums: dict[tuple[bool, str, str | None], int], measure: str, cancelled: bool | None = None) -> int:
    return sum(n for (c, m, _v), n in sums.items() if m == measure and (cancelled is None or c == cancelled))


def received_figures(session: Session, fq: FactQuery, now: datetime) -> list[int]:
    """Cases received in the period: [received, acknowledged, rejected, cancelled, whose acknowledgement
    outcome is known (acknowledged, or received more than the target ago), acknowledged within target,
    recurrence base (valid with category and product)]. Rolled days end before `now` minus the target
    (whose unacknowledged cases are all known to have missed it)."""
    days = _whole_days(fq.start, min(fq.end, now - timedelta(seconds=fq.rules.ack_target_s))) \
        if _rolled(session, fq) else None
    if days is None:
        return _received_figures_raw(session, fq, now)
    s = _sums(session, fq, "received", *days, ("n", "acked", "rejected", "ack_within", "rec_base"))
    out = [_total(s, "n"), _total(s, "acked"), _total(s, "rejected"), _total(s, "n", True),
           _total(s, "n", False), _total(s, "ack_within", False), _total(s, "rec_base")]
    for part in _edges(fq, *days):
        out = [a + b for a, b in zip(out, _received_figures_raw(session, part, now), strict=True)]
    return out


def received_by_category(session: Session, fq: FactQuery) -> dict[str | None, int]:
    """Cases received in the period per category."""
    days = _whole_days(fq.start, fq.end) if _rolled(session, fq) else None
    if days is None:
        return _received_by_category_raw(session, fq)
    out: dict[str | None, int] = {}
    for (_c, _m, category), n in _sums(session, fq, "received", *days, ("category",)).items():
        out[category] = out.get(category, 0) + n
    for part in _edges(fq, *days):
        for category, n in _received_by_category_raw(session, part).items():
            out[category] = out.get(category, 0) + n
    return {c: n for c, n in out.items() if n}


def _range_counts(session: Session, fq: FactQuery, column: Literal["received_at", "closed_at"],
                  ranges: list[tuple[datetime, datetime]]) -> list[int]:
    """Cases with `column` in each [lo, hi) of `ranges`: one statement of range counts over the covering index."""
    if not ranges:
        return []
    col = getattr(ComplaintFact, column)
    scope = _scope(session, fq)
    counts = [select(func.count()).where(*scope, col >= lo, col < hi).scalar_subquery() for lo, hi in ranges]
    return [int(v or 0) for v in session.execute(select(*counts)).one()]


def trend_counts(session: Session, fq: FactQuery, column: Literal["received_at", "closed_at"],
                 instants: list[datetime]) -> list[int]:
    """Cases with `column` in each [instants[i], instants[i + 1]): the whole UTC days of each bucket from
    the rollup (one statement per day), the rest as range counts over the covering index."""
    buckets = list(zip(instants, instants[1:], strict=False))
    span = _whole_days(instants[0], instants[-1]) if _rolled(session, fq) and buckets else None
    if span is None:
        return _range_counts(session, fq, column, buckets)
    R = ComplaintRollup
    per_day = dict(session.execute(
        select(R.day, func.sum(R.n)).where(R.basis == column.removesuffix("_at"), *_rollup_scope(fq), R.day >= span[0],
                                           R.day < span[1], R.measure == "n").group_by(R.day)).all())
    out, raw = [], []
    for lo, hi in buckets:
        days = _whole_days(lo, hi)
        if days is None:
            out.append(0)
            raw.append((len(out) - 1, lo, hi))
            continue
        first, last = days
        out.append(sum(int(n or 0) for d, n in per_day.items() if first <= d < last))
        for part in _edges(replace(fq, start=lo, end=hi), first, last):
            raw.append((len(out) - 1, part.start, part.end))
    for (i, _lo, _hi), n in zip(raw, _range_counts(session, fq, column, [(lo, hi) for _i, lo, hi in raw]),
                                strict=True):
        out[i] += n
    return out


def open_at_end(session: Session, fq: FactQuery) -> int:
    """Cases received before the end of the period and not closed by then (cancelled ones left out):
    those received before it less those closed before it, unless a case was closed before it was received."""
    last = utc_day(fq.end) if _rolled(session, fq) else None
    if last is None:
        return _open_at_end_raw(session, fq)
    received = _sums(session, fq, "received", None, last, ("n",))
    closed = _sums(session, fq, "closed", None, last, ("n", "before_received"))
    if _total(closed, "before_received"):
        return _open_at_end_raw(session, fq)
    F = ComplaintFact
    scope = [*_scope(session, fq), F.instance_status != fq.rules.cancelled]
    since = utc_midnight(last)
    late_received, late_closed = session.execute(select(
        select(func.count()).where(*scope, F.received_at >= since, F.received_at < fq.end).scalar_subquery(),
        select(func.count()).where(*scope, F.closed_at >= since, F.closed_at < fq.end,
                                   _plain(session, F.received_at) < fq.end).scalar_subquery())).one()
    return _total(received, "n", False) + int(late_received or 0) - _total(closed, "n", False) - int(late_closed or 0)


def closed_figures(session: Session, fq: FactQuery) -> list[int]:
    """Cases closed in the period: [closed, with a close time, effectiveness checked, effective at the
    first check, RCA loops of the checked ones, checked ones that looped]."""
    days = _whole_days(fq.start, fq.end) if _rolled(session, fq) else None
    if days is None:
        return _closed_figures_raw(session, fq)
    names = ("n", "timed", "checked", "effective_first", "loops", "reopened")
    s = _sums(session, fq, "closed", *days, names)
    out = [_total(s, name) for name in names]
    for part in _edges(fq, *days):
        out = [a + b for a, b in zip(out, _closed_figures_raw(session, part), strict=True)]
    return out


def score_pairs(session: Session, fq: FactQuery) -> list[tuple[int | None, int | None, int]]:
    """(CSAT, NPS, count) of every instance with a score closed in the period (any kind)."""
    days = _whole_days(fq.start, fq.end) if _rolled(session, fq) else None
    if days is None:
        return _score_pairs_raw(session, fq)
    out = []
    for (_c, _m, pair), n in _sums(session, fq, "closed", *days, ("score",), case=False).items():
        csat, nps = (pair or ":").split(":")
        out.append((int(csat) if csat else None, int(nps) if nps else None, n))
    for part in _edges(fq, *days):
        out.extend(_score_pairs_raw(session, part))
    return out


def nps_counts(session: Session, fq: FactQuery) -> tuple[int, int, int]:
    """(NPS answers, promoters, detractors) of the instances closed in the period (any kind)."""
    if not _rolled(session, fq):
        return _nps_counts_raw(session, fq)
    r, answers, promoters, detractors = fq.rules, 0, 0, 0
    for _csat, nps, n in score_pairs(session, fq):
        if nps is not None:
            answers += n
            promoters += n if nps >= r.promoter_min else 0
            detractors += n if nps <= r.detractor_max else 0
    return answers, promoters, detractors


def root_causes(session: Session, fq: FactQuery, limit: int = 10) -> list[tuple[str, int]]:
    """The most frequent root causes of the cases received in the period (ties in the database's order)."""
    days = _whole_days(fq.start, fq.end) if _rolled(session, fq) else None
    if days is None:
        return _root_causes_raw(session, fq, limit)
    R, F = ComplaintRollup, ComplaintFact
    parts = [select(R.value.label("root"), R.n.label("n")).where(
        R.basis == piece, *_rollup_scope(fq), R.measure == "root_cause", R.day >= lo, R.day < hi)
        for piece, lo, hi in _pieces("received", *days) if lo is not None and lo < hi]
    for part in _edges(fq, *days):
        parts.append(select(F.root_cause.label("root"), literal(1).label("n")).where(
            *_scope(session, part), _in(F.received_at, part), F.root_cause.is_not(None)))
    u = union_all(*parts).subquery("u") if len(parts) > 1 else parts[0].subquery("u")
    total = func.sum(u.c.n)
    stmt = select(u.c.root, total).group_by(u.c.root).order_by(total.desc(), u.c.root).limit(limit)
    return [(rc, int(n)) for rc, n in session.execute(stmt).all()]


# the figures engine/kpis.py reads: those summed from the rollups (here) and those read from the facts
# alone (storage/kpi_fact_reads.py), one module for it
__all__ = [
    "FILTER_COLUMNS",
    "FactQuery",
    "KpiRules",
    "LONG_PERIOD_DAYS",
    "action_counts",
    "actions_due",
    "actions_of",
    "audit_of",
    "case_scope",
    "closed_figures",
    "distinct_values",
    "feedback_by_type",
    "nps_counts",
    "nulls_sort_first",
    "open_at_end",
    "percentiles",
    "received_by_category",
    "received_facts",
    "received_figures",
    "recurrences",
    "report_facts",
    "root_causes",
    "score_pairs",
    "scored_facts",
    "scores_by_local_day",
    "step_times",
    "trend_counts",
]
