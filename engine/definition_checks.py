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

from engine import cron
from engine.bpmn_parser import CAMUNDA
from engine.camunda_extensions import connector_element, connector_id
from engine.dmn.checks import problems_of as dmn_problems
from engine.dmn.model import DmnModelError, read_definitions
from engine.errors import WARNING, Problem
from engine.expressions import template_parts, to_python
from engine.external_task_model import CONNECTOR_TOPICS, HTTP_METHODS, JAVA_ATTRIBUTES, is_external
from engine.external_task_model import deploy_problem as external_task_problem
from engine.sandbox import SandboxError, compile_expression, compile_script
from engine.sandbox_compile import FORBIDDEN_BUILTINS
from engine.sandbox_helpers import unknown_builtin_calls

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
B = "{" + BPMN_NS + "}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

# The rule tables. Two severities, as Camunda users expect from a deploy:
# - ERROR (UNSUPPORTED, and the rule functions below that call `out.add`): the
#   model cannot run here; the file is refused, each problem with FILE:LINE, element and reason;
# - WARNING (IGNORED, CAMUNDA_IGNORED, and `out.warn`): the element deploys but is ignored or
#   defaulted at run time (Camunda ignores it too, or it only matters to a Java engine); printed as
#   `FILE:LINE: ELEMENT: warning: message`, the file deploys.
# Elements with no executable meaning here: refused with the reason, never ignored silently.
UNSUPPORTED = {
    "complexGateway": "complex gateways are not supported; use exclusive, inclusive or parallel gateways",
    "compensateEventDefinition": "compensation is not supported: PDCA Flow cannot undo completed activities; "
                                 "model the corrective steps as ordinary tasks on an error path",
}
# Elements with no effect at run time: deployed with a warning naming them.
IGNORED = {
    "dataStore": "data stores are ignored at run time (as in Camunda); keep the data in process variables",
    "dataStoreReference": "data stores are ignored at run time (as in Camunda); keep the data in process variables",
}
CAMUNDA_IGNORED = {
    "failedJobRetryTimeCycle": "camunda:failedJobRetryTimeCycle is ignored; a failing step becomes an incident "
                               "after the engine's own retries (PDCAFLOW_TIMER_MAX_ATTEMPTS)",
}
LISTENERS = ("executionListener", "taskListener")
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
        """An error: the file cannot run and is refused."""
        self.problems.append(Problem(self.filename, el.sourceline, element or describe(el), message))

    def warn(self, el: etree._Element, message: str, element: str | None = None) -> None:
        """A warning: the file deploys; the element is ignored or defaulted at run time."""
        self.problems.append(Problem(self.filename, el.sourceline, element or describe(el), message, WARNING))

    def compile(self, el: etree._Element, source: str | None, what: str, owner: etree._Element | None = None,
                compiler: Callable[[str], object] | None = None) -> None:
        compiler = compiler or _compile_expression
        if source is None or not source.strip():
            return
        script = compiler in (compile_script, _listener_script)
        try:
            compiler(source)
            unavailable = _unavailable_calls(source if script else to_python(source), "exec" if script else "eval",
                                             task_available=compiler in (_listener_script, _listener_expression))
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


def _listener_script(source: str) -> object:
    return compile_script(source)


def _listener_expression(source: str) -> object:
    return compile_expression(to_python(source))


def _unavailable_calls(python_source: str, mode: str, task_available: bool = False) -> list[str]:
    """Calls of builtins the sandbox deliberately lacks (open, getattr, ...), unless the model defines
    the name, and of methods Camunda's built-ins do not have here (execution.fooBar()); `task` exists
    only in task listeners."""
    try:
        tree = ast.parse(python_source, mode=mode)
    except SyntaxError:
        return []
    unknown = unknown_builtin_calls(tree)
    if unknown:
        raise SandboxError(f"{', '.join(n + '()' for n in unknown)} is not a method of the built-in "
                           "(execution, task, dateTime() and S() offer Camunda's usual methods)")
    if not task_available and "task" not in {n.id for n in ast.walk(tree)
                                             if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}:
        calls = sorted({f"task.{n.func.attr}()" for n in ast.walk(tree) if isinstance(n, ast.Call)
                        and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
                        and n.func.value.id == "task"})
        if calls:
            raise SandboxError(f"{', '.join(calls)}: `task` is available only in task listeners; "
                               "use execution here")
    assigned = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    assigned |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.Lambda) for a in n.args.args}
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return sorted((called & FORBIDDEN_BUILTINS) - assigned)


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
        if el.tag.startswith(B) and name in UNSUPPORTED:
            owner = el.getparent() if name.endswith("EventDefinition") else el
            out.add(owner, UNSUPPORTED[name])
        elif el.tag.startswith(B) and name in IGNORED:
            out.warn(el, IGNORED[name])
        elif el.tag.startswith(CAMUNDA) and name in CAMUNDA_IGNORED:
            out.warn(el, CAMUNDA_IGNORED[name], describe(_extension_owner(el)))
        elif el.tag.startswith(CAMUNDA) and name in LISTENERS:
            _check_listener(el, out)
        elif el.tag == CAMUNDA + "connector":
            _check_connector(el, out)
        elif el.tag.startswith(CAMUNDA) and name in ("inputParameter", "outputParameter", "in", "out"):
            _check_mapping(el, out)
    for process in executable:
        _check_process(process, out)
    return out.problems


