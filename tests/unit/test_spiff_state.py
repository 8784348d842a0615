"""The stored state of a workflow and the spec facts a save relies on (engine/runtime/spiff_serializer.py,
engine/runtime/spiff_facts.py).

Our task converter is a cheaper copy of SpiffWorkflow's: it must write the very dictionary
SpiffWorkflow's own converter writes (states stored before it keep loading, and a later SpiffWorkflow
converter could read ours), and restore the same tasks. Spec facts let a save skip walks of the task
tree: a fact that says "nothing of this kind" for a process that has one would lose its timers.
"""

from __future__ import annotations

import json
from pathlib import Path

from SpiffWorkflow.bpmn.serializer.default.workflow import TaskConverter
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from engine.bpmn_parser import PdcaParser
from engine.runtime import camunda, spiff, spiff_serializer
from engine.sandbox import SandboxScriptEngine

ROOT = Path(__file__).resolve().parents[2]
REVIEW = ROOT / "benchmarks" / "resources" / "bench_review.bpmn"
TIMER_WAIT = ROOT / "tests" / "fixtures" / "runtime" / "timers.bpmn"
MESSAGE = ROOT / "tests" / "fixtures" / "runtime" / "message.bpmn"


def _specs(path: Path, key: str) -> tuple:
    parser = PdcaParser()
    parser.add_bpmn_file(str(path))
    return parser.get_spec(key), parser.get_subprocess_specs(key)


def _half_done_review() -> tuple:
    spec, subs = _specs(REVIEW, "bench_review")
    engine = SandboxScriptEngine()
    workflow = spiff.new_workflow(spec, subs, engine, {"reference": "R-1", "customer": {"name": "Ada", "tags": [1, 2]}})
    spiff.advance(workflow)
    task = workflow.get_next_task(state=TaskState.READY, manual=True)
    task.data.update({"amount": 120, "urgent": False, "notes": {"lines": ["a", {"b": 2}]}})
    task.internal_data["marker"] = {"nested": [1]}
    task.run()
    spiff.advance(workflow)
    return workflow, spec, subs, engine


def _tasks(workflow) -> dict:
    return {str(i): (t.task_spec.name, t.state, t.data, t.internal_data, str(t._parent), [str(c) for c in t._children])
            for i, t in workflow.tasks.items()}


def test_our_converter_writes_what_spiffworkflows_writes_and_restores_the_same_tasks():
    workflow, spec, subs, engine = _half_done_review()
    ours = spiff.dump_state(workflow)

    restored = spiff.load_state(ours, spec, subs, engine)
    assert _tasks(restored) == _tasks(workflow)
    assert spiff.dump_state(restored) == ours

    registry = spiff_serializer._REGISTRY
    original = registry.convert_to_dict["Task"], registry.convert_from_dict["Task"]
    theirs_converter = TaskConverter(Task, registry)  # registering it replaces ours in the registry
    try:
        theirs = spiff.dump_state(workflow)
        assert json.loads(theirs) == json.loads(ours)
        assert _tasks(spiff.load_state(ours, spec, subs, engine)) == _tasks(workflow)
    finally:
        registry.convert_to_dict["Task"], registry.convert_from_dict["Task"] = original
    assert theirs_converter.typename == "Task"


def test_restored_tasks_do_not_share_their_data_with_one_another():
    workflow, spec, subs, engine = _half_done_review()
    restored = spiff.load_state(spiff.dump_state(workflow), spec, subs, engine)
    ready = restored.get_next_task(state=TaskState.READY, manual=True)
    ready.data["amount"] = 999
    ready.internal_data["touched"] = True
    others = [t for t in restored.tasks.values() if t is not ready]
    assert all(t.data.get("amount") != 999 for t in others)
    assert all("touched" not in t.internal_data for t in others)


def test_spec_facts_follow_what_the_process_contains():
    review = spiff.new_workflow(*_specs(REVIEW, "bench_review"), SandboxScriptEngine(), {})
    facts = spiff.spec_facts(review)
    assert facts.human_tasks and not facts.waits and not facts.external_tasks and not facts.timer_starts
    assert not spiff.waiting_events(review)

    timer = spiff.new_workflow(*_specs(TIMER_WAIT, "rt_timer_wait"), SandboxScriptEngine(), {})
    assert spiff.spec_facts(timer).waits
    spiff.advance(timer)
    assert [element for element, _due in spiff.waiting_events(timer).timers.values()] == ["Timer_Wait"]
    message = spiff.new_workflow(*_specs(MESSAGE, "rt_message"), SandboxScriptEngine(), {})
    assert spiff.spec_facts(message).waits


CONDITIONAL = ROOT / "tests" / "constructs" / "models" / "flow_conditional_task.bpmn"
NO_DEFAULT = ROOT / "tests" / "constructs" / "models" / "flow_conditional_no_default.bpmn"


def test_the_choice_of_an_activitys_conditional_flows_is_stored_with_the_spec():
    spec, subs = spiff.load_specs(spiff.dump_specs(*_specs(CONDITIONAL, "flow_conditional_task")))
    leave = spec.task_specs["review.Leave"]
    assert isinstance(leave, spiff.ConditionalLeave) and spec.task_specs["review"].outputs == [leave]
    assert (leave.activity, leave.bpmn_id, leave.bpmn_name, leave.default_task_spec) == ("review", None, "Review",
                                                                                        "routine")
    conditions = {name: (c.args[0] if c is not None else None) for c, name in leave.cond_task_specs}
    assert conditions == {"big": "${amount > 100}", "urgent": "${urgent}", "routine": None}
    plain = _specs(REVIEW, "bench_review")[0]  # no condition leaving an activity: nothing in between
    assert not any(isinstance(s, spiff.ConditionalLeave) for s in plain.task_specs.values())


def test_a_failed_choice_is_stored_and_a_restored_workflow_chooses_again():
    spec, subs = _specs(NO_DEFAULT, "flow_conditional_no_default")
    engine = SandboxScriptEngine(context_of=camunda.script_context)  # as the runtime's (`execution`)
    workflow = spiff.new_workflow(spec, subs, engine, {"amount": 50})
    spiff.advance(workflow)
    workflow.get_next_task(state=TaskState.READY, manual=True).run()
    try:
        spiff.advance(workflow)
        raise AssertionError("no flow could be taken: the advance must fail")
    except spiff.EngineFailure as exc:
        assert spiff.failing_task(exc).task_spec.name == "review.Leave"
    restored = spiff.load_state(spiff.dump_state(workflow), spec, subs, engine)
    [failed] = spiff.failed_tasks(restored)
    assert failed.task_spec.name == "review.Leave"
    # `execution` in the conditions is leaving the activity, as in Camunda
    assert engine.evaluate(failed, "${execution.getCurrentActivityId()}") == "review"
    assert engine.evaluate(failed, "${execution.getCurrentActivityName()}") == "Review"
    assert spiff.element_states(restored)[0]["review"]["state"] == "incident"
    spiff.retry_failed(restored, {"amount": 5})
    spiff.advance(restored)
    assert [t.task_spec.bpmn_id for t in spiff.ready_user_tasks(restored).values()] == ["small"]
