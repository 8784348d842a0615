"""Reading the Camunda 7 extensions SpiffWorkflow's Camunda parser leaves out.

Each activity/event's extensions are kept as plain JSON data in ``spec.extensions['camunda']``
(serialized with the spec by SpiffWorkflow) and acted on at run time by engine/runtime/camunda.py:

- ``kind``: the BPMN element (``callActivity`` tells a called process from an embedded subprocess,
  which SpiffWorkflow's Camunda parser builds with the same class);
- ``in``/``out``: ``camunda:in``/``camunda:out`` of a call activity;
- ``inputs``/``outputs``: ``camunda:inputOutput`` parameters;
- ``result_variable``: ``camunda:resultVariable`` of a script task;
- ``task_listeners``/``execution_listeners``: Python script listeners by event;
- ``error_code_variable``/``error_message_variable``: on a catching error event;
- ``initiator``: ``camunda:initiator`` of a start event.

``read_connector`` reads a task's ``camunda:connector`` (Camunda Connect: its ``connectorId`` and the
connector's own input/output parameters), kept with the external-task settings of the task
(engine/external_task_model.py) and run by engine/camunda_connect.py.

A value (input/output parameter, list item, map entry) is ``{"text": ...}``, ``{"expression": ...}``,
``{"template": [[is_expression, piece]...]}`` (JUEL composite text, "${base}/orders/${id}"),
``{"list": [value...]}``, ``{"map": {key: value}}`` or ``{"script": ...}``.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from engine.expressions import template_parts

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
C = "{" + CAMUNDA_NS + "}"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
B = "{" + BPMN_NS + "}"

MAPPING_ATTRIBUTES = ("source", "sourceExpression", "target", "variables", "local", "businessKey")


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def is_expression(text: str) -> bool:
    stripped = text.strip()
    return (stripped.startswith("${") or stripped.startswith("#{")) and stripped.endswith("}")


def read_value(el: etree._Element) -> dict[str, Any]:
    """A parameter value: the first Camunda child element (list, map, script), else its text."""
    for child in el:
        name = _local(child.tag)
        if name == "list":
            return {"list": [read_value(v) for v in child if _local(v.tag) in ("value", "list", "map")]}
        if name == "map":
            return {"map": {entry.get("key"): read_value(entry) for entry in child if _local(entry.tag) == "entry"}}
        if name == "script":
            return {"script": child.text or "", "format": (child.get("scriptFormat") or "python").lower()}
        if name in ("value",):
            return read_value(child)
    text = el.text or ""
    parts = template_parts(text)
    if parts is not None:
        return {"template": [[is_expr, piece] for is_expr, piece in parts]}
    return {"expression": text.strip()} if is_expression(text) else {"text": text}


def _parameters(io: etree._Element) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The input and output parameters of a camunda:inputOutput, in document order."""
    return ([{"name": p.get("name"), "value": read_value(p)} for p in io.findall(C + "inputParameter")],
            [{"name": p.get("name"), "value": read_value(p)} for p in io.findall(C + "outputParameter")])


def connector_element(node: etree._Element) -> etree._Element | None:
    """The camunda:connector of a task (in its extensionElements), if it has one."""
    return node.find(f"{B}extensionElements/{C}connector")


def connector_id(connector: etree._Element) -> str:
    """A camunda:connector's connectorId ("" when it names none)."""
    return (connector.findtext(C + "connectorId") or "").strip()


def read_connector(node: etree._Element) -> dict[str, Any] | None:
    """A task's camunda:connector as plain data: ``id`` (the connectorId), ``inputs``, ``outputs``."""
    connector = connector_element(node)
    if connector is None:
        return None
    io = connector.find(C + "inputOutput")
    inputs, outputs = _parameters(io) if io is not None else ([], [])
    return {"id": connector_id(connector), "inputs": inputs, "outputs": outputs}


def _listeners(ext: etree._Element, tag: str) -> list[dict[str, Any]]:
    out = []
    for listener in ext.findall(C + tag):
        script = listener.find(C + "script")
        out.append({
            "event": listener.get("event") or ("create" if tag == "taskListener" else "start"),
            "script": (script.text or "") if script is not None else None,
            "format": ((script.get("scriptFormat") if script is not None else None) or "").lower() or None,
            "class": listener.get("class") or listener.get("delegateExpression"),
            "expression": listener.get("expression"),
        })
    return out


def read_extensions(node: etree._Element) -> dict[str, Any]:
    """The Camunda extensions of one BPMN element, as plain data (see the module docstring)."""
    ext: dict[str, Any] = {"kind": _local(node.tag)}
    result_variable = node.get(C + "resultVariable")
    if result_variable:
        ext["result_variable"] = result_variable
    initiator = node.get(C + "initiator")
    if initiator:
        ext["initiator"] = initiator
    for definition in node.findall(B + "errorEventDefinition"):
        for attr, key in (("errorCodeVariable", "error_code_variable"), ("errorMessageVariable", "error_message_variable")):
            if definition.get(C + attr):
                ext[key] = definition.get(C + attr)
    elements = node.find(B + "extensionElements")
    if elements is None:
        return ext
    for direction in ("in", "out"):
        mappings = [{a: m.get(a) for a in MAPPING_ATTRIBUTES if m.get(a) is not None} for m in elements.findall(C + direction)]
        if mappings:
            ext[direction] = mappings
    io = elements.find(C + "inputOutput")
    if io is not None:
        ext["inputs"], ext["outputs"] = _parameters(io)
    for tag, key in (("taskListener", "task_listeners"), ("executionListener", "execution_listeners")):
        found = _listeners(elements, tag)
        if found:
            ext[key] = found
    return ext