def _extension_owner(el: etree._Element) -> etree._Element:
    """The BPMN element a camunda:* extension element belongs to (it sits in its extensionElements)."""
    owner = el
    while owner.getparent() is not None and not (owner.tag.startswith(B) and local(owner.tag) != "extensionElements"):
        owner = owner.getparent()
    return owner


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
            _check_script_task(el, out)
        elif name in ("serviceTask", "sendTask"):
            _check_service_task(el, out)
        elif name == "businessRuleTask":
            if not el.get(CAMUNDA + "decisionRef"):
                _check_service_task(el, out)
        elif name == "callActivity":
            if not el.get("calledElement"):
                out.add(el, "call activity needs calledElement naming the process to call")
        elif name == "conditionExpression":
            flow = el.getparent()
            if not (el.text or "").strip() and not el.get(CAMUNDA + "resource"):
                # Camunda Modeler writes one when a flow is made conditional and left blank
                out.warn(flow, "the condition is empty, so this flow counts as having none (Camunda would fail "
                               "when it evaluates it); write the condition or remove it")
            out.compile(el, el.text, "condition", flow)
        elif name in ("timeDuration", "timeDate", "timeCycle"):
            event = el.getparent().getparent()
            if not (el.text or "").strip():
                out.add(event, f"timer has an empty {name}")
            elif name == "timeCycle" and cron.is_cron(el.text):
                try:
                    cron.trigger(el.text)
                except cron.CronError as exc:
                    out.add(el, f"timeCycle: {exc}", describe(event))
            else:
                out.compile(el, el.text, "timer expression", event)
        elif name in ("loopCardinality", "completionCondition", "loopCondition"):
            out.compile(el, el.text, name, el.getparent().getparent())
        elif name == "multiInstanceLoopCharacteristics" and "${" in (el.get(CAMUNDA + "collection") or ""):
            out.compile(el, el.get(CAMUNDA + "collection"), "camunda:collection", el.getparent())
        elif name == "sequenceFlow":
            _check_flow(el, process, out)
    if not process.findall(B + "startEvent"):
        out.add(process, "the process has no start event")
    _check_links(process, out)


def _owner(el: etree._Element) -> etree._Element:
    """The BPMN element a camunda:* extension element belongs to."""
    while el.getparent() is not None and not el.tag.startswith(B):
        el = el.getparent()
    parent = el.getparent() if local(el.tag) == "extensionElements" else None
    return parent if parent is not None else el


def _check_listener(listener: etree._Element, out: _Collector) -> None:
    """Listeners run as sandboxed Python scripts; Java classes, expressions and other languages cannot run."""
    kind = "task listener" if local(listener.tag) == "taskListener" else "execution listener"
    owner = _owner(listener)
    script = listener.find(CAMUNDA + "script")
    is_task = kind == "task listener"  # `task` exists in task listeners only
    if listener.get("expression") and not listener.get("class") and not listener.get("delegateExpression"):
        out.compile(listener, listener.get("expression"), kind, owner,
                    _listener_expression if is_task else _compile_expression)
        return
    for attr in ("class", "delegateExpression"):
        if listener.get(attr):
            out.add(listener, f'{kind} with {attr}="{listener.get(attr)}" runs Java code, which PDCA Flow cannot run; '
                              'write it as <camunda:script scriptFormat="python">', describe(owner))
            return
    if script is None:
        out.add(listener, f"{kind} has no script", describe(owner))
        return
    fmt = (script.get("scriptFormat") or "").lower()
    if fmt not in ("python", "py"):
        out.add(listener, f'{kind} script format "{fmt or "none"}" is not supported; write it in (sandboxed) Python',
                describe(owner))
    elif script.get("resource"):
        out.add(listener, f"{kind} script resources are not supported; write the script inline", describe(owner))
    else:
        out.compile(script, script.text, kind, owner, _listener_script if is_task else compile_script)


