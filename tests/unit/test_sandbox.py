"""Sandboxed expressions and scripts, alone and through SpiffWorkflow."""

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.camunda.parser import CamundaParser

from engine.sandbox import (
    HELPERS,
    SandboxError,
    SandboxScriptEngine,
    ScriptError,
    captured_output,
    check_data_size,
    compile_expression,
    compile_script,
    evaluate,
    execute,
)
from engine.sandbox_helpers import DataBound
from engine.settings import Settings, SettingsError, configure, reset

# --- escapes are refused -------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("__import__('os')", "__import__ is not allowed"),
        ("().__class__.__bases__", "'__bases__' is not allowed"),
        ("x.__dict__", "'__dict__' is not allowed"),
        ("x._private", "'_private' is not allowed"),
        ("eval('1')", "not allowed"),
        ("'x' * 3000", None),  # fine: small
    ],
)
def test_expression_compile_refusals(source: str, message: str | None) -> None:
    if message is None:
        compile_expression(source)
        return
    with pytest.raises(SandboxError, match=message):
        compile_expression(source)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("open('/etc/passwd')", "'open' is not available in the sandbox"),
        ("getattr(x, '__class__')", "'getattr' is not available in the sandbox"),
        ("type(x)", "'type' is not available"),
        ("globals()", "'globals' is not available"),
        ("sum(range(10**9))", r"range\(\) of 1000000000 elements is too large"),
        ("'a' * 10**10", "result too large"),
        ("[0] * 10**9", "result too large"),
        ("2 ** 10**7", "result too large"),
        ("1 << 10**7", "result too large"),
        ("(lambda f: f(f))(lambda f: f(f))", "nested too deeply"),
        ("str.mro()", "'mro' is not allowed"),
        ("'{0.__class__}'.format(1)", "'format' is not allowed"),
        ("(i for i in []).gi_frame", "not allowed"),
        ("'x'.ljust(10**9)", "result too large"),
        ("('a' * 1000).replace('a', 'b' * 10000)", "result too large"),
        ("'-'.join(['a' * 1000] * 2000)", "result too large"),
        ("'%0999999999d' % 1", "not allowed"),
        ("'%*d' % (10**9, 1)", "not allowed"),
    ],
)
def test_expression_runtime_refusals(source: str, message: str) -> None:
    with pytest.raises((ScriptError, SandboxError), match=message):
        evaluate(source, {"x": 1})


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("import os", "line 1: imports are not allowed"),
        ("from os import path", "line 1: imports are not allowed"),
        ("x = 1\ny = 2\nwhile True:\n    pass", "line 3: while loops are not allowed; loop over a bounded"),
        ("def f():\n    return 1", "line 1: def statements are not allowed"),
        ("class A:\n    pass", "line 1: class statements are not allowed"),
        ("global x\nx = 1", "line 1: global/nonlocal statements are not allowed"),
        ("try:\n    x = 1\nexcept:\n    pass", "line 3: bare 'except:' is not allowed"),
        ("x = (\n", "line 1: syntax error"),
        ("x = printed", "'printed' is not available"),
        ("x = 1\n" * 5000, "too long"),
    ],
)
def test_script_compile_refusals(script: str, message: str) -> None:
    with pytest.raises(SandboxError, match=message):
        compile_script(script)


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("for i in range(10**9):\n    pass", r"range\(\) of 1000000000 elements is too large .*\(line 1\)"),
        (
            "n = 0\nfor i in range(100000):\n    for j in range(100000):\n        n += 1",
            r"step limit of 200000 exceeded.*\(line \d\)",
        ),
        (
            (
                "for i in range(100000):\n    try:\n        for j in range(100000):\n            pass\n"
                "    except Exception:\n        pass"
            ),
            "step limit",
        ),
        ("f = lambda n: f(n + 1)\nf(0)", "nested too deeply"),
        ("a = 1\nb = a + missing", r"NameError: name 'missing' is not defined \(line 2\)"),
        ("x = 1\ny = x / 0", r"ZeroDivisionError: division by zero \(line 2\)"),
        ("s = 'ab'\nfor i in range(40):\n    s = s + s", "result too large"),
        ("s = 'ab'\nfor i in range(40):\n    s += s", "result too large"),
        ("x = open\n", "'open' is not available"),
        ("x = ['a'] * 1000\nfor i in range(20):\n    x.extend(x)", "result too large"),
        ("raise ValueError('x' * 999999)", r"^ValueError: x{988}… \(line 1\)$"),
    ],
)
def test_script_runtime_failures(script: str, message: str) -> None:
    with pytest.raises(ScriptError, match=message) as info:
        execute(script, {})
    assert info.value.line is not None


