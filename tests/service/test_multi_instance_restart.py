"""A multi-instance body still collects its instances after a restart (a fresh Runtime, an empty
spec cache): the connection between an instance's end and its body lives in memory only."""

from engine.runtime import Runtime
from engine.views import Actor
from tests.fixtures.runtime.helpers import LEAD, add_users, deploy, only_open


def test_instances_completed_after_a_restart_finish_the_body(runtime, db):
    add_users(runtime, "anna", "bert")
    deploy(runtime, "multi")
    actions = [{"owner": "anna", "what": "a"}, {"owner": "bert", "what": "b"}]
    instance = runtime.start("rt_multi", {"actions": actions}, LEAD)
    tasks = {t.assignee: t for t in instance.tasks if t.name == "Do action"}
    runtime.complete(tasks["anna"].id, Actor("anna"), {"action.done_at": "2026-03-03"})
    instance = Runtime(db).complete(tasks["bert"].id, Actor("bert"), {"action.done_at": "2026-03-04"})
    assert only_open(instance).name == "Check actions"
    assert [a["done_at"] for a in instance.data["actions"]] == ["2026-03-03", "2026-03-04"]
    assert "action" not in instance.data and "loopCounter" not in instance.data