def _check_mapping(el: etree._Element, out: _Collector) -> None:
    """camunda:inputParameter/outputParameter values and camunda:in/out sourceExpressions compile."""
    owner = _owner(el)
    what = f"camunda:{local(el.tag)} '{el.get('name') or el.get('target') or el.get('source') or ''}'"
    if local(el.tag) in ("in", "out"):
        if el.get("sourceExpression"):
            out.compile(el, el.get("sourceExpression"), what, owner)
        if not (el.get("variables") == "all" or el.get("businessKey") or
                ((el.get("source") or el.get("sourceExpression")) and el.get("target"))):
            out.add(el, f'{what} needs source (or sourceExpression) and target, variables="all" or businessKey',
                    describe(owner))
        return
    for value in el.iter(etree.Element):
        if value.tag == CAMUNDA + "script":
            fmt = (value.get("scriptFormat") or "").lower()
            if fmt not in ("python", "py"):
                out.add(value, f'{what}: script format "{fmt or "none"}" cannot run: Camunda runs it on the JVM, PDCA Flow '
                               'runs scripts as sandboxed Python; rewrite it in Python (scriptFormat="python")',
                        describe(owner))
            else:
                out.compile(value, value.text, what, owner, compile_script)
        elif len(value) == 0 and value.text and EXPRESSION_RE.search(value.text.strip()):
            parts = template_parts(value.text)  # composite text: each ${...} in it compiles
            for source in [p for is_expr, p in parts if is_expr] if parts else [value.text.strip()]:
                out.compile(value, source, what, owner)


def _check_flow(flow: etree._Element, process: etree._Element, out: _Collector) -> None:
    container = flow.getparent()
    ids = {child.get("id") for child in container if child.get("id")}
    for attr in ("sourceRef", "targetRef"):
        ref = flow.get(attr)
        if not ref or ref not in ids:
            out.add(flow, f"{attr} '{ref}' does not name an element of this process")


def _check_links(process: etree._Element, out: _Collector) -> None:
    """A link throw jumps to the link catch of the same name in the same scope (process or subprocess)."""
    for scope in [process, *process.iter(B + "subProcess", B + "transaction", B + "adHocSubProcess")]:
        catches: dict[str, etree._Element] = {}
        for catch in scope.iterchildren(B + "intermediateCatchEvent"):
            link = catch.find(B + "linkEventDefinition")
            if link is None:
                continue
            name = (link.get("name") or "").strip()
            if not name:
                out.add(catch, "link catch event has no link name (linkEventDefinition name)")
            elif name in catches:
                out.add(catch, f"two link catch events are named '{name}' in the same scope "
                               f"(also {describe(catches[name])}); a link throw must find exactly one")
            else:
                catches[name] = catch
        for throw in scope.iterchildren(B + "intermediateThrowEvent"):
            link = throw.find(B + "linkEventDefinition")
            if link is None:
                continue
            name = (link.get("name") or "").strip()
            if name not in catches:
                out.add(throw, f"link throw '{name}' has no link catch event of that name in the same scope")


def _check_script_task(task: etree._Element, out: _Collector) -> None:
    fmt = (task.get("scriptFormat") or "python").lower()
    script = task.find(B + "script")
    if fmt not in ("python", "py"):
        out.add(task, f'script format "{fmt}" cannot run: Camunda runs {fmt} on the JVM, PDCA Flow runs scripts as '
                      'sandboxed Python; rewrite the script in Python (scriptFormat="python")')
    elif task.get(CAMUNDA + "resource"):
        out.add(task, "camunda:resource (a script read from a file or the classpath) is not supported; "
                      "put the Python script inline in the script task")
    elif script is None or not (script.text or "").strip():
        out.add(task, "script task has no script")
    else:
        out.compile(script, script.text, "script", task, compile_script)


def _check_service_task(task: etree._Element, out: _Collector) -> None:
    """Service, send, and business rule tasks without a decision: what their implementation needs.
    External tasks run (engine/external_task_model.py says what they need); Java delegates do not."""
    if connector_element(task) is not None:
        return  # checked by _check_connector
    problem = external_task_problem(task)
    if problem:
        out.add(task, problem)
    elif local(task.tag) == "businessRuleTask" and not is_external(task):
        out.add(task, "business rule task needs camunda:decisionRef naming a DMN decision")


CONNECTOR_TASKS = ("serviceTask", "sendTask", "businessRuleTask")
# what each served connector needs (input parameters), what it cannot do, and what it ignores
CONNECTOR_REQUIRED = {"http-connector": (("url",), ("method",)), "mail-send": (("to",), ("subject",), ("text", "html"))}
CONNECTOR_REFUSED = {"mail-send": {"fileNames": "attachments read from files (fileNames) are not supported; "
                                                "attach documents to the case instead"}}
CONNECTOR_IGNORED = {"mail-send": {"from": "the sender is the configured SMTP_FROM",
                                   "fromAlias": "the sender is the configured SMTP_FROM"}}