def test_trace_function_is_restored_even_after_errors() -> None:
    def tracer(frame, event, arg):  # pragma: no cover - never triggered here
        return None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        with pytest.raises(ScriptError):
            execute("n = 0\nfor i in range(100000):\n    for j in range(100000):\n        n += 1", {})
        evaluate("1 + 1", {})
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(previous)


def test_task_data_cannot_replace_guards() -> None:
    data = {"_getattr_": lambda obj, name: "hijacked", "x": {"a": 1}}
    assert evaluate("x.a", data) == 1


# --- expressions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("amount > 100 and not urgent", True),
        ("${amount gt 100 && !urgent}", True),
        ("${order.total ge 50}", True),
        ("${empty order.notes}", True),
        ("${!empty order.lines}", True),
        ("order.lines[0].sku", "A-1"),
        ("order['total']", 80),
        ("order.items", ["dict key wins over dict.items"]),
        ("order.get('total')", 80),
        ("PT3S", "PT3S"),
        ("R3/PT10M", "R3/PT10M"),
        ("'PT3S'", "PT3S"),
        ("sorted(xs, key=lambda v: -v)", [3, 2, 1]),
        ("[v * 2 for v in xs if v > 1]", [6, 4]),
        ("max(xs) + min(xs) + sum(xs) + len(xs)", 13),
        ("floor(2.7) + ceil(2.1)", 5),
        ("'-'.join(str(v) for v in xs)", "1-3-2"),
        ("'%05.1f' % 2.25 + 'ab'.ljust(3, '.')", "002.2ab."),
        ("7 % 3", 1),
    ],
)
def test_evaluate(source: str, expected: object) -> None:
    data = {
        "amount": 150,
        "urgent": False,
        "xs": [1, 3, 2],
        "order": {
            "total": 80,
            "notes": "",
            "lines": [{"sku": "A-1"}],
            "items": ["dict key wins over dict.items"],
        },
    }
    assert evaluate(source, data) == expected


def test_evaluate_does_not_modify_data_bindings() -> None:
    data = {"x": 1}
    evaluate("[y for y in range(3)]", data)
    assert data == {"x": 1}


# --- scripts -----------------------------------------------------------------------


def test_script_updates_data() -> None:
    data = {"order": {"total": 10, "lines": []}, "old": 1, "keep": "k"}
    execute(
        "total = order.total * 2\n"
        "order.total = total\n"
        "order['lines'].append({'sku': 'B'})\n"
        "double = lambda v: v * 2\n"
        "it = reversed([1])\n"
        "when = parse_datetime('2026-01-01')\n"
        "count = 0\n"
        "for a, b in [(1, 2), (3, 4)]:\n"
        "    count += a + b\n"
        "labels = [str(double(v)) for v in range(3)]\n"
        "del old\n",
        data,
    )
    assert data == {
        "order": {"total": 20, "lines": [{"sku": "B"}]},
        "keep": "k",
        "total": 20,
        "count": 10,
        "a": 3,
        "b": 4,
        "labels": ["0", "2", "4"],
    }


def test_script_may_catch_its_own_errors() -> None:
    data: dict = {}
    execute("try:\n    x = int('nope')\nexcept ValueError:\n    x = -1", data)
    assert data == {"x": -1}


def test_script_can_shadow_a_helper_name_with_data() -> None:
    data: dict = {"now": "yesterday"}
    execute("later = now + '!'", data)
    assert data["later"] == "yesterday!"


# --- helpers -----------------------------------------------------------------------


def test_helpers_listing() -> None:
    for name in ("len", "range", "_empty", "now", "today", "add_duration", "days_between", "duration_seconds"):
        assert name in HELPERS
    for name in ("open", "eval", "exec", "getattr", "setattr", "globals", "vars", "type", "compile", "input"):
        assert name not in HELPERS


