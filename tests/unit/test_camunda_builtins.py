"""Camunda's JUEL built-ins in the sandbox (execution, task, dateTime()) and the script result rewrite."""

import ast
from datetime import UTC, timedelta

import pytest

from engine import clock
from engine.runtime.camunda import with_result_variable
from engine.sandbox import SandboxError, ScriptError, evaluate, execute
from engine.sandbox_helpers import CONTEXT_KEY, unknown_builtin_calls

CONTEXT = {CONTEXT_KEY: {"instance_id": "i-1", "business_key": "BK-1", "activity_id": "act"}}


def test_execution_reads_and_writes_the_variables_in_a_script():
    data = {"x": 1}
    execute("execution.setVariable('y', execution.getVariable('x') + 1)\n"
            "key = execution.getProcessBusinessKey() + '/' + execution.getProcessInstanceId()", data, CONTEXT)
    assert data == {"x": 1, "y": 2, "key": "BK-1/i-1"}


def test_execution_writes_from_an_expression_go_into_the_data():
    data = {"x": 1}
    evaluate("${execution.setVariable('flag', true)}", data, CONTEXT)
    assert data["flag"] is True
    assert evaluate("${execution.getCurrentActivityId()}", data, CONTEXT) == "act"


def test_task_delegate_changes_the_task_attributes():
    task = {"name": "Review", "assignee": None, "definition_key": "review"}
    data: dict = {}
    execute("task.setAssignee('rita')\nseen = task.getName() + ':' + task.getTaskDefinitionKey()",
            data, {CONTEXT_KEY: {"task": task}})
    assert task["assignee"] == "rita" and data["seen"] == "Review:review"


def test_date_time_arithmetic_as_joda_does_it():
    start = "dateTime('2026-01-31T09:30:00Z')"
    assert evaluate(f"${{{start}.plusDays(2).toDate()}}", {}) == "2026-02-02T09:30:00Z"
    assert evaluate(f"${{{start}.plusMonths(1).toDate()}}", {}) == "2026-02-28T09:30:00Z"
    assert evaluate(f"${{{start}.minusHours(10).plusWeeks(1).toString()}}", {}) == "2026-02-06T23:30:00Z"
    assert evaluate(f"{start}.isBefore('2026-03-01')", {}) is True


def test_date_time_follows_the_engine_clock():
    clock.advance(timedelta(days=40))
    try:
        expected = (clock.now().astimezone(UTC) + timedelta(days=1)).date().isoformat()
        assert evaluate("${dateTime().plusDays(1).toDate()}", {})[:10] == expected
    finally:
        clock.reset()


def test_private_state_of_the_built_ins_is_out_of_reach():
    with pytest.raises((SandboxError, ScriptError)):
        execute("v = execution._vars", {}, CONTEXT)


@pytest.mark.parametrize(("source", "unknown"), [
    ("execution.fooBar()", ["execution.fooBar"]),
    ("execution.getVariable('a')", []),
    ("dateTime().plusDays(1).toDate()", []),
    ("dateTime().plusFortnights(1).toDate()", ["dateTime().plusFortnights"]),
    ("task.getAssignee()", []),
    ("task.claim()", ["task.claim"]),
    ("S(r).prop('a').prop('b').stringValue()", []),
    ("S(r).prop('a').jsonPath('$.b')", ["S().jsonPath"]),
    ("JSON(r).mapTo('java.util.Map')", ["S().mapTo"]),
])
def test_unknown_built_in_methods_are_named(source, unknown):
    assert unknown_builtin_calls(ast.parse(source, mode="eval")) == unknown


ORDER = '{"order": {"id": "A-1", "lines": [{"qty": 2}, {"qty": 3}], "note": null}, "paid": true}'


@pytest.mark.parametrize(("source", "value"), [
    ('${S(response).prop("order").prop("id").stringValue()}', "A-1"),
    ('${S(response).prop("paid").boolValue()}', True),
    ('${S(response).prop("order").prop("lines").elements()[1].prop("qty").numberValue()}', 3),
    ('${S(response).prop("order").prop("note").isNull()}', True),
    ('${S(response).hasProp("refund")}', False),
    ('${S(response).prop("order").fieldNames()}', ["id", "lines", "note"]),
    ('${JSON(response).prop("order").prop("lines").isArray()}', True),
    ('${str(S(response).prop("order").prop("lines"))}', '[{"qty": 2}, {"qty": 3}]'),
    ('${S(order_map).prop("id").stringValue()}', "B-2"),  # a map variable, as Spin reads a Java map
])
def test_camunda_spin_reads_json(source, value):
    assert evaluate(source, {"response": ORDER, "order_map": {"id": "B-2"}}) == value


@pytest.mark.parametrize(("source", "message"), [
    ('${S(response).prop("refund")}', "has no property 'refund'"),
    ('${S(response).prop("paid").stringValue()}', "is not a string"),
    ('${S(response).prop("order").elements()}', "is not an array"),
    ('${S("<order/>")}', "the text is not JSON"),
])
def test_camunda_spin_refuses_what_the_json_does_not_hold(source, message):
    with pytest.raises(ScriptError, match=message):
        evaluate(source, {"response": ORDER})


def test_camunda_spin_private_state_is_out_of_reach():
    with pytest.raises((SandboxError, ScriptError)):
        evaluate("${S(response)._value}", {"response": ORDER})


def test_result_variable_keeps_the_line_numbers():
    script = "a = 1\nb = [a,\n     2]\nsum(b) + a"
    rewritten = with_result_variable(script, "result")
    assert rewritten.splitlines()[:3] == script.splitlines()[:3]
    data: dict = {}
    execute(rewritten, data)
    assert data["result"] == 4
    assert with_result_variable("x = 1", "result").endswith("result = None")