def _check_connector(connector: etree._Element, out: _Collector) -> None:
    """Camunda Connect's camunda:connector: http-connector and mail-send run on a service, send or
    business rule task (engine/camunda_connect.py); any other connector, or one elsewhere, cannot."""
    owner = _extension_owner(connector)
    ident = connector_id(connector)
    served = " and ".join(CONNECTOR_TOPICS)
    if local(owner.tag) not in CONNECTOR_TASKS or connector.getparent() is not owner.find(B + "extensionElements"):
        named = owner.getparent() if local(owner.tag).endswith("EventDefinition") else owner  # the event
        where = local(owner.tag) if named is owner else f"{local(owner.tag)} of {local(named.tag)}"
        out.add(connector, f"camunda:connector '{ident}' runs here only on service, send and business rule tasks, "
                           f"not on a {where}; move it onto a send or service task", describe(named))
        return
    element = describe(owner)
    if not ident:
        out.add(connector, f"camunda:connector has no camunda:connectorId; name one of {served}", element)
        return
    if ident not in CONNECTOR_TOPICS:
        out.add(connector, f"connector '{ident}' cannot run here: PDCA Flow serves Camunda Connect's {served} only; "
                           'make the task an external task a worker completes: camunda:type="external" '
                           'camunda:topic="…"', element)
        return
    other = [a for a in ("type", *JAVA_ATTRIBUTES, "decisionRef") if owner.get(CAMUNDA + a)]
    if other:
        out.add(owner, f"camunda:{other[0]} and camunda:connector are two implementations of one task; keep one")
    parameters = {p.get("name"): p for p in connector.iterfind(f"{CAMUNDA}inputOutput/{CAMUNDA}inputParameter")}
    for names in CONNECTOR_REQUIRED[ident]:
        if not any(n in parameters for n in names):
            wanted = " or ".join(f"'{n}'" for n in names)
            out.add(connector, f"{ident} needs the input parameter {wanted} (camunda:inputOutput of the connector)",
                    element)
    for name, reason in CONNECTOR_REFUSED.get(ident, {}).items():
        if name in parameters:
            out.add(parameters[name], f"{ident} input parameter '{name}': {reason}", element)
    for name, reason in CONNECTOR_IGNORED.get(ident, {}).items():
        if name in parameters:
            out.warn(parameters[name], f"{ident} input parameter '{name}' is ignored: {reason}", element)
    method = parameters.get("method") if ident == "http-connector" else None
    text = (method.text or "").strip() if method is not None and len(method) == 0 else ""
    if text and "${" not in text and "#{" not in text and text.upper() not in HTTP_METHODS:
        out.add(method, f"http-connector method '{text}' is not supported ({', '.join(HTTP_METHODS)})", element)


def _check_user_task(task: etree._Element, lanes: set[str], out: _Collector) -> None:
    assignee = task.get(CAMUNDA + "assignee")
    groups = task.get(CAMUNDA + "candidateGroups")
    users = task.get(CAMUNDA + "candidateUsers")
    if not (assignee or groups or users or task.get("id") in lanes):
        out.warn(task, "nobody is assigned this task (no camunda:assignee, candidateGroups, candidateUsers or lane): "
                       "at run time it waits in the Unassigned queue until a quality lead assigns it")
    for attr in ("assignee", "candidateGroups", "candidateUsers", "dueDate", "followUpDate", "priority"):
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
    """DMN problems: FEEL that does not parse (FILE:LINE, the rule and the message), tables whose
    rules do not fit their columns, requirements naming decisions that are not in the file."""
    out = _Collector(filename)
    if local(root.tag) != "definitions":
        out.add(root, "not a DMN document (expected definitions)", "definitions")
        return out.problems
    decisions = [el for el in root if local(el.tag) == "decision"]
    if not decisions:
        out.add(root, "the DMN file has no decision", "definitions")
    known = {el.get("id") for el in root if el.get("id")}
    for decision in decisions:
        for req in decision.iter(etree.Element):
            if local(req.tag) in ("requiredDecision", "requiredKnowledge", "requiredInput"):
                ref = (req.get("href") or "").split("#")[-1]
                if ref not in known:
                    what = {"requiredDecision": "decision", "requiredKnowledge": "business knowledge model",
                            "requiredInput": "input data"}[local(req.tag)]
                    out.add(req, f"requires {what} '{ref}', which is not in this file", describe(decision))
    try:
        definitions = read_definitions(root)
    except DmnModelError as exc:
        out.problems.append(Problem(filename, exc.line, exc.element, str(exc)))
        return out.problems
    out.problems.extend(Problem(filename, p.line, p.element, p.message) for p in dmn_problems(definitions))
    return out.problems


def _compile_expression(source: str) -> object:
    return compile_expression(to_python(source))


