"""complaint_rollup (storage/kpi_rollups.py): the figures read through it equal those read from the facts
alone, for periods with partial first and last days in several time zones, week and month trends, a
process or a category chosen; and the rollup kept by the refresh (fact rows replaced in rounds, closures
moved so that other cases become or stop being recurrences, tasks completed) equals one counted from
scratch. Step times are compared as the dashboard shows them (hours, rounded): sums of seconds added in
another order may differ in their last bits."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from engine.kpi_rules import RULES
from engine.kpis import KpiQuery, compute, fact_query, glance
from storage import kpi_queries as kq
from storage.kpi_facts import ComplaintRollup, StepRollup
from storage.kpi_rollups import rebuild_complaint_rollup, rollup_current
from storage.kpi_upkeep import replace_facts

NOW = datetime(2026, 6, 15, 9, 30, tzinfo=UTC)
PROCESSES = (("complaint_to_improvement", "complaint"), ("customer_feedback", "feedback"),
             ("supplier_nonconformity", "nonconformity"))


def _fact(rng: random.Random, i: int, bad_data: bool) -> dict:
    process_key, kind = rng.choice(PROCESSES[:1] * 4 + PROCESSES[1:])
    received = NOW - timedelta(seconds=rng.randint(0, 420 * 86400))
    ack = received + timedelta(hours=rng.expovariate(1 / 20)) if rng.random() < 0.8 else None
    closed = received + timedelta(days=rng.uniform(0.2, 60)) if rng.random() < 0.7 else None
    if closed is not None and closed > NOW:
        closed = None
    if bad_data and closed is not None and rng.random() < 0.05:
        closed = received - timedelta(hours=rng.uniform(1, 100))  # closed before it was received
    checked = rng.choice([None, True, False]) if closed else None
    loops = rng.choice([0, 0, 1, 2])
    return {"instance_id": f"i{i}", "process_key": process_key, "kind": kind, "reference": f"R-{i}",
            "instance_status": rng.choice(["completed", "completed", "running", "cancelled"]),
            "status": rng.choice(["closed", "open", "rejected", None]), "received_at": received,
            "acknowledged_at": ack, "ack_seconds": (ack - received).total_seconds() if ack else None,
            "closed_at": closed, "close_seconds": (closed - received).total_seconds() if closed else None,
            "category": rng.choice(["delivery", "billing", "Safety", None]), "severity": rng.choice(["major", None]),
            "product": rng.choice(["P-1", "P-2", "p-3", None]), "customer": "C", "valid": rng.choice([True, None, False]),
            "rca_loops": loops, "effective_first_check": checked, "effective": checked,
            "root_cause": rng.choice(["Late carrier", "late carrier", "Wrong label", "Ä umlaut", None]),
            "csat": rng.choice([None, 1, 3, 5]), "nps": rng.choice([None, 0, 6, 7, 9, 10]),
            "survey_status": None, "feedback_type": rng.choice(["praise", None])}


def _tasks(rng: random.Random, fact: dict) -> list[dict]:
    out = []
    for j, (spec, name) in enumerate(rng.sample([("acknowledge", "Acknowledge"), ("triage", "Triage"),
                                                 ("rca_analyse", "Find the root cause")], 2)):
        created = fact["received_at"] + timedelta(hours=rng.uniform(0, 30))
        state = rng.choice(["completed", "completed", "open", "claimed", "cancelled"])
        completed = created + timedelta(seconds=rng.uniform(60, 9 * 86400)) if state != "open" else None
        if completed is not None and completed > NOW:
            completed, state = None, "open"
        out.append({"task_id": f"{fact['instance_id']}-{j}", "instance_id": fact["instance_id"],
                    "process_key": fact["process_key"], "spec_id": spec, "name": name, "state": state,
                    "created_at": created, "completed_at": completed,
                    "seconds": (completed - created).total_seconds() if state == "completed" else None})
    return out


def _queries() -> list[KpiQuery]:
    out = []
    for zone in ("UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns"):
        today = NOW.date()
        out += [KpiQuery(today - timedelta(days=364), today, zone),
                KpiQuery(date(2025, 11, 17), date(2026, 2, 3), zone),
                KpiQuery(date(2026, 3, 30), date(2026, 5, 2), zone, granularity="week"),
                KpiQuery(date(2026, 5, 1), date(2026, 5, 31), zone, granularity="month"),
                KpiQuery(date(2026, 6, 14), today, zone),
                KpiQuery(today - timedelta(days=364), today, zone, process="customer_feedback"),
                KpiQuery(date(2025, 9, 3), date(2026, 4, 20), zone, process="complaint_to_improvement")]
    out.append(KpiQuery(NOW.date() - timedelta(days=364), NOW.date(), "Europe/Berlin", category="delivery"))
    return out


def _figures(db) -> list[dict]:
    out = []
    for q in _queries():
        k = compute(db, q, now=NOW)
        with db.read() as s:  # unrounded, as the queries give them
            fq = fact_query(q)
            n_ack, n_close = kq.received_figures(s, fq, NOW)[1], kq.closed_figures(s, fq)[1]
            exact = [kq.percentiles(s, fq, "ack", n_ack, (0, 0.1, 0.5, 0.9, 0.95, 1)),
                     kq.percentiles(s, fq, "close", n_close, (0, 0.1, 0.5, 0.9, 0.95, 1))]
        out.append({"k": k, "glance": glance(db, q, k, now=NOW), "percentiles": exact})
    return out


def _rollup_rows(db) -> list[tuple]:
    R, S = ComplaintRollup, StepRollup
    with db.read() as s:
        complaints = s.execute(select(R.basis, R.kind, R.process_key, R.instance_status, R.day, R.measure, R.value,
                                      R.n)).all()
        steps = [(*r[:-3], round(r[-3], 3), *r[-2:]) for r in s.execute(  # a sum of seconds: up to its rounding
            select(S.kind, S.process_key, S.spec_id, S.name, S.day, S.completed, S.seconds_sum, S.seconds_n,
                   S.seconds_max))]
    return sorted(complaints, key=repr) + sorted(steps, key=repr)


@pytest.mark.parametrize("bad_data", [False, True])
def test_rollup_figures_equal_the_facts(db, bad_data):
    rng = random.Random(15 + bad_data)
    facts = [_fact(rng, i, bad_data) for i in range(400)]
    with db.write() as s:
        replace_facts(s, [f["instance_id"] for f in facts], facts, [], [t for f in facts for t in _tasks(rng, f)])
        rebuild_complaint_rollup(s, RULES)
    # the refresh's rounds: cases closed, reopened, re-received, dropped; some become the first closure
    # of their group, which changes whether later cases of the group are recurrences
    for _ in range(6):
        changed = rng.sample(facts, 25)
        replaced = []
        for f in changed:
            g = _fact(rng, int(f["instance_id"][1:]), bad_data)
            if rng.random() < 0.3:  # the same case with an early closure
                g = {**f, "closed_at": f["received_at"] + timedelta(hours=1), "close_seconds": 3600.0}
            if rng.random() > 0.1:  # else no longer tracked
                replaced.append(g)
        with db.write() as s:
            replace_facts(s, [f["instance_id"] for f in changed], replaced, [],
                          [t for f in replaced for t in _tasks(rng, f)], RULES)
        facts = [f for f in facts if f["instance_id"] not in {c["instance_id"] for c in changed}] + replaced
    kept_by_refresh = _rollup_rows(db)
    with db.read() as s:
        assert rollup_current(s, RULES)
    rolled = _figures(db)
    with db.write() as s:
        rebuild_complaint_rollup(s, RULES)
    assert _rollup_rows(db) == kept_by_refresh
    with db.write() as s:  # without the stamp the figures are read from complaint_fact alone
        s.execute(delete(ComplaintRollup).where(ComplaintRollup.basis == "meta"))
    assert _figures(db) == rolled
    year = rolled[0]["k"]
    assert year["complaints"]["received"] > 100 and year["effectiveness"]["recurrences"] > 0
    assert {s["spec_id"] for s in year["bottlenecks"] if s["completed"]} == {"acknowledge", "triage", "rca_analyse"}
