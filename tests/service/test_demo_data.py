"""`pdcaflow demo`'s sample complaints read like real ones: different customers, products,
categories and root causes, answers in people's words (never a form label), dates spread over
weeks and never in the future, a case waiting at every step of the complaint process (and one for
its effectiveness check), closed ones (one after a second round of analysis) and a rejected one;
the people who did each step are the ones whose work it is. A second run adds nothing."""

from __future__ import annotations

import json
from datetime import timedelta

from engine import clock
from engine.accounts import save_user
from engine.demo import seed_demo_instances
from tests.conftest import PROCESSES
from web.cli import DEMO_PASSWORD, DEMO_USERS

STEPS = {"acknowledge", "triage", "containment", "reply", "rca_analyse", "rca_plan", "rca_do_action", "rca_check",
         "standardise", "send_final_reply", "survey"}


def test_demo_complaints_cover_every_stage_and_read_like_real_ones(runtime, db):
    for name, role, groups, email in DEMO_USERS:
        save_user(db, name, role, password=DEMO_PASSWORD, email=email, groups=groups)
    runtime.deploy_paths([PROCESSES])
    started = seed_demo_instances(runtime)
    assert started >= 15
    assert seed_demo_instances(runtime) == 0  # once

    views = [runtime.instance(i["id"]) for i in runtime.instances(key="complaint_to_improvement")]
    assert len(views) == started and not any(v.incidents for v in views)
    waiting_at = {t.spec_id for v in views for t in v.tasks if t.state in ("open", "claimed")}
    assert STEPS - {"reply"} <= waiting_at, STEPS - waiting_at
    assert any(v.status == "running" and not [t for t in v.tasks if t.state in ("open", "claimed")]
               and v.data.get("effectiveness_due_at") for v in views)  # waiting for the effectiveness check
    closed = [v for v in views if v.status == "completed"]
    assert sum(v.data["status"] == "closed" for v in closed) >= 3
    assert [v.data["status"] for v in closed].count("rejected") == 1
    assert any(len(v.data.get("rca_history") or []) == 2 for v in closed)  # not effective at the first check

    data = [v.data for v in views]
    assert len({d["customer_name"] for d in data}) == len(views)
    assert len({d["product"] for d in data}) >= 6
    assert len({d.get("category") for d in data if d.get("category")}) >= 4
    assert len({d["root_cause"] for d in data if d.get("root_cause")}) >= 6
    assert len({d["channel"] for d in data}) == 3  # web, e-mail, phone
    # people's words, not the form's labels or placeholders
    text = json.dumps(data)
    assert "demo entry" not in text and "Root cause (one or two sentences)" not in text and "${" not in text

    # dates spread over weeks, never in the future; references count up with them
    now = clock.now()
    assert all(v.started_at <= now for v in views)
    assert min(v.started_at for v in views) < now - timedelta(days=60)
    by_reference = sorted(views, key=lambda v: v.business_key)
    assert [v.started_at for v in by_reference] == sorted(v.started_at for v in views)
    assert all(t.created_at <= now and (t.completed_at is None or t.completed_at <= now)
               for v in views for t in v.tasks)

    # each step was done by the people whose work it is
    done_by = {(t.spec_id, t.completed_by) for v in views for t in v.tasks if t.state == "completed"}
    assert {by for spec, by in done_by if spec in ("acknowledge", "reply", "send_final_reply", "survey")} \
        == {"carl.service"}
    assert {by for spec, by in done_by if spec == "containment"} == {"emil.production"}
    assert {by for spec, by in done_by if spec == "rca_do_action"} >= {"emil.production", "paula.purchasing"}
