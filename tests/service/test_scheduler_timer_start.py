"""Timer start events: the scheduler starts one new instance per cycle, once, on the latest version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from engine.scheduler import scheduler_pass
from engine.schedules import plan, start_due, sync_schedules
from tests.conftest import FIXTURES

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
WEEKLY = FIXTURES / "scheduler" / "weekly_review.bpmn"


def _instances(runtime):
    return runtime.instances(key="weekly_review")


def test_cycle_starts_one_instance_per_interval_three_times(runtime, lead):
    with time_machine.travel(T0, tick=False):
        runtime.deploy_paths([WEEKLY])
        assert sync_schedules(runtime.db) == 1
        assert start_due(runtime, "w1") == 0  # the first cycle is 10 minutes after deployment
    for n in (1, 2, 3):
        with time_machine.travel(T0 + timedelta(minutes=10 * n, seconds=1), tick=False):
            assert start_due(runtime, "w1") == 1
            assert start_due(runtime, "w2") == 0  # each start happens once
            assert len(_instances(runtime)) == n
    with time_machine.travel(T0 + timedelta(hours=5), tick=False):
        assert start_due(runtime, "w1") == 0  # R3: three starts, then done
    instances = _instances(runtime)
    assert len(instances) == 3 and {i["status"] for i in instances} == {"running"}
    task = runtime.tasks(lead, instance_id=instances[0]["id"])[0]
    assert task.spec_id == "Review"  # the start timer counted as fired: the instance went on
    audit = runtime.instance(instances[0]["id"]).audit
    assert audit[0].type == "start" and audit[0].actor == "scheduler"


def test_new_version_moves_the_schedule_and_scheduler_pass_runs_it(runtime, tmp_path):
    with time_machine.travel(T0, tick=False):
        runtime.deploy_paths([WEEKLY])
        sync_schedules(runtime.db)
    changed = tmp_path / "weekly_review.bpmn"
    changed.write_text(WEEKLY.read_text().replace("R3/PT10M", "R/PT1H").replace("Review open complaints",
                                                                                 "Review complaints"))
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        assert [r.version for r in runtime.deploy_paths([changed])] == [2]
        assert scheduler_pass(runtime, "w1")["scheduled_starts"] == 0
    with time_machine.travel(T0 + timedelta(minutes=5, hours=1, seconds=1), tick=False):
        assert scheduler_pass(runtime, "w1")["scheduled_starts"] == 1
    [instance] = _instances(runtime)
    assert instance["process_version"] == 2


def test_plans_for_date_duration_and_cycle_with_start():
    base = T0
    assert plan("timeDate", "2026-06-01T09:00:00Z", base).next_at == datetime(2026, 6, 1, 9, tzinfo=UTC)
    once = plan("timeDuration", "PT2H", base)
    assert (once.next_at, once.remaining) == (T0 + timedelta(hours=2), 1)
    weekly = plan("timeCycle", "R/2026-05-11T07:00:00Z/P7D", base)
    assert weekly.next_at == datetime(2026, 5, 11, 7, tzinfo=UTC) and weekly.interval == timedelta(days=7)
    assert weekly.remaining == -1
    expression = plan("timeCycle", '${"R2/PT30M"}', base)
    assert (expression.next_at, expression.remaining) == (T0 + timedelta(minutes=30), 2)