@time_machine.travel(datetime(2026, 3, 4, 5, 6, 7, 891000, tzinfo=UTC), tick=False)
def test_clock_helpers_follow_engine_clock() -> None:
    assert evaluate("now()", {}) == "2026-03-04T05:06:07Z"
    assert evaluate("today()", {}) == "2026-03-04"
    assert evaluate("days_between(today(), '2026-03-14')", {}) == 10.0


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("add_duration('2026-01-31', 'P1M')", "2026-02-28"),
        ("add_duration('2026-01-01', 'P30D')", "2026-01-31"),
        ("add_duration('2026-01-01', 'PT12H')", "2026-01-01T12:00:00Z"),
        ("add_duration('2026-01-01T09:00:00Z', 'P1DT1H')", "2026-01-02T10:00:00Z"),
        ("add_duration('2026-01-01T09:00:00+02:00', 'PT30M')", "2026-01-01T09:30:00+02:00"),
        ("add_duration('2026-03-01', '-P1D')", "2026-02-28"),
        ("add_duration('2024-02-29', 'P1Y')", "2025-02-28"),
        ("days_between('2026-01-01T00:00:00Z', '2026-01-02T12:00:00Z')", 1.5),
        ("duration_seconds('PT4H')", 14400.0),
        ("duration_seconds('P1W')", 604800.0),
        ("parse_datetime('2026-01-01T09:00:00Z').hour", 9),
        ("parse_datetime('2026-01-01').isoformat()", "2026-01-01T00:00:00+00:00"),
        ("_empty(None) and _empty('') and _empty([]) and _empty({})", True),
        ("_empty(0) or _empty('x') or _empty([0])", False),
    ],
)
def test_date_and_empty_helpers(source: str, expected: object) -> None:
    assert evaluate(source, {}) == expected


def test_duration_seconds_refuses_calendar_units() -> None:
    with pytest.raises(ScriptError, match="no fixed length"):
        evaluate("duration_seconds('P1M')", {})


# --- SpiffWorkflow integration -----------------------------------------------------

_BPMN_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="defs" targetNamespace="http://example.com">\n'
)

GATEWAY_BPMN = _BPMN_HEAD + """
  <bpmn:process id="triage" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="gw" />
    <bpmn:exclusiveGateway id="gw" default="to_normal">
      <bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>to_big</bpmn:outgoing>
      <bpmn:outgoing>to_urgent</bpmn:outgoing>
      <bpmn:outgoing>to_normal</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="to_big" sourceRef="gw" targetRef="big">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">${amount gt 100 &amp;&amp; !urgent}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="to_urgent" sourceRef="gw" targetRef="urgent_path">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">${urgent eq true}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="to_normal" sourceRef="gw" targetRef="normal" />
    <bpmn:scriptTask id="big" scriptFormat="python">
      <bpmn:incoming>to_big</bpmn:incoming><bpmn:outgoing>e1</bpmn:outgoing>
      <bpmn:script>path = 'big'</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:scriptTask id="urgent_path" scriptFormat="python">
      <bpmn:incoming>to_urgent</bpmn:incoming><bpmn:outgoing>e2</bpmn:outgoing>
      <bpmn:script>path = 'urgent'</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:scriptTask id="normal" scriptFormat="python">
      <bpmn:incoming>to_normal</bpmn:incoming><bpmn:outgoing>e3</bpmn:outgoing>
      <bpmn:script>path = 'normal'
helper = lambda v: v
fee = round(amount * 0.1, 2)</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>e1</bpmn:incoming><bpmn:incoming>e2</bpmn:incoming>
      <bpmn:incoming>e3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="e1" sourceRef="big" targetRef="end" />
    <bpmn:sequenceFlow id="e2" sourceRef="urgent_path" targetRef="end" />
    <bpmn:sequenceFlow id="e3" sourceRef="normal" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""

FAILING_SCRIPT_BPMN = _BPMN_HEAD + """
  <bpmn:process id="failing" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="calc" />
    <bpmn:scriptTask id="calc" name="Calculate" scriptFormat="python">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>a = 1
b = a + 1
c = b + undefined_thing</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="calc" targetRef="end" />
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""

