"""Deploy-time checks on the XML, before SpiffWorkflow sees it.

Everything that would fail at run time is found here, with the file line and the element, so a
quality lead fixes the model instead of discovering the problem on a customer's complaint.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Iterator

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator

from engine.bpmn_parser import CAMUNDA
from engine.errors import Problem
from engine.expressions import to_python
from engine.external_task_model import deploy_problem as external_task_problem
from engine.external_task_model import is_external
from engine.sandbox import _FORBIDDEN_BUILTINS, SandboxError, compile_expression, compile_script

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
B = "{" + BPMN_NS + "}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

# Elements with no executable meaning here: refused with the reason, never ignored silently.
UNSUPPORTED = {
    "complexGateway": "complex gateways are not supported; use exclusive, inclusive or parallel gateways",
    "dataStoreReference": "data stores are not supported; keep data in process variables",
    "dataStore": "data stores are not supported; keep data in process variables",
    "linkEventDefinition": "link events are not supported; connect the flow with a sequence flow",
    "compensateEventDefinition": "compensation events are not supported",
}
CAMUNDA_UNSUPPORTED = {
    "executionListener": "execution listeners run Java code and are not supported; use a script task",
    "taskListener": "task listeners run Java code and are not supported; use a script task",
    "inputOutput": "input/output mappings are not supported; use a script task to map variables",
    "connector": "connectors are not supported",
}
FLOW_NODES = {
    "startEvent", "endEvent", "userTask", "task", "manualTask", "scriptTask", "businessRuleTask",
    "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "subProcess",
    "callActivity", "transaction", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "receiveTask", "adHocSubProcess", "serviceTask", "sendTask", "complexGateway",
}
EXPRESSION_RE = re.compile(r"\$\{.*\}", re.S)


def local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def describe(el: etree._Element) -> str:
    name = el.get("name")
    ident = el.get("id")
    text = local(el.tag)
    if ident:
        text += f" {ident}"
    if name:
        text += f' "{name}"'
    return text


class _Collector:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.problems: list[Problem] = []

    def add(self, el: etree._Element, message: str, element: str | None = None) -> None:
        self.problems.append(Problem(self.filename, el.sourceline, element or describe(el), message))

    def compile(self, el: etree._Element, source: str | None, what: str, owner: etree._Element | None = None,
                compiler: Callable[[str], object] | None = None) -> None:
        compiler = compiler or _compile_expression
        if source is None or not source.strip():
            return
        try:
            compiler(source)
            unavailable = _unavailable_calls(source if compiler is compile_script else to_python(source),
                                             "exec" if compiler is compile_script else "eval")
        except SandboxError as exc:
            self.problems.append(Problem(self.filename, el.sourceline, describe(owner if owner is not None else el),
                                         f"{what} does not compile: {exc}"))
            return
        except Exception as exc:  # noqa: BLE001 - any failure to compile is the model's problem, not a crash
            self.problems.append(Problem(self.filename, el.sourceline, describe(owner if owner is not None else el),
                                         f"{what} does not compile: {type(exc).__name__}: {exc}"))
            return
        if unavailable:
            self.problems.append(Problem(
                self.filename, el.sourceline, describe(owner if owner is not None else el),
                f"{what} calls {', '.join(n + '()' for n in unavailable)}, which the sandbox does not offer "
                "(no I/O, no introspection)"))


def _unavailable_calls(python_source: str, mode: str) -> list[str]:
    """Calls of builtins the sandbox deliberately lacks (open, getattr, ...), unless the model defines the name."""
    try:
        tree = ast.parse(python_source, mode=mode)
    except SyntaxError:
        return []
    assigned = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    assigned |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.Lambda) for a in n.args.args}
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return sorted((called & _FORBIDDEN_BUILTINS) - assigned)


def _processes(root: etree._Element) -> Iterator[etree._Element]:
    yield from root.iter(B + "process")


def _lane_members(process: etree._Element) -> set[str]:
    return {ref.text.strip() for ref in process.iter(B + "flowNodeRef") if ref.text}


def check_bpmn(root: etree._Element, filename: str) -> list[Problem]:
    out = _Collector(filename)
    if local(root.tag) != "definitions" or etree.QName(root.tag).namespace != BPMN_NS:
        out.add(root, "not a BPMN 2.0 document (expected bpmn:definitions)", "definitions")
        return out.problems
    _check_schema(root, out)
    processes = list(_processes(root))
    executable = [p for p in processes if p.get("isExecutable", "false").lower() == "true"]
    if not executable:
        out.add(processes[0] if processes else root,
                'no executable process: set isExecutable="true" on the process to run', "process")
    for el in root.iter(etree.Element):
        name = local(el.tag)
        if el.tag.startswith(B) and name in ("serviceTask", "sendTask", "businessRuleTask"):
            problem = external_task_problem(el)  # external tasks run; Java delegates do not
            if problem:
                out.add(el, problem)
        elif el.tag.startswith(B) and name in UNSUPPORTED:
            owner = el.getparent() if name.endswith("EventDefinition") else el
            out.add(owner, UNSUPPORTED[name])
        elif el.tag.startswith(CAMUNDA) and name in CAMUNDA_UNSUPPORTED:
            owner = el.getparent().getparent() if el.getparent() is not None else el
            out.add(el, CAMUNDA_UNSUPPORTED[name], describe(owner))
    for process in executable:
        _check_process(process, out)
    return out.problems


@functools.lru_cache(maxsize=1)
def _bpmn_schema() -> etree.XMLSchema:
    # SpiffWorkflow ships the OMG BPMN 2.0 XSDs; loading them takes a moment, so once per process.
    return BpmnValidator().validator


_SCHEMA_ELEMENT = re.compile(r"Element '\{[^}]*\}(\w+)'(?:, attribute '([^']+)')?: ")


def _check_schema(root: etree._Element, out: _Collector) -> None:
    """BPMN 2.0 schema validation; extension attributes/elements (camunda:*) are allowed by the XSD."""
    schema = _bpmn_schema()
    if schema.validate(root):
        return
    for error in list(schema.error_log)[:20]:
        match = _SCHEMA_ELEMENT.match(error.message)
        element = match.group(1) if match else "definitions"
        message = _SCHEMA_ELEMENT.sub("", error.message).replace("{" + BPMN_NS + "}", "bpmn:")
        if match and match.group(2):
            message = f"attribute {match.group(2)}: {message}"
        out.problems.append(Problem(out.filename, error.line, element, f"not valid BPMN 2.0: {message}"))


# SpiffWorkflow names its own control tasks like this; a BPMN element with such an id would be
# silently merged with them and the process could never start.
def _reserved_ids(process_id: str) -> set[str]:
    return {"Start", "End", "Root", f"{process_id}.EndJoin", "StartEventSplit", "StartEventJoin"}


def _check_process(process: etree._Element, out: _Collector) -> None:
    lanes = _lane_members(process)
    reserved = _reserved_ids(process.get("id") or "")
    for el in process.iter(etree.Element):
        if el.get("id") in reserved:
            out.add(el, f"the id '{el.get('id')}' is reserved by the engine; rename the element")
    for el in process.iter(etree.Element):
        name = local(el.tag)
        if name == "userTask":
            _check_user_task(el, lanes, out)
        elif name == "scriptTask":
            fmt = (el.get("scriptFormat") or "python").lower()
            script = el.find(B + "script")
            if fmt not in ("python", "py"):
                out.add(el, f'script format "{fmt}" is not supported; write the script in (sandboxed) Python')
            elif script is None or not (script.text or "").strip():
                out.add(el, "script task has no script")
            else:
                out.compile(script, script.text, "script", el, compile_script)
        elif name == "businessRuleTask" and not is_external(el):
            if not el.get(CAMUNDA + "decisionRef"):
                out.add(el, "business rule task needs camunda:decisionRef naming a DMN decision")
        elif name == "callActivity":
            if not el.get("calledElement"):
                out.add(el, "call activity needs calledElement naming the process to call")
        elif name == "conditionExpression":
            flow = el.getparent()
            out.compile(el, el.text, "condition", flow)
        elif name in ("timeDuration", "timeDate", "timeCycle"):
            event = el.getparent().getparent()
            if not (el.text or "").strip():
                out.add(event, f"timer has an empty {name}")
            else:
                out.compile(el, el.text, "timer expression", event)
        elif name in ("loopCardinality", "completionCondition", "loopCondition"):
            out.compile(el, el.text, name, el.getparent().getparent())
        elif name == "sequenceFlow":
            _check_flow(el, process, out)
    if not process.findall(B + "startEvent"):
        out.add(process, "the process has no start event")


def _check_flow(flow: etree._Element, process: etree._Element, out: _Collector) -> None:
    container = flow.getparent()
    ids = {child.get("id") for child in container if child.get("id")}
    for attr in ("sourceRef", "targetRef"):
        ref = flow.get(attr)
        if not ref or ref not in ids:
            out.add(flow, f"{attr} '{ref}' does not name an element of this process")


def _check_user_task(task: etree._Element, lanes: set[str], out: _Collector) -> None:
    assignee = task.get(CAMUNDA + "assignee")
    groups = task.get(CAMUNDA + "candidateGroups")
    if not (assignee or groups or task.get("id") in lanes):
        out.add(task, "nobody can be assigned this task: set camunda:assignee, camunda:candidateGroups "
                      "or put it in a lane")
    for attr in ("assignee", "candidateGroups", "dueDate", "followUpDate", "priority"):
        value = task.get(CAMUNDA + attr)
        if value and "${" in value:
            out.compile(task, value, f"camunda:{attr}")
    for field in task.iter(CAMUNDA + "formField"):
        field_type = field.get("type") or "string"
        if field_type not in ("string", "long", "boolean", "date", "enum"):
            out.add(field, f'form field type "{field_type}" is not supported (string, long, boolean, date, enum)',
                    f"formField {field.get('id')}")
        if not field.get("id"):
            out.add(field, "form field has no id", "formField")


def check_dmn(root: etree._Element, filename: str) -> list[Problem]:
    out = _Collector(filename)
    if local(root.tag) != "definitions":
        out.add(root, "not a DMN document (expected definitions)", "definitions")
        return out.problems
    decisions = [el for el in root if local(el.tag) == "decision"]
    if not decisions:
        out.add(root, "the DMN file has no decision", "definitions")
    for decision in decisions:
        tables = [el for el in decision if local(el.tag) == "decisionTable"]
        if not tables:
            kinds = ", ".join(sorted({local(el.tag) for el in decision if local(el.tag) not in
                                      ("extensionElements", "documentation", "variable")})) or "nothing"
            out.add(decision, f"only decision tables can be evaluated; this decision contains {kinds}")
        elif len(tables) > 1:
            out.add(decision, "a decision may hold one decision table")
        for req in decision.iter(etree.Element):
            if local(req.tag) == "requiredDecision":
                out.add(decision, "decision requirements (one decision feeding another) are not supported; "
                                  "combine the rules into one table or call the decisions from separate tasks")
                break
        for table in tables:
            _check_table(table, out)
    return out.problems


def _check_table(table: etree._Element, out: _Collector) -> None:
    for el in table.iter(etree.Element):
        name = local(el.tag)
        if name == "inputExpression":
            text = el.findtext("{*}text")
            out.compile(el, text, "input expression", el.getparent())
        elif name == "outputEntry":
            text = el.findtext("{*}text")
            if text and text.strip() not in ("", "-"):
                out.compile(el, text, "output entry", el.getparent())
        elif name == "inputEntry":
            text = (el.findtext("{*}text") or "").strip()
            if text and text != "-" and not _unary_test_compiles(text):
                out.add(el, f"input entry '{text}' is not a valid test", f"rule {el.getparent().get('id')}")


def _compile_expression(source: str) -> object:
    return compile_expression(to_python(source))


def _unary_test_compiles(text: str) -> bool:
    candidates = [f"value {text}", f"value == ({text})", f"value in ({text},)", f"value in {text}"]
    for candidate in candidates:
        try:
            _compile_expression(candidate)
            return True
        except SandboxError:
            continue
    return False
