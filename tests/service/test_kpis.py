"""KPIs on data sets whose right answers are known: real instances driven through the engine with
the clock moved, plus fact rows for period/time-zone boundaries and empty periods."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import delete, insert, select

from engine import kpis
from engine.kpi_rules import facts_from_instance
from engine.kpis import (
    KpiQuery,
    KpiQueryError,
    action_rows,
    build_query,
    complaint_rows,
    compute,
    refresh_facts,
    survey_rows,
)
from engine.scheduler import scheduler_pass
from storage import kpi_rollups
from storage.kpi_facts import ActionFact, ActionRollup, ComplaintFact, ComplaintRollup, StepRollup
from storage.kpi_rollups import rebuild_action_rollup
from tests.service.helpers_process_library import (
    COMPLAINT,
    INTAKE,
    LEAD,
    OWNERS,
    PROCESSES,
    SALES,
    SERVICE,
    START,
    Driver,
    ack,
    add_owners,
    analyse,
    check,
    do_action,
    final_reply,
    fire_timers,
    owner,
    plan_answers,
    reply,
    standardise,
    survey,
    triage,
)

MARCH = KpiQuery(date(2026, 3, 1), date(2026, 3, 31))


@pytest.fixture
def rt(runtime, db):
    runtime.deploy_paths([PROCESSES])
    add_owners(db)
    return runtime


def _complaint(rt, clock, ref, ack_after, *, valid=True, category="product_quality", rounds=(), csat=None,
               nps=None):
    """rounds: per RCA round a list of (due, done_at); the last round is effective."""
    d = Driver(rt, rt.start("complaint_to_improvement", {**COMPLAINT, "reference": ref}, INTAKE))
    if ack_after is None:
        return d
    clock.shift(ack_after)
    d.complete("acknowledge", SERVICE, ack())
    d.complete("triage", LEAD, triage(valid=valid, customer_impact="cosmetic", category=category,
                                      invalid_reason="" if valid else "Not ours"))
    if not valid:
        d.complete("close_invalid", LEAD, {"invalid_reason": "Not ours", "rejected_by": LEAD.username,
                                           "rejection_reply": "Sorry, this is not one of our products."})
        return d
    d.complete("reply", SERVICE, reply())
    for i, actions in enumerate(rounds):
        d.complete("rca_analyse", LEAD, analyse(f"cause {ref} {i}"))
        d.complete("rca_plan", LEAD, plan_answers([(f"do {j}", OWNERS[j], due) for j, (due, _) in enumerate(actions)]))
        for j, (_, done) in enumerate(actions):
            d.complete("rca_do_action", owner(OWNERS[j]), do_action(done))
        assert fire_timers(rt, clock) == 1
        d.complete("rca_check", LEAD, check(recurred=i < len(rounds) - 1))
    d.complete("standardise", LEAD, standardise())
    d.complete("send_final_reply", SERVICE, final_reply())
    d.complete("survey", SERVICE, survey("answered", csat, nps))
    assert d.refresh().status == "completed"
    return d


def _seconds(data, a, b):
    return (datetime.fromisoformat(data[b]) - datetime.fromisoformat(data[a])).total_seconds()


def test_kpis_of_driven_complaints(rt):
    with time_machine.travel(START, tick=False) as clock:
        c1 = _complaint(rt, clock, "K-1", timedelta(hours=3),
                        rounds=[[("2026-03-20", "2026-03-10"), ("2026-03-05", "2026-03-10")]], csat=5, nps=10)
        c2 = _complaint(rt, clock, "K-2", timedelta(hours=30), valid=False, category="delivery")
        clock.shift(timedelta(hours=2))
        c3 = _complaint(rt, clock, "K-3", timedelta(hours=1),
                        rounds=[[("2026-03-31", "2026-03-12")], [("2026-04-30", "2026-03-12")]], csat=2, nps=3)
        fb = Driver(rt, rt.start("customer_feedback", {"feedback_type": "praise", "customer_name": "Tom",
                                                       "message": "Great", "csat": 4, "nps": 8}, INTAKE))
        fb.complete("route", SERVICE, {"responsible_team": "sales", "category": "service", "is_complaint": False})
        fb.complete("respond", SALES, {"response_message": "Thanks", "improvement_idea": ""})
        clock.shift(timedelta(hours=1))
        _complaint(rt, clock, "K-4", None)

        assert compute(rt.db, MARCH)["complaints"]["received"] == 0  # reading does not refresh
        assert refresh_facts(rt.db) == 5  # four complaints and the feedback
        k = compute(rt.db, MARCH)
    c = k["complaints"]
    assert (c["received"], c["closed"], c["open_at_end"], c["rejected"]) == (4, 3, 1, 1)
    assert sum(b["received"] for b in c["trend"]) == 4 and sum(b["closed"] for b in c["trend"]) == 3
    assert k["period"]["granularity"] == "week" and c["trend"][0]["start"] == "2026-02-23"
    a = k["acknowledge"]
    assert a["count"] == 3 and a["median_hours"] == 3.0 and a["p90_hours"] == 24.6
    # K-4 was received just now: its outcome is not known yet, so it is not counted
    assert (a["eligible"], a["within_target"], a["share_within_target"]) == (3, 2, 0.6667)
    closes = sorted(_seconds(d.refresh().data, "received_at", "closed_at") for d in (c1, c2, c3))
    assert k["close"]["median_hours"] == round(closes[1] / 3600, 2)
    act = k["actions"]
    assert (act["due_in_period"], act["done"], act["done_on_time"], act["overdue"], act["on_time_rate"]) == \
        (3, 3, 2, 0, 0.6667)  # the action due 2026-04-30 is outside March
    e = k["effectiveness"]
    assert (e["checked"], e["effective_first_check"], e["share_effective_first_check"]) == (2, 1, 0.5)
    assert (e["rca_loops_total"], e["reopened"]) == (1, 1)
    assert (e["recurrence_base"], e["recurrences"], e["recurrence_rate"]) == (2, 1, 0.5)
    s = k["satisfaction"]
    assert s["csat"]["count"] == 3 and s["csat"]["average"] == 3.67
    assert s["csat"]["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}
    assert (s["nps"]["promoters"], s["nps"]["passives"], s["nps"]["detractors"], s["nps"]["score"]) == (1, 1, 1, 0.0)
    assert s["feedback"] == {"total": 1, "by_type": {"praise": 1}}
    assert k["pareto"][0] == {"category": "product_quality", "count": 2, "share": 0.5, "cumulative": 0.5}
    assert {p["category"] for p in k["pareto"]} == {"product_quality", "delivery", "untriaged"}
    assert {r["root_cause"] for r in k["root_causes"]} == {"cause K-1 0", "cause K-3 1"}
    steps = {b["spec_id"]: b for b in k["bottlenecks"]}
    assert steps["acknowledge"]["completed"] == 3 and steps["acknowledge"]["open"] == 1
    assert steps["acknowledge"]["avg_hours"] == round((3 + 30 + 1) / 3, 2)

    # April: the second-round action of K-3 is due then; nothing received
    april = compute(rt.db, KpiQuery(date(2026, 4, 1), date(2026, 4, 30)))
    assert april["complaints"]["received"] == 0 and april["complaints"]["open_at_end"] == 1
    assert april["actions"]["due_in_period"] == 1 and april["actions"]["done_on_time"] == 1

    # exports list the rows
    assert [r["reference"] for r in complaint_rows(rt.db, MARCH)] == ["K-1", "K-2", "K-3", "K-4"]
    assert len(action_rows(rt.db, MARCH)) == 3
    surveys = survey_rows(rt.db, MARCH)
    assert sorted((r["csat"], r["nps_group"]) for r in surveys) == [(2, "detractor"), (4, "passive"), (5, "promoter")]

    # the action rollup kept row by row by the refresh equals one recomputed from the facts
    def rollup():
        with rt.db.read() as s:
            return sorted(tuple(r) for r in s.execute(select(
                ActionRollup.kind, ActionRollup.process_key, ActionRollup.instance_status, ActionRollup.due_on,
                ActionRollup.actions, ActionRollup.done, ActionRollup.on_time)))
    kept = rollup()
    assert sum(r[4] for r in kept) == 4
    with rt.db.write() as s:
        rebuild_action_rollup(s)
    assert rollup() == kept


def test_refresh_is_incremental_and_follows_later_changes(rt):
    with time_machine.travel(START, tick=False) as clock:
        d = _complaint(rt, clock, "K-9", None)
        assert refresh_facts(rt.db) == 1
        # nothing changed (PostgreSQL re-reads the last minutes on purpose, see storage.kpi_upkeep.PG_LOOKBACK)
        assert refresh_facts(rt.db) == (0 if rt.db.dialect == "sqlite" else 1)
        clock.shift(timedelta(hours=5))
        d.complete("acknowledge", SERVICE, ack())
        assert compute(rt.db, MARCH)["acknowledge"]["count"] == 0  # not refreshed yet
        assert refresh_facts(rt.db) == 1
        k = compute(rt.db, MARCH)
    assert k["acknowledge"]["median_hours"] == 5.0 and k["complaints"]["open_at_end"] == 1


def _rollups(db):
    def rows(table):  # without the surrogate key
        return sorted(tuple(r) for r in s.execute(select(*[c for c in table.c if c.name != "id"])))

    with db.read() as s:
        return rows(ComplaintRollup.__table__), rows(StepRollup.__table__)


def test_recount_after_a_rules_change_leaves_writers_free(rt, monkeypatch):
    """When the rollups must be counted again from every fact (an upgrade, other rules), the counting
    holds no write lock: another unit of work commits meanwhile (on SQLite it would wait for the whole
    recount). The result equals a recount inside one transaction, and later changes are counted."""
    with time_machine.travel(START, tick=False) as clock:
        _complaint(rt, clock, "K-1", timedelta(hours=3), rounds=[[("2026-03-20", "2026-03-10")]], csat=5, nps=10)
        _complaint(rt, clock, "K-2", timedelta(hours=30), valid=False, category="delivery")
        assert refresh_facts(rt.db) == 2
        with rt.db.write() as s:  # as after an upgrade: the rollups' stamp no longer matches
            s.execute(delete(ComplaintRollup).where(ComplaintRollup.basis == "meta"))
        later = _complaint(rt, clock, "K-3", None)
        others: list[str] = []
        counting = kpi_rollups.count_rollups

        def count_while_another_writes(session, rules):
            writer = threading.Thread(target=lambda: others.append(rt.start("customer_feedback", {
                "feedback_type": "praise", "customer_name": "Tom", "message": "Great"}, INTAKE).id))
            writer.start()
            writer.join(10)
            assert others, "a unit of work waited for the recount"
            return counting(session, rules)

        monkeypatch.setattr(kpi_rollups, "count_rollups", count_while_another_writes)
        assert refresh_facts(rt.db) >= 1
        monkeypatch.undo()
        assert compute(rt.db, MARCH)["complaints"]["received"] == 3
        recounted = _rollups(rt.db)
        with rt.db.write() as s:
            kpi_rollups.rebuild_complaint_rollup(s, kpis.RULES)
        assert _rollups(rt.db) == recounted and later.refresh().status == "running"


def test_scheduler_pass_refreshes_the_facts(rt, monkeypatch, caplog):
    with time_machine.travel(START, tick=False) as clock:
        _complaint(rt, clock, "K-7", None)
        assert scheduler_pass(rt, "w1")["kpi_facts"] == 1
        assert compute(rt.db, MARCH)["complaints"]["received"] == 1

        def broken(db):
            raise RuntimeError("facts unavailable")

        monkeypatch.setattr(kpis, "refresh_facts", broken)
        out = scheduler_pass(rt, "w1")  # a failing step is logged; the pass goes on
    assert out["kpi_facts"] == 0 and "KPI fact refresh failed" in caplog.text


def _fact(i, received, closed=None, **extra):
    row = {"instance_id": f"i{i}", "process_key": "complaint_to_improvement", "kind": "complaint",
           "reference": f"R-{i}", "instance_status": "completed" if closed else "running",
           "status": "closed" if closed else "received", "received_at": received, "closed_at": closed,
           "close_seconds": (closed - received).total_seconds() if closed else None, "rca_loops": 0,
           "category": "delivery", "product": "P"}
    row.update(extra)
    return row


def test_time_zone_and_period_boundaries(db):
    rows = [
        _fact(1, datetime(2026, 2, 28, 23, 30, tzinfo=UTC)),   # 1 March 00:30 in Berlin, 28 Feb in UTC
        _fact(2, datetime(2026, 3, 29, 0, 30, tzinfo=UTC)),    # Sunday 29 March 01:30 CET (week of 23 March)
        _fact(3, datetime(2026, 3, 29, 22, 30, tzinfo=UTC)),   # Monday 30 March 00:30 CEST (week of 30 March)
        _fact(4, datetime(2026, 3, 31, 22, 30, tzinfo=UTC)),   # 1 April 00:30 CEST: outside March in Berlin
    ]
    with db.write() as s:
        s.execute(insert(ComplaintFact), rows)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    berlin = compute(db, KpiQuery(date(2026, 3, 1), date(2026, 3, 31), "Europe/Berlin"), now=now)
    assert berlin["complaints"]["received"] == 3
    weeks = {b["start"]: b["received"] for b in berlin["complaints"]["trend"]}
    assert weeks["2026-02-23"] == 1 and weeks["2026-03-23"] == 1 and weeks["2026-03-30"] == 1
    utc = compute(db, KpiQuery(date(2026, 3, 1), date(2026, 3, 31), "UTC", granularity="month"), now=now)
    assert utc["complaints"]["received"] == 3  # 2, 3 and 4
    assert utc["complaints"]["trend"] == [{"start": "2026-03-01", "received": 3, "closed": 0}]
    assert utc["complaints"]["open_at_end"] == 4  # fact 1 arrived before March and is still open
    # the ack target counts complaints received more than 24 h ago that were never acknowledged as misses
    assert utc["acknowledge"]["eligible"] == 3 and utc["acknowledge"]["within_target"] == 0


def test_empty_period(db):
    k = compute(db, KpiQuery(date(2025, 1, 1), date(2025, 12, 31)), now=datetime(2026, 1, 1, tzinfo=UTC))
    assert k["complaints"]["received"] == 0 and k["period"]["granularity"] == "month"
    assert len(k["complaints"]["trend"]) == 12
    assert k["acknowledge"]["median_hours"] is None and k["acknowledge"]["share_within_target"] is None
    assert k["satisfaction"]["nps"]["score"] is None and k["satisfaction"]["csat"]["average"] is None
    assert k["actions"]["on_time_rate"] is None and k["pareto"] == [] and k["bottlenecks"] == []


def test_percentiles_interpolate(db):
    base = datetime(2026, 3, 2, tzinfo=UTC)
    with db.write() as s:
        s.execute(insert(ComplaintFact), [_fact(i, base, base + timedelta(hours=h)) for i, h in enumerate([1, 2, 3, 10])])
    k = compute(db, MARCH, now=datetime(2026, 4, 1, tzinfo=UTC))
    assert k["close"]["median_hours"] == 2.5 and k["close"]["p90_hours"] == 7.9


def test_filters(db):
    base = datetime(2026, 3, 2, tzinfo=UTC)
    with db.write() as s:
        s.execute(insert(ComplaintFact), [_fact(1, base, product="A"), _fact(2, base, product="B", severity="major"),
                                          _fact(3, base, product="B", process_key="supplier_nonconformity",
                                                kind="nonconformity")])
    now = datetime(2026, 4, 1, tzinfo=UTC)
    assert compute(db, MARCH, now=now)["complaints"]["received"] == 2
    q = build_query({"from": "2026-03-01", "to": "2026-03-31", "product": "B"})
    assert compute(db, q, now=now)["complaints"]["received"] == 1
    q = build_query({"from": "2026-03-01", "to": "2026-03-31", "process": "supplier_nonconformity"})
    assert compute(db, q, now=now)["complaints"]["received"] == 1
    q = build_query({"from": "2026-03-01", "to": "2026-03-31", "severity": "major"})
    assert compute(db, q, now=now)["complaints"]["received"] == 1


def test_build_query_defaults_and_errors():
    q = build_query({}, "UTC", today=date(2026, 3, 31))
    assert (q.from_date, q.to_date) == (date(2026, 1, 1), date(2026, 3, 31))
    with pytest.raises(KpiQueryError):
        build_query({"from": "yesterday"})
    with pytest.raises(KpiQueryError):
        build_query({"from": "2026-03-02", "to": "2026-03-01"})
    with pytest.raises(KpiQueryError):
        build_query({}, "Mars/Olympus")


def test_facts_from_data_collect_actions_of_every_round():
    data = {"received_at": "2026-03-02T08:00:00Z", "reference": "X", "rca_loops": 1,
            "rca_history": [{"round": 1, "effective": False, "actions": [{"id": "1-1", "owner": "a", "due": "2026-03-05",
                                                                          "done_at": "2026-03-04"}]},
                            {"round": 2, "effective": True, "actions": [{"id": "2-1", "owner": "b", "due": "2026-03-09",
                                                                         "done_at": None}]}],
            "actions": [{"id": "2-1", "owner": "b", "due": "2026-03-09", "done_at": None}], "rca_round": 2,
            "csat": 9, "nps": "7"}
    fact, actions = facts_from_instance("i", "complaint_to_improvement", "running", data, None)
    assert fact["effective_first_check"] is False and fact["csat"] is None and fact["nps"] == 7
    assert [(a["action_id"], a["effective"]) for a in actions] == [("1-1", False), ("2-1", True)]
    assert facts_from_instance("i", "simple_review", "running", {"reference": "X"}, None) == (None, [])


def _on(month, day, hour=12):
    return datetime(2026, month, day, hour, tzinfo=UTC)


def test_tiles_compare_with_the_previous_period_of_the_same_length(db):
    """March 2026 (31 days) against 29 January - 28 February; every figure worked out by hand below."""
    rows = [
        # March: received 4; closed in March c1 (3 d), c2 (10 d), c4 (1 d) and p2 (6 d)
        _fact("c1", _on(3, 2), _on(3, 5), effective_first_check=True, nps=10),
        _fact("c2", _on(3, 10), _on(3, 20), effective_first_check=False, nps=3),
        _fact("c3", _on(3, 15)),
        _fact("c4", _on(3, 20), _on(3, 21), effective_first_check=True, nps=9),
        # the previous period: received 3; closed in it only p1 (7 d)
        _fact("p1", _on(2, 3), _on(2, 10), effective_first_check=True, nps=8),
        _fact("p2", _on(2, 25), _on(3, 3)),
        _fact("p3", _on(2, 27)),
        _fact("old", _on(1, 10), _on(1, 20), effective_first_check=False, nps=0),  # before both periods
    ]
    actions = [  # overdue = due in the period before its last day (or today), not done
        {"instance_id": "ic1", "action_id": "1-1", "round": 1, "due_on": date(2026, 3, 10), "done_on": None},
        {"instance_id": "ic1", "action_id": "1-2", "round": 1, "due_on": date(2026, 3, 12),
         "done_on": date(2026, 3, 11)},
        {"instance_id": "ic2", "action_id": "1-1", "round": 1, "due_on": date(2026, 3, 31), "done_on": None},
        {"instance_id": "ip1", "action_id": "1-1", "round": 1, "due_on": date(2026, 2, 5), "done_on": None},
        {"instance_id": "ip1", "action_id": "1-2", "round": 1, "due_on": date(2026, 2, 20), "done_on": None},
        {"instance_id": "ip1", "action_id": "1-3", "round": 1, "due_on": date(2026, 1, 28), "done_on": None},
    ]
    with db.write() as s:
        s.execute(insert(ComplaintFact), rows)
        s.execute(insert(ActionFact), actions)
    now = datetime(2026, 4, 15, tzinfo=UTC)
    k = compute(db, MARCH, now=now)
    glance = kpis.glance(db, MARCH, k, now=now)
    assert glance["previous"] == {"from": "2026-01-29", "to": "2026-02-28"}
    tiles = {t["key"]: (t["value"], t["previous"], t["change"], t["trend"]) for t in glance["tiles"]}
    assert tiles == {
        "received": (4, 3, 1, "worse"),
        "open": (2, 2, 0, "same"),  # end of March: c3, p3; end of February: p2 (closed 3 March), p3
        "overdue_actions": (1, 2, -1, "better"),
        "median_close_days": (4.5, 7.0, -2.5, "better"),  # median of 1, 3, 6, 10 days; 7 days
        "effective_first_check": (66.7, 100.0, -33.3, "worse"),  # 2 of 3; 1 of 1
        "nps": (33.3, 0.0, 33.3, "better"),  # 2 promoters, 1 detractor of 3; 1 passive
    }
    assert [t["key"] for t in glance["tiles"]] == [key for key, *_ in kpis.TILES]


def test_tiles_without_a_previous_figure(db):
    with db.write() as s:
        s.execute(insert(ComplaintFact), [_fact("c1", _on(3, 2), _on(3, 5), nps=10)])
    now = datetime(2026, 4, 15, tzinfo=UTC)
    glance = kpis.glance(db, MARCH, compute(db, MARCH, now=now), now=now)
    tiles = {t["key"]: t for t in glance["tiles"]}
    assert tiles["median_close_days"]["previous"] is None and tiles["median_close_days"]["trend"] is None
    assert tiles["received"]["change"] == 1 and tiles["nps"]["value"] == 100.0
    assert tiles["effective_first_check"]["value"] is None
    q = KpiQuery(date(1, 1, 2), date(1, 1, 5))
    assert kpis.glance(db, q, compute(db, q, now=now), now=now)["previous"] is None  # no year 0


def test_previous_period():
    q = build_query({"from": "2026-03-01", "to": "2026-03-01", "category": "delivery"}, "Europe/Berlin")
    before = kpis.previous_period(q)
    assert (before.from_date, before.to_date, before.category, before.tz_name) == (
        date(2026, 2, 28), date(2026, 2, 28), "delivery", "Europe/Berlin")


def test_percentiles_of_a_long_period_from_either_end(db):
    """A year (the ordered-index path on SQLite): the median walks up from the smallest value, the 90th
    percentile down from the largest; both as PostgreSQL's percentile_cont gives them."""
    base = datetime(2026, 3, 2, tzinfo=UTC)
    with db.write() as s:
        s.execute(insert(ComplaintFact), [_fact(i, base, base + timedelta(hours=h))
                                          for i, h in enumerate([5, 1, 4, 2, 3])])
    year = KpiQuery(date(2025, 4, 1), date(2026, 3, 31))
    k = compute(db, year, now=datetime(2026, 4, 1, tzinfo=UTC))
    assert k["close"]["median_hours"] == 3.0 and k["close"]["p90_hours"] == 4.6  # 4 + 0.6 × (5 − 4)
    with db.write() as s:
        s.execute(insert(ComplaintFact), [_fact(9, base, base + timedelta(hours=6))])
    k = compute(db, year, now=datetime(2026, 4, 1, tzinfo=UTC))
    assert k["close"]["median_hours"] == 3.5 and k["close"]["p90_hours"] == 5.5  # ranks 2.5 and 4.5 of 1..6
    assert kpis.glance(db, year, k, now=datetime(2026, 4, 1, tzinfo=UTC))["tiles"][3]["value"] == round(3.5 / 24, 2)