DECISION_BPMN = _BPMN_HEAD + """
  <bpmn:process id="classify" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="decide" />
    <bpmn:businessRuleTask id="decide" camunda:decisionRef="classify_incident">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:businessRuleTask>
    <bpmn:sequenceFlow id="f2" sourceRef="decide" targetRef="end" />
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""

DECISION_DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="dmn" name="DRD" namespace="http://camunda.org/schema/1.0/dmn">
  <decision id="classify_incident" name="Classify incident">
    <decisionTable id="table" hitPolicy="FIRST">
      <input id="in_sev" label="Severity">
        <inputExpression id="in_sev_expr" typeRef="string"><text>severity</text></inputExpression>
      </input>
      <input id="in_users" label="Affected users">
        <inputExpression id="in_users_expr" typeRef="integer"><text>affected_users</text></inputExpression>
      </input>
      <output id="out_class" label="Class" name="incident_class" typeRef="string" />
      <rule id="r1">
        <inputEntry id="r1a"><text>"critical"</text></inputEntry>
        <inputEntry id="r1b"><text>-</text></inputEntry>
        <outputEntry id="r1o"><text>"major"</text></outputEntry>
      </rule>
      <rule id="r2">
        <inputEntry id="r2a"><text></text></inputEntry>
        <inputEntry id="r2b"><text>&gt;= 3</text></inputEntry>
        <outputEntry id="r2o"><text>"significant"</text></outputEntry>
      </rule>
      <rule id="r3">
        <inputEntry id="r3a"><text>-</text></inputEntry>
        <inputEntry id="r3b"><text>-</text></inputEntry>
        <outputEntry id="r3o"><text>"minor"</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>
"""


def _workflow(tmp_path: Path, process_id: str, bpmn: str, dmn: str | None = None) -> BpmnWorkflow:
    parser = CamundaParser()
    bpmn_file = tmp_path / f"{process_id}.bpmn"
    bpmn_file.write_text(bpmn)
    parser.add_bpmn_file(str(bpmn_file))
    if dmn is not None:
        dmn_file = tmp_path / f"{process_id}.dmn"
        dmn_file.write_text(dmn)
        parser.add_dmn_file(str(dmn_file))
    spec = parser.get_spec(process_id)
    subprocess_specs = parser.get_subprocess_specs(process_id)
    return BpmnWorkflow(spec, subprocess_specs, script_engine=SandboxScriptEngine())


def _run(workflow: BpmnWorkflow, data: dict) -> dict:
    start = workflow.get_tasks(spec_name="start")[0]
    start.data.update(data)
    workflow.do_engine_steps()
    assert workflow.is_completed()
    return workflow.last_task.data


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"amount": 150, "urgent": False}, "big"),
        ({"amount": 150, "urgent": True}, "urgent"),
        ({"amount": 50, "urgent": False}, "normal"),
    ],
)
def test_gateway_with_juel_conditions(tmp_path: Path, data: dict, path: str) -> None:
    result = _run(_workflow(tmp_path, "triage", GATEWAY_BPMN), data)
    assert result["path"] == path
    assert "helper" not in result  # lambdas never reach task data


def test_script_task_error_becomes_workflow_task_exception(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path, "failing", FAILING_SCRIPT_BPMN)
    with pytest.raises(WorkflowTaskException) as info:
        workflow.do_engine_steps()
    err = info.value
    assert err.line_number == 3
    assert err.error_line == "c = b + undefined_thing"
    assert "NameError: name 'undefined_thing' is not defined (line 3)" in str(err)
    assert err.task.task_spec.name == "calc"


def test_refused_script_becomes_workflow_task_exception(tmp_path: Path) -> None:
    bpmn = FAILING_SCRIPT_BPMN.replace("c = b + undefined_thing", "import os")
    workflow = _workflow(tmp_path, "failing", bpmn)
    with pytest.raises(WorkflowTaskException, match="line 3: imports are not allowed") as info:
        workflow.do_engine_steps()
    assert info.value.line_number == 3


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"severity": "critical", "affected_users": 1}, "major"),
        ({"severity": "low", "affected_users": 5}, "significant"),
        ({"severity": "low", "affected_users": 1}, "minor"),
    ],
)
def test_dmn_table_through_sandbox(tmp_path: Path, data: dict, expected: str) -> None:
    result = _run(_workflow(tmp_path, "classify", DECISION_BPMN, DECISION_DMN), data)
    assert result["incident_class"] == expected


def test_validate_raises_syntax_error_for_dmn_operator_entries() -> None:
    engine = SandboxScriptEngine()
    with pytest.raises(SyntaxError):
        engine.validate(">= 3")
    engine.validate("v >= 3")
    engine.validate("${a gt 1}")


