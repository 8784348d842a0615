"""Camunda 7 extensions at run time: multi-instance, input/output mappings, call activity in/out,
script listeners, error variables, the initiator, and the plain data `execution` is built from.

The parser (engine/bpmn_parser.py with engine/camunda_extensions.py) keeps each element's extensions
as JSON data in ``spec.extensions['camunda']``. Here they are acted on through the task specs'
events (``update_event`` when an activity starts, ``ready_event`` when a user task is created,
``completed_event`` when it ends), connected once per loaded spec by `install`. Writes made by these
hooks are published to the whole process scope (engine/runtime/scopes.py).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Iterable
from copy import deepcopy
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.specs.bpmn_task_spec import BpmnTaskSpec
from SpiffWorkflow.bpmn.specs.defaults import CallActivity
from SpiffWorkflow.bpmn.specs.defaults import ParallelMultiInstanceTask as _ParallelMI
from SpiffWorkflow.bpmn.specs.defaults import SequentialMultiInstanceTask as _SequentialMI
from SpiffWorkflow.util.task import TaskState

from engine.runtime import scopes
from engine.sandbox import SandboxError, ScriptError, evaluate, execute
from engine.sandbox_helpers import CONTEXT_KEY

INSTANCE_ATTRIBUTE = "pdca_context"  # plain attribute of a loaded workflow: instance id, business key
MI_COUNTERS = ("nrOfInstances", "nrOfActiveInstances", "nrOfCompletedInstances")
RESULT_NAME = "pdca_script_result"


def extensions(spec: Any) -> dict[str, Any]:
    return (getattr(spec, "extensions", None) or {}).get("camunda") or {}


# ---------------------------------------------------------------------- the `execution` built-in's data
def set_instance_context(workflow: Any, **context: Any) -> None:
    """Instance facts the `execution` built-in reports (not serialized: set on every load/start)."""
    setattr(workflow, INSTANCE_ATTRIBUTE, context)


def script_context(task: Any) -> dict[str, Any]:
    """Plain data for `execution`: instance id, business key, the current activity."""
    top = task.workflow.top_workflow
    context = dict(getattr(top, INSTANCE_ATTRIBUTE, None) or {})
    root = scopes.scope_root(task.workflow)
    if root is not top and "business_key" in root.data:  # a called process's own business key
        context["business_key"] = root.data["business_key"]
    spec = task.task_spec
    # the conditions on an activity's outgoing flows are evaluated while leaving that activity
    # (engine/runtime/spiff_flows.py: the engine task doing it names its activity)
    context.update(activity_id=getattr(spec, "bpmn_id", None) or getattr(spec, "activity", None) or spec.name,
                   activity_name=getattr(spec, "bpmn_name", None) or getattr(spec, "bpmn_id", None),
                   execution_id=str(task.id))
    return context


def _failure(task: Any, what: str, exc: Exception) -> WorkflowTaskException:
    return WorkflowTaskException(f"{what}: {exc}", task=task, exception=exc, line_number=getattr(exc, "line", None))


def evaluate_value(task: Any, value: dict[str, Any], variables: dict[str, Any], what: str) -> Any:
    """An input/output parameter's value (text, ${expression}, list, map or script)."""
    try:
        return parameter_value(value, variables, lambda: script_context(task))
    except (SandboxError, ScriptError) as exc:
        raise _failure(task, what, exc) from exc


def parameter_value(value: dict[str, Any], variables: dict[str, Any], context: Callable[[], dict[str, Any]]) -> Any:
    """A parameter value (engine/camunda_extensions.py `read_value`) over `variables`, with `context()`
    the data of the `execution` built-in; raises SandboxError or ScriptError. Also used outside a
    workflow, by the Camunda connectors (engine/camunda_connect.py)."""
    if "expression" in value:
        return evaluate(value["expression"], variables, {CONTEXT_KEY: context()})
    if "template" in value:  # JUEL composite text: each expression's value as text
        return "".join(juel_text(evaluate(piece, variables, {CONTEXT_KEY: context()})) if is_expression else piece
                       for is_expression, piece in value["template"])
    if "list" in value:
        return [parameter_value(v, variables, context) for v in value["list"]]
    if "map" in value:
        return {k: parameter_value(v, variables, context) for k, v in value["map"].items()}
    if "script" in value:
        scratch = dict(variables)
        execute(with_result_variable(value["script"], RESULT_NAME), scratch, {CONTEXT_KEY: context()})
        return scratch.get(RESULT_NAME)
    return value.get("text", "")


