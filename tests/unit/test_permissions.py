"""engine.permissions: who may see and act on a task or an instance (one home for the rules the
runtime enforces and the pages follow)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine.errors import NotFoundError, PermissionDeniedError
from engine.permissions import (
    check_may_act,
    check_may_see_instance,
    is_own_work,
    may_claim,
    may_complete,
    may_see_task,
    may_unclaim,
    visible_tasks,
)
from engine.views import Actor

LEAD = Actor("lena", frozenset({"quality_lead"}), "quality_lead")
RITA = Actor("rita", frozenset({"reviewers"}), "employee")
OTTO = Actor("otto", frozenset({"purchasing"}), "employee")


def task(state="open", assignee=None, completed_by=None, groups=("reviewers",)):
    return SimpleNamespace(name="Assess", state=state, assignee=assignee, completed_by=completed_by,
                           groups=list(groups))


def test_see_and_act_on_a_task():
    t = task()
    assert may_see_task(RITA, t, t.groups) and may_see_task(LEAD, t, t.groups)
    assert not may_see_task(OTTO, t, t.groups)
    done = task("completed", assignee="otto", completed_by="otto", groups=())
    assert may_see_task(OTTO, done, []) and not may_see_task(RITA, done, [])
    check_may_act(RITA, t, t.groups)
    check_may_act(OTTO, task(assignee="otto", groups=()), [])
    with pytest.raises(NotFoundError):  # a task he may not even see: its name and groups stay hidden
        check_may_act(OTTO, t, t.groups)
    seen = task(assignee="rita", completed_by="otto")  # he worked on it once: he sees it, may not act
    with pytest.raises(PermissionDeniedError, match=r"you may not work on task 'Assess' \(groups: reviewers\)"):
        check_may_act(OTTO, seen, seen.groups)


def test_buttons_follow_what_the_runtime_accepts():
    open_task, mine, rob_holds = task(), task("claimed", "rita"), task("claimed", "rob")
    assert may_claim(RITA, open_task, ["reviewers"]) and not may_claim(OTTO, open_task, ["reviewers"])
    assert may_claim(LEAD, open_task, ["reviewers"]) and not may_claim(RITA, mine, ["reviewers"])
    assert may_unclaim(RITA, mine, ["reviewers"]) and not may_unclaim(RITA, rob_holds, ["reviewers"])
    assert may_unclaim(LEAD, rob_holds, ["reviewers"])
    assert not may_unclaim(RITA, task("claimed", "rita", groups=()), [])  # no groups to return it to
    assert may_complete(RITA, open_task, ["reviewers"]) and may_complete(LEAD, open_task, ["reviewers"])
    assert not may_complete(RITA, rob_holds, ["reviewers"]) and not may_complete(LEAD, rob_holds, ["reviewers"])
    assert not may_complete(RITA, task("completed"), ["reviewers"])
    # a lead may step in, but only the group's open tasks and their own are their work
    assert is_own_work(RITA, open_task, ["reviewers"]) and not is_own_work(LEAD, open_task, ["reviewers"])


def test_instance_visibility():
    instance = SimpleNamespace(id="i-1", tasks=[task("completed", "rita", "rita"), task(groups=("approvers",))])
    assert check_may_see_instance(RITA, instance) is instance  # worked on one of its tasks
    assert [t.state for t in visible_tasks(RITA, instance)] == ["completed"]
    assert check_may_see_instance(LEAD, instance) is instance and len(visible_tasks(LEAD, instance)) == 2
    with pytest.raises(NotFoundError):
        check_may_see_instance(OTTO, instance)
