"""External tasks in a model: `camunda:type="external" camunda:topic="…"` on a service, send or
business-rule task (Camunda 7's external task pattern).

The parser turns such an element into an `ExternalTask` spec: when the token arrives the task runs
and stays STARTED (SpiffWorkflow's "running elsewhere" state) until a worker completes it over
`/engine-rest` (engine/external_tasks.py). Topic and priority are kept in the spec's `extensions`
(serialized with the spec). The deploy check here says what is wrong with a service or send task
that is not an external task, and how to make it one.

A task with Camunda Connect's `camunda:connector` whose connectorId we serve (`CONNECTOR_TOPICS`) is
an external task of the built-in connector's topic too, its connector kept in the extension
(`connector`); engine/camunda_connect.py gives it Camunda's semantics when the scheduler serves it.
"""

from __future__ import annotations

from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.TaskParser import TaskParser
from SpiffWorkflow.bpmn.specs.defaults import NoneTask, SendTask, ServiceTask
from SpiffWorkflow.camunda.parser.task_spec import CAMUNDA_MODEL_NS, CamundaTaskParser

from engine.camunda_extensions import connector_element, connector_id, read_connector

CAMUNDA = "{" + CAMUNDA_MODEL_NS + "}"
EXTENSION = "external"  # key in spec.extensions
JAVA_ATTRIBUTES = ("class", "expression", "delegateExpression")
HTTP_TOPIC, MAIL_TOPIC = "pdcaflow.http", "pdcaflow.mail"  # the built-in connectors (engine/connectors.py)
# Camunda Connect connector ids served by a built-in connector (engine/camunda_connect.py)
CONNECTOR_TOPICS = {"http-connector": HTTP_TOPIC, "mail-send": MAIL_TOPIC}
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")  # what http-connector may send


class ExternalTask(NoneTask):
    """A task done by an external worker: running it only parks the token (STARTED)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.manual = False  # the engine runs it (to park the token), no person does

    def _run_hook(self, my_task: Any) -> None:
        return None  # None = STARTED: the task waits until a worker completes it


def task_connector_id(node: etree._Element) -> str | None:
    """The connectorId of the task's camunda:connector ("" when it names none), None without one."""
    connector = connector_element(node)
    return None if connector is None else connector_id(connector)


def is_external(node: etree._Element) -> bool:
    """camunda:type="external", or a camunda:connector one of the built-in connectors serves."""
    return (node.get(CAMUNDA + "type") or "").strip() == "external" or task_connector_id(node) in CONNECTOR_TOPICS


def _extension(node: etree._Element) -> dict[str, Any]:
    connector = task_connector_id(node)
    if connector in CONNECTOR_TOPICS:
        return {"topic": CONNECTOR_TOPICS[connector], "priority": "", "connector": read_connector(node)}
    return {"topic": (node.get(CAMUNDA + "topic") or "").strip(),
            "priority": (node.get(CAMUNDA + "taskPriority") or "").strip()}


class ExternalMixin:
    """Makes an external-task element an ExternalTask spec; any other element parses as before."""

    node: etree._Element

    def create_task(self) -> Any:
        if is_external(self.node):
            return ExternalTask(self.spec, self.bpmn_id, **self.bpmn_attributes)  # type: ignore[attr-defined]
        return super().create_task()  # type: ignore[misc]

    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        extensions = super().parse_extensions(node)  # type: ignore[misc]
        if is_external(self.node):
            extensions[EXTENSION] = _extension(self.node)
        return extensions


class ExternalServiceTaskParser(ExternalMixin, CamundaTaskParser):
    pass


def parser_classes(full_tag: Any) -> dict[str, tuple[type[TaskParser], type]]:
    """Entries for the parser's OVERRIDE_PARSER_CLASSES (business-rule tasks: engine/bpmn_parser.py,
    whose parser makes a decision task or, with ExternalMixin, an external task)."""
    return {
        full_tag("serviceTask"): (ExternalServiceTaskParser, ServiceTask),
        full_tag("sendTask"): (ExternalServiceTaskParser, SendTask),
    }


def external_settings(task: Any) -> dict[str, Any] | None:
    """Topic, raw priority and camunda:properties of an external task (None for any other task)."""
    if not isinstance(task.task_spec, ExternalTask):
        return None
    extensions = getattr(task.task_spec, "extensions", None) or {}
    settings = dict(extensions.get(EXTENSION) or {})
    # SpiffWorkflow's Camunda parser keeps camunda:properties as name -> value in the extensions
    settings["properties"] = {k: v for k, v in extensions.items() if isinstance(v, str)}
    return settings


# ---------------------------------------------------------------------- deploy check
HOW = ('make it an external task a worker completes: camunda:type="external" camunda:topic="…" '
       "(Implementation: External in Camunda Modeler), served over /engine-rest")


def deploy_problem(node: etree._Element) -> str | None:
    """Why a service/send/business-rule task cannot run here, or None when it can."""
    kind = etree.QName(node.tag).localname
    java = [a for a in JAVA_ATTRIBUTES if node.get(CAMUNDA + a)]
    if is_external(node):
        topic = (node.get(CAMUNDA + "topic") or "").strip()
        if not topic:
            return "an external task needs camunda:topic naming the topic its workers fetch"
        if "${" in topic or "#{" in topic:
            return f"camunda:topic '{topic}' is an expression; name the topic itself (workers subscribe to a name)"
        priority = (node.get(CAMUNDA + "taskPriority") or "").strip()
        if priority and not _priority_ok(priority):
            return f"camunda:taskPriority '{priority}' is not a whole number or a ${{variable}}"
        return None
    label = {"serviceTask": "service tasks", "sendTask": "send tasks"}.get(kind, "business rule tasks")
    if java:
        what = "a Java class" if java[0] == "class" else f"a Java bean/expression (camunda:{java[0]}, Java code)"
        return f'camunda:{java[0]}="{node.get(CAMUNDA + java[0])}" calls {what} inside Camunda, which cannot run here; {HOW}'
    if kind in ("serviceTask", "sendTask"):
        return f"{label} run no code of their own here; {HOW}"
    return None


def _priority_ok(text: str) -> bool:
    if text.startswith("${") and text.endswith("}"):
        return text[2:-1].strip().isidentifier()
    try:
        int(text)
    except ValueError:
        return False
    return True


def resolve_priority(raw: str | None, data: dict[str, Any]) -> int:
    """camunda:taskPriority: a whole number or ${variable}; 0 when empty or not a number."""
    text = (raw or "").strip()
    if text.startswith("${") and text.endswith("}"):
        text = str(data.get(text[2:-1].strip(), ""))
    try:
        return int(text)
    except ValueError:
        return 0