def juel_text(value: Any) -> str:
    """A value as text, as JUEL coerces it in composite text: null is empty, booleans are lower case;
    a map or list is written as JSON (the text a service expects, where Java would write `{a=1}`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def with_result_variable(script: str, name: str) -> str:
    """The script with its last expression statement assigned to `name` (Camunda's script value:
    the last expression's value), the other lines untouched so error line numbers stay right."""
    try:
        tree = ast.parse(script)
    except SyntaxError:
        return script
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return script + f"\n{name} = None"
    last = tree.body[-1]
    lines = script.splitlines()
    start, end = last.lineno - 1, (last.end_lineno or last.lineno) - 1
    head = lines[start][:last.col_offset]
    segment = ast.get_source_segment(script, last) or ""
    tail = lines[end][last.end_col_offset:] if last.end_col_offset is not None else ""
    return "\n".join(lines[:start] + [f"{head}{name} = ({segment}){tail}"] + lines[end + 1:])


# ---------------------------------------------------------------------- locals (inputOutput, MI)
def _declare_locals(task: Any, values: dict[str, Any]) -> None:
    """Set task-local variables; the process variables they shadow come back when the task ends."""
    shadowed = task.internal_data.setdefault("pdca_shadowed", {})
    for name, value in values.items():
        if name in task.data and name not in scopes.locals_of(task) and name not in shadowed:
            shadowed[name] = deepcopy(task.data[name])
        task.data[name] = value
    scopes.add_locals(task, values)


def _drop_locals(task: Any) -> None:
    shadowed = task.internal_data.get("pdca_shadowed") or {}
    for name in scopes.locals_of(task):
        if name in shadowed:
            task.data[name] = shadowed[name]
        else:
            task.data.pop(name, None)


# ---------------------------------------------------------------------- listeners
def run_listeners(task: Any, listeners: Iterable[dict[str, Any]], event: str, task_attributes: dict | None = None) -> None:
    """Run the Python script listeners for `event`; they write process variables through
    assignments or execution.setVariable, and task attributes through task.set*."""
    for listener in listeners:
        if listener.get("event") != event or not (listener.get("script") or listener.get("expression")):
            continue
        context = script_context(task)
        context["event"] = event
        if task_attributes is not None:
            context["task"] = task_attributes
        try:
            if listener.get("script"):
                execute(listener["script"], task.data, {CONTEXT_KEY: context})
            else:  # ${execution.setVariable(...)}: its writes go straight into the data
                evaluate(listener["expression"], task.data, {CONTEXT_KEY: context})
        except (SandboxError, ScriptError) as exc:
            raise _failure(task, f"{event} listener", exc) from exc


# ---------------------------------------------------------------------- hooks on task spec events
def _is_mi_body(spec: Any) -> bool:
    return isinstance(spec, (PdcaSequentialMultiInstance, PdcaParallelMultiInstance))


def _on_start(workflow: Any, task: Any) -> None:
    """An activity starts (SpiffWorkflow's update event, after the task inherited its data)."""
    ext = extensions(task.task_spec)
    if _is_mi_body(task.task_spec) or task.internal_data.get("pdca_started"):
        return
    inputs = ext.get("inputs") or []
    listeners = ext.get("execution_listeners") or []
    taken = _taken_flow_listeners(task, ext)
    if not inputs and not taken and not any(lst.get("event") == "start" for lst in listeners):
        return
    before = scopes.snapshot(task)
    run_listeners(task, taken, "take")
    if inputs:
        variables = dict(task.data)
        values: dict[str, Any] = {}
        for parameter in inputs:
            values[parameter["name"]] = variables[parameter["name"]] = evaluate_value(
                task, parameter["value"], variables, f"input parameter '{parameter['name']}'")
        _declare_locals(task, values)
    run_listeners(task, listeners, "start")
    task.internal_data["pdca_started"] = True  # only once it all ran: a failure here runs it again
    scopes.publish(task, before)


def on_retry(task: Any) -> None:
    """A failed task runs again: if its start (input parameters, start listeners) failed, redo it."""
    if extensions(task.task_spec) and not task.internal_data.get("pdca_started"):
        _on_start(task.workflow, task)


def _taken_flow_listeners(task: Any, ext: dict[str, Any]) -> list[dict[str, Any]]:
    """The take listeners of the sequence flow this task was reached by (from its source element)."""
    by_source = ext.get("take_listeners")
    if not by_source:
        return []
    parent = task.parent
    while parent is not None and not getattr(parent.task_spec, "bpmn_id", None):
        parent = parent.parent  # SpiffWorkflow's own split/join tasks sit between elements
    source = getattr(parent.task_spec, "bpmn_id", None) if parent is not None else None
    return by_source.get(source, []) if source else []


def _on_ready(workflow: Any, task: Any) -> None:
    """A user task is created: task listeners 'create' may change its assignee, due date, ..."""
    ext = extensions(task.task_spec)
    listeners = ext.get("task_listeners") or []
    if not any(lst.get("event") in ("create", "assignment") for lst in listeners):
        return
    before = scopes.snapshot(task)
    attributes = task_attributes(task)
    original_assignee = attributes.get("assignee")
    run_listeners(task, listeners, "create", attributes)
    if attributes.get("assignee") != original_assignee:
        run_listeners(task, listeners, "assignment", attributes)
    _store_overrides(task, attributes)
    scopes.publish(task, before)


def _on_complete(workflow: Any, task: Any) -> None:
    """An activity ends (before its successors inherit its data)."""
    spec = task.task_spec
    if _is_mi_body(spec):
        return
    ext = extensions(spec)
    listeners = ext.get("task_listeners") or []
    if any(lst.get("event") == "complete" for lst in listeners):
        attributes = task_attributes(task)
        run_listeners(task, listeners, "complete", attributes)
    # Camunda runs the end listeners first, then the output mappings (which see what they set).
    run_listeners(task, ext.get("execution_listeners") or [], "end")
    outputs = ext.get("outputs") or []
    if outputs:
        variables = dict(task.data)
        results = {p["name"]: evaluate_value(task, p["value"], variables, f"output parameter '{p['name']}'")
                   for p in outputs}
    else:
        results = {}
    error = task.internal_data.get("pdca_error")
    if error:
        if ext.get("error_code_variable"):
            results[ext["error_code_variable"]] = error.get("code")
        if ext.get("error_message_variable"):
            results[ext["error_message_variable"]] = error.get("message")
    parent = task.parent
    in_mi_body = parent is not None and _is_mi_body(parent.task_spec)
    if not in_mi_body:
        _drop_locals(task)  # an MI instance's locals are dropped by the body once it has merged them
    local = scopes.locals_of(task)
    for name, value in results.items():
        task.data[name] = value
        if name in local:  # an output named like a local: the process variable wins after the task
            task.internal_data[scopes.LOCALS_KEY] = [n for n in local if n != name]
            local = scopes.locals_of(task)
    if in_mi_body:  # last: the body sees the instance after its listeners and output parameters
        parent.task_spec.merge_child(workflow, task)


def _connect_instance_end(child_spec: Any) -> None:
    if not child_spec.completed_event.is_connected(_on_complete):
        child_spec.completed_event.connect(_on_complete)


# ---------------------------------------------------------------------- user task attributes
OVERRIDES_KEY = "pdca_overrides"


def task_attributes(task: Any) -> dict[str, Any]:
    """What a task listener's `task` object reads and changes (plain data)."""
    spec = task.task_spec
    raw = {**((getattr(spec, "extensions", None) or {}).get("pdca") or {}), **(task.internal_data.get(OVERRIDES_KEY) or {})}
    groups = raw.get("candidateGroups") or ""
    return {"id": str(task.id), "name": getattr(spec, "bpmn_name", None) or spec.name,
            "definition_key": getattr(spec, "bpmn_id", None), "description": raw.get("documentation"),
            "assignee": raw.get("assignee") if not str(raw.get("assignee") or "").startswith("${") else None,
            "priority": raw.get("priority"), "due": raw.get("dueDate"), "follow_up": raw.get("followUpDate"),
            "candidate_groups": [g.strip() for g in groups.split(",") if g.strip()] if "${" not in groups else []}


def _store_overrides(task: Any, attributes: dict[str, Any]) -> None:
    """Keep what a listener set, in the raw form engine/assignment.py resolves (spiff.pdca_attributes)."""
    overrides: dict[str, Any] = {}
    if attributes.get("assignee"):
        overrides["assignee"] = attributes["assignee"]
    if attributes.get("candidate_groups"):
        overrides["candidateGroups"] = ",".join(attributes["candidate_groups"])
    for key, raw in (("due", "dueDate"), ("follow_up", "followUpDate"), ("priority", "priority")):
        if attributes.get(key) is not None:
            overrides[raw] = str(attributes[key])
    if attributes.get("name"):
        overrides["name"] = attributes["name"]
    task.internal_data[OVERRIDES_KEY] = overrides


# ---------------------------------------------------------------------- error variables
def _remember_error(definition: Any) -> None:
    """Wrap a catching error definition's catch so the caught error's code and message are kept
    (SpiffWorkflow keeps only the thrower's data) for errorCodeVariable/errorMessageVariable."""
    if getattr(definition, "pdca_wrapped", False):
        return
    original = definition.catch

    def catch(my_task: Any, event: Any = None) -> Any:
        thrown = getattr(event, "event_definition", None)
        my_task.internal_data["pdca_error"] = {
            "code": getattr(thrown, "code", None) or getattr(definition, "code", None),
            "message": getattr(thrown, "pdca_message", None) or getattr(thrown, "name", None)}
        return original(my_task, event)

    definition.catch = catch
    definition.pdca_wrapped = True


def install(spec: Any, subprocess_specs: dict[str, Any]) -> None:
    """Connect the hooks to every task spec that needs them (once per loaded spec)."""
    for process in [spec, *subprocess_specs.values()]:
        if process is None:
            continue
        for task_spec in process.task_specs.values():
            ext = extensions(task_spec)
            if not ext:
                continue
            if _is_mi_body(task_spec) and task_spec.task_spec in process.task_specs:
                # An instance finishing after a restart must still reach its body: event connections
                # live in memory only, so they are made on every load.
                _connect_instance_end(process.task_specs[task_spec.task_spec])
            for event, handler in ((task_spec.update_event, _on_start), (task_spec.ready_event, _on_ready),
                                   (task_spec.completed_event, _on_complete)):
                if not event.is_connected(handler):
                    event.connect(handler)
            definition = getattr(task_spec, "event_definition", None)
            if definition is not None and type(definition).__name__ == "ErrorEventDefinition":
                if ext.get("error_message"):
                    definition.pdca_message = ext["error_message"]
                if ext.get("error_code_variable") or ext.get("error_message_variable"):
                    _remember_error(definition)


def initiator_variables(spec: Any, username: str | None) -> dict[str, Any]:
    """`camunda:initiator="starter"` on a start event: the starting user's name as a variable."""
    out: dict[str, Any] = {}
    for task_spec in spec.task_specs.values():
        name = extensions(task_spec).get("initiator")
        if name and username:
            out[name] = username
    return out


# ---------------------------------------------------------------------- multi-instance
class _CamundaMultiInstance:
    """Camunda's multi-instance body: `camunda:collection` (a variable name or ${expression}) with
    `camunda:elementVariable`, or `loopCardinality`; `completionCondition`. Each instance has its
    element variable and `loopCounter` as locals; `nrOfInstances`, `nrOfActiveInstances` and
    `nrOfCompletedInstances` are in scope of every instance and of the completion condition.

    PDCA Flow keeps one behaviour of its earlier multi-instance: an instance's changes to its
    element variable (a form field `action.done_at`) are written back into the collection."""

    sequential = False

    def _mi(self) -> dict[str, Any]:
        return extensions(self).get("mi") or {}

    def _items(self, my_task: Any) -> list[Any]:
        mi = self._mi()
        engine = my_task.workflow.script_engine
        collection = mi.get("collection")
        if collection:
            name = collection.strip()
            if name.isidentifier():
                if name not in my_task.data:
                    raise WorkflowTaskException(f"multi-instance collection '{name}' is not a variable", task=my_task)
                value = my_task.data[name]
            else:
                value = engine.evaluate(my_task, name)
            if isinstance(value, dict) or not hasattr(value, "__iter__") or isinstance(value, str):
                raise WorkflowTaskException(f"multi-instance collection '{name}' is not a list "
                                            f"(got {type(value).__name__})", task=my_task)
            return list(value)
        count = engine.evaluate(my_task, self.cardinality)
        if isinstance(count, str) and count.strip().isdigit():
            count = int(count)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise WorkflowTaskException(f"loopCardinality must be a whole number, got {count!r}", task=my_task)
        return list(range(count))

    def _update_hook(self, my_task: Any) -> Any:
        BpmnTaskSpec._update_hook(self, my_task)  # inherit the data
        items = self._items(my_task)
        my_task.internal_data.update(merged=[], items=items, next=0, completed=0)
        if not items:
            return True
        for _ in range(1 if self.sequential else len(items)):
            self._start_instance(my_task)
        my_task._set_state(TaskState.STARTED)
        return None

    def _live_instances(self, my_task: Any) -> list[Any]:
        return [c for c in my_task.children
                if c.task_spec.name == self.task_spec and not c.has_state(TaskState.FINISHED_MASK)]

    def _counters(self, my_task: Any) -> dict[str, int]:
        total = len(my_task.internal_data.get("items") or [])
        completed = my_task.internal_data.get("completed", 0)
        return {"nrOfInstances": total, "nrOfCompletedInstances": completed,
                "nrOfActiveInstances": len(self._live_instances(my_task))}

    def _start_instance(self, my_task: Any) -> None:
        index = my_task.internal_data["next"]
        my_task.internal_data["next"] = index + 1
        child_spec = my_task.workflow.spec.task_specs[self.task_spec]
        _connect_instance_end(child_spec)  # install() made it on load; specs parsed here need it too
        child = my_task._add_child(child_spec, TaskState.WAITING)
        child.triggered = True
        child.internal_data["key_or_index"] = index
        values: dict[str, Any] = {"loopCounter": index}
        element = self._mi().get("element_variable")
        if element and self._mi().get("collection"):
            values[element] = deepcopy(my_task.internal_data["items"][index])
        _declare_locals(child, values)
        scopes.add_locals(child, MI_COUNTERS)
        self._refresh_counters(my_task)
        child.task_spec._update(child)

    def _refresh_counters(self, my_task: Any) -> None:
        counters = self._counters(my_task)
        for child in self._live_instances(my_task):
            child.data.update(counters)

    def merge_child(self, workflow: Any, child: Any) -> None:
        my_task = child.parent
        if my_task is None or my_task.task_spec is not self or str(child.id) in my_task.internal_data["merged"]:
            return
        my_task.internal_data["merged"].append(str(child.id))
        my_task.internal_data["completed"] = my_task.internal_data.get("completed", 0) + 1
        counters = self._counters(my_task)
        child.data.update(counters)
        self._write_back_element(my_task, child)
        done = bool(self.condition) and self._condition_met(my_task, child)
        _drop_locals(child)
        for name in MI_COUNTERS:
            child.data.pop(name, None)
        shared = scopes.shared_data(child)
        my_task.data.update(deepcopy(shared))
        if done:
            for other in self._live_instances(my_task):
                other.cancel()
            my_task._set_state(TaskState.READY)
        elif self.sequential and my_task.internal_data["next"] < len(my_task.internal_data["items"]):
            self._start_instance(my_task)
        elif not self._live_instances(my_task):
            my_task._set_state(TaskState.READY)
        else:
            self._refresh_counters(my_task)

    def _write_back_element(self, my_task: Any, child: Any) -> None:
        mi = self._mi()
        name, element = (mi.get("collection") or "").strip(), mi.get("element_variable")
        if name.startswith(("${", "#{")) and name.endswith("}"):
            name = name[2:-1].strip()
        index = child.internal_data.get("key_or_index")
        items = my_task.internal_data.get("items") or []
        if not (element and name.isidentifier() and element in child.data and isinstance(index, int)
                and index < len(items)) or child.data[element] == items[index]:
            return
        collection = child.data.get(name)
        if isinstance(collection, list) and index < len(collection):
            collection[index] = deepcopy(child.data[element])  # published with the instance's delta
            items[index] = deepcopy(child.data[element])

    def _condition_met(self, my_task: Any, child: Any) -> bool:
        return bool(my_task.workflow.script_engine.evaluate(child, self.condition))

    def children_complete(self, my_task: Any) -> bool:
        return not self._live_instances(my_task) and my_task.internal_data.get("next", 0) >= len(
            my_task.internal_data.get("items") or [])


class PdcaSequentialMultiInstance(_CamundaMultiInstance, _SequentialMI):
    sequential = True


class PdcaParallelMultiInstance(_CamundaMultiInstance, _ParallelMI):
    sequential = False


# ---------------------------------------------------------------------- call activity in/out
class PdcaCallActivity(CallActivity):
    """A call activity passing variables as camunda:in/camunda:out say (source/target,
    sourceExpression, variables="all", local, businessKey). With no mapping at all, SpiffWorkflow's
    behaviour is kept (all variables in and out) - PDCA Flow's processes were written that way."""

    def _mappings(self, direction: str) -> list[dict[str, Any]]:
        return extensions(self).get(direction) or []

    def _mapped(self, task: Any, mappings: list[dict[str, Any]], source_data: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for mapping in mappings:
            if mapping.get("variables") == "all":
                out.update(deepcopy(source_data))
            elif mapping.get("sourceExpression") is not None and mapping.get("target"):
                out[mapping["target"]] = evaluate_value(task, {"expression": mapping["sourceExpression"]},
                                                        source_data, f"camunda mapping to '{mapping['target']}'")
            elif mapping.get("source") and mapping.get("target"):
                if mapping["source"] in source_data:
                    out[mapping["target"]] = deepcopy(source_data[mapping["source"]])
                else:
                    out[mapping["target"]] = None  # Camunda passes an unset source as null
        return out

    def copy_data(self, my_task: Any, subworkflow: Any) -> None:
        mappings = self._mappings("in")
        if not mappings and not self._mappings("out"):
            return super().copy_data(my_task, subworkflow)
        if any(m.get("local") == "true" for m in mappings):  # only the call activity's own (local) variables
            source = {k: my_task.data[k] for k in scopes.locals_of(my_task) if k in my_task.data}
        else:  # everything visible from the activity, its locals (an MI element variable) included
            source = my_task.data
        start = subworkflow.get_next_task(subworkflow.task_tree, skip_subprocesses=True, spec_name="Start")
        variables = self._mapped(my_task, [m for m in mappings if not m.get("businessKey")], dict(source))
        for mapping in mappings:
            if mapping.get("businessKey"):
                subworkflow.data["business_key"] = evaluate_value(
                    my_task, {"expression": mapping["businessKey"]} if "${" in mapping["businessKey"]
                    else {"text": mapping["businessKey"]}, dict(source), "camunda:in businessKey")
        start.set_data(**variables)
        subworkflow.task_tree.data.update(deepcopy(variables))

    def update_data(self, my_task: Any, subworkflow: Any) -> None:
        before = scopes.snapshot(my_task)
        mappings = self._mappings("out")
        if not mappings and not self._mappings("in"):
            super().update_data(my_task, subworkflow)
        else:
            last = subworkflow.last_task
            source = dict(scopes.shared_data(last)) if last is not None else {}
            my_task.data.update(self._mapped(my_task, [m for m in mappings if m.get("local") != "true"], source))
            # local="true": variables of the call activity only (its output parameters may map them on)
            local = self._mapped(my_task, [m for m in mappings if m.get("local") == "true"], source)
            if local:
                _declare_locals(my_task, local)
        # The call activity finished without running through the engine-step tracker: publish now.
        scopes.publish(my_task, before)