TIMER_BPMN = _BPMN_HEAD + """
  <bpmn:process id="waiting" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait" />
    <bpmn:intermediateCatchEvent id="wait">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:timerEventDefinition id="t1"><bpmn:timeDate>2020-01-01T00:00:00Z</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="end" />
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def test_plain_iso_timer_text_is_accepted(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path, "waiting", TIMER_BPMN)
    workflow.do_engine_steps()
    workflow.refresh_timers()
    workflow.do_engine_steps()
    assert workflow.is_completed()


# --- hard limits (a worker process) ----------------------------------------------


@pytest.fixture
def limits():
    """Small limits so the tests are quick; restored afterwards."""
    configure(Settings(sandbox_time_limit=0.5, sandbox_memory_mb=64, sandbox_max_data_bytes=100_000,
                       sandbox_max_log_chars=40))
    try:
        yield
    finally:
        reset()


SHARED = "a = [0] * 999\nb = [a] * 999\n"


@pytest.mark.parametrize(
    ("script", "message"),
    [
        # passes every per-step check, 10^8 items once expanded
        (SHARED + "c = [b] * 99", r"task data too large: it would take more than 100000 bytes when stored, "
                                  r"reached at variable 'b' \(limit PDCAFLOW_SANDBOX_MAX_DATA_BYTES"),
        ("lookup = {}.fromkeys(range(10 ** 5), [0] * 999999)", "task data too large: .* at variable 'lookup'"),
        # one C call: only the worker's hard limits stop it
        (SHARED + "n = len(str([b] * 99))", r"time limit of 0.5s exceeded .*stopped|memory limit of 64 MB"),
        (SHARED + "n = len(sum(sum([b] * 99, []), []))", r"time limit of 0.5s exceeded|memory limit of 64 MB"),
        ("blocks = [[i] * 999999 for i in range(300)]", r"memory limit of 64 MB exceeded "
                                                         r"\(PDCAFLOW_SANDBOX_MEMORY_MB\) \(line 1\)"),
        ("x = 2 ** 20000", "task data cannot be stored .*'x'.*4300 digits"),
    ],
)
def test_script_hard_limits(limits, script: str, message: str) -> None:
    data = {"keep": 1}
    started = time.monotonic()
    with pytest.raises(ScriptError, match=message):
        execute(script, data)
    assert time.monotonic() - started < 3
    assert data == {"keep": 1}  # a failed script changes nothing
    execute("y = keep + 1", data)  # the next run gets a working worker
    assert data == {"keep": 1, "y": 2}


def test_expression_hard_limits(limits) -> None:
    with pytest.raises(ScriptError, match="time limit of 0.5s|memory limit of 64 MB"):
        evaluate("len(str([[[0] * 999] * 999 for _ in range(99)]))", {})
    with pytest.raises(ScriptError, match=r"the expression's result too large"):
        evaluate("[[[0] * 999] * 999 for _ in range(99)]", {})
    assert evaluate("sum(xs) * 2", {"xs": [1, 2]}) == 6


def test_total_task_data_is_bounded(limits) -> None:
    # each variable is under the limit; together they are not
    data = {"old": "x" * 60_000}
    with pytest.raises(ScriptError, match="task data too large: .* at variable"):
        execute("new = 'y' * 60000", data)
    assert list(data) == ["old"]
    with pytest.raises(ScriptError, match="task data too large"):
        check_data_size({"shared": [["z" * 1000] * 1000] * 1})


def test_only_mentioned_variables_travel_but_all_writes_come_back() -> None:
    data = {"order": {"lines": []}, "untouched": {"big": "x" * 1000}, "gone": 1}
    execute("order['lines'].append(1)\ndel gone\nfresh = len(order['lines'])", data)
    assert data == {"order": {"lines": [1]}, "untouched": {"big": "x" * 1000}, "fresh": 1}


def test_concurrent_callers_each_get_a_worker() -> None:
    def run(i: int) -> int:
        return evaluate("sum(v for v in range(n))", {"n": i})

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(run, range(40))) == [sum(range(i)) for i in range(40)]


class Execution(DataBound):
    """A stand-in for the `execution` object of Camunda expressions (the DataBound contract)."""

    def getVariable(self, name: str) -> object:  # noqa: N802 - Camunda's name
        return self._variables.get(name)

    def setVariable(self, name: str, value: object) -> None:  # noqa: N802
        self._variables[name] = value

    def setAssignee(self, user: str) -> None:  # noqa: N802 - like task.setAssignee in a task listener
        self.assignee = user

    @property
    def bound_names(self) -> list[str]:
        # read without a call: still evaluated where the object is bound
        return sorted(k for k in self._variables if not k.startswith("_") and k != "execution")


def test_data_bound_objects_read_and_write_variables_by_name() -> None:
    data = {"amount": 5, "other": "o"}
    execute("execution.setVariable('doubled', execution.getVariable('amount') * 2)", data,
            {"execution": Execution()})
    assert data == {"amount": 5, "other": "o", "doubled": 10}
    assert evaluate("execution.getVariable('other')", data, {"execution": Execution()}) == "o"
    assert evaluate("execution.bound_names", data, {"execution": Execution()}) == ["amount", "doubled", "other"]
    execution = Execution()
    execute("execution.setAssignee('rita')", data, {"execution": execution})
    assert execution.assignee == "rita"  # recorded by the worker's copy, taken over by the caller's object
    assert "_variables" not in vars(execution)


class Recorder(DataBound):
    """Like Camunda's `task` of a task listener: writes into the engine's plain context dict."""

    def __init__(self, context: dict) -> None:
        self.context = context

    def setAssignee(self, user: str) -> None:  # noqa: N802
        self.context.setdefault("task", {})["assignee"] = user

    def setVariable(self, name: str, value: object) -> None:  # noqa: N802
        self._variables[name] = value


def test_engine_context_entries_travel_and_come_back() -> None:
    attributes: dict = {"name": "Review"}
    context: dict = {"instance_id": "i-1", "task": attributes}
    external = {"_engine_context_": context, "task": Recorder(context)}
    data = {"amount": 1}
    execute("task.setAssignee('rita')", data, external)
    # updated in place, nested dicts included: the caller reads the attributes dict it passed
    assert attributes == {"name": "Review", "assignee": "rita"}
    assert context == {"instance_id": "i-1", "task": attributes}
    # an expression's writes through an engine object reach the data (Camunda's ${execution.setVariable})
    assert evaluate("task.setVariable('flag', True)", data, external) is None
    assert data == {"amount": 1, "flag": True}


def test_only_what_the_code_needs_is_sent() -> None:
    from engine.sandbox import _inputs
    from engine.sandbox_compile import compiled_expression as _expression

    data = {"a": 1, "b": 2}
    assert _inputs(_expression("a + 1"), data, {}) == ({"a": 1}, {}, False)
    # an engine context and a name nothing provides (built from the context, e.g. `execution`): all data
    assert _inputs(_expression("execution.getVariable('b')"), data, {"_ctx": {}}) == (data, {"_ctx": {}}, True)
    assert _inputs(_expression("a + 1"), data, {"_ctx": {}}) == ({"a": 1}, {"_ctx": {}}, False)


# --- print() ------------------------------------------------------------------------


def test_print_is_captured_for_the_instance_log(limits) -> None:
    data: dict = {}
    with captured_output() as printed:
        execute("x = 1\nprint('x is', x, sep=': ')\nprint([1, 2], end='!')", data)
        execute("print('a' * 100)", data)
    assert [p.text for p in printed] == ["x is: 1\n[1, 2]!", "a" * 40 + "\n[output truncated]"]
    assert data == {"x": 1}
    execute("print('nobody listens')", data)  # without a capture the text is dropped


def test_print_before_a_failure_is_kept() -> None:
    with captured_output() as printed, pytest.raises(ScriptError, match="ZeroDivisionError"):
        execute("print('about to fail')\nx = 1 / 0", {})
    assert [p.text for p in printed] == ["about to fail\n"]


def test_print_refusals() -> None:
    with pytest.raises(SandboxError, match="only available in scripts"):
        compile_expression("print(1)")
    with pytest.raises(ScriptError, match="print\\(file=...\\) is not available"):
        execute("print('x', file=None or 1)", {})


# --- settings ----------------------------------------------------------------------


def test_sandbox_limits_come_from_settings() -> None:
    parsed = Settings.from_env({"PDCAFLOW_SANDBOX_TIME_LIMIT": "1.5", "PDCAFLOW_SANDBOX_MEMORY_MB": "128",
                                "PDCAFLOW_SANDBOX_MAX_DATA_BYTES": "5000"})
    assert (parsed.sandbox_time_limit, parsed.sandbox_memory_mb, parsed.sandbox_max_data_bytes) == (1.5, 128, 5000)
    assert Settings().sandbox_time_limit == 2.0
    with pytest.raises(SettingsError, match="PDCAFLOW_SANDBOX_MEMORY_MB must be a positive whole number"):
        Settings.from_env({"PDCAFLOW_SANDBOX_MEMORY_MB": "lots"})


def test_a_dead_idle_worker_is_replaced() -> None:
    from engine import sandbox_worker

    execute("x = 1", {})
    for worker in list(sandbox_worker.POOL.idle):
        worker.process.kill()
        worker.process.wait()
    data: dict = {}
    execute("x = 2", data)
    assert data == {"x": 2}
