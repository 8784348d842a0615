"""The InstanceView returned by a write (built from the unit of work's own rows) equals the one a
separate read returns: tasks with groups, incidents, audit, data, status."""

from __future__ import annotations

from tests.fixtures.runtime.helpers import LEAD, REVIEWER, deploy, only_open


def test_views_after_start_and_complete_equal_a_fresh_read(runtime):
    deploy(runtime, "script")
    instance = runtime.start("rt_script", {"reference": "C-1"}, LEAD)
    assert instance == runtime.instance(instance.id)
    after = runtime.complete(only_open(instance).id, REVIEWER, {"divisor": "0"})
    assert after.status == "incident" and after.incidents and after.audit
    assert after == runtime.instance(instance.id)


def test_view_of_a_start_that_raised_an_incident_equals_a_fresh_read(runtime):
    deploy(runtime, "start_script")
    started = runtime.start("rt_start_script", {"reference": "C-7"}, LEAD)
    assert started.incidents and started == runtime.instance(started.id)
