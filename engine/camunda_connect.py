"""Camunda Connect's connectors (`camunda:connector`) with Camunda 7's meaning, run by the built-in
connectors (engine/connectors.py: their one HTTP client and allow-list, their mail outbox).

A service, send or business-rule task with a `camunda:connector` we serve is an external task of the
built-in connector's topic (engine/external_task_model.py `CONNECTOR_TOPICS`): `http-connector` is
served as `pdcaflow.http`, `mail-send` as `pdcaflow.mail`, with their locks, retries and incidents.
When the scheduler serves such a task, this module supplies what differs from the property-driven
topics:

- the connector's input parameters are evaluated (the sandbox, as every camunda:inputOutput) over
  the variables the task sees, each time the connector runs (a retry evaluates them again, as Camunda
  runs the job again);
- `http-connector`: `url`, `method`, `headers` (a map), `payload` (text; a map or list is sent as
  JSON). Any answer is a response, whatever its status (Camunda's connector does not fail on 4xx or
  5xx): its variables are `statusCode`, `response` (the body as text) and `headers`;
- `mail-send`: `to`, `cc`, `bcc` (comma lists; each address gets its own mail), `subject`, `text`,
  `html`; it has no response variables;
- the connector's output parameters are evaluated over the task's variables with the response
  variables over them; only they become process variables (the response variables stay local).

The connector's configuration is read from the deployed model (the task's spec), never from the task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.external_task_model import EXTENSION, HTTP_METHODS
from engine.runtime.camunda import juel_text, parameter_value
from engine.sandbox import SandboxError, ScriptError

if TYPE_CHECKING:
    from engine.external_tasks import ExternalTaskView
    from engine.runtime.facade import Runtime

BODY_METHODS = ("POST", "PUT", "PATCH")  # Camunda's client sends a payload with these only


class ConnectError(Exception):
    """The connector's configuration cannot be carried out (retrying as it is cannot help)."""


@dataclass(frozen=True)
class HttpCall:
    url: str
    method: str
    headers: dict[str, str]
    body: bytes | None


@dataclass(frozen=True)
class Mail:
    to: str
    cc: str
    subject: str
    text: str
    html: str


def config_of(runtime: Runtime, task: ExternalTaskView) -> dict[str, Any] | None:
    """The camunda:connector of the task's element in its deployed model, None for a task configured
    by camunda:properties. An id shared by elements of a process and a process it calls is ambiguous
    only when their connectors differ."""
    with runtime.db.read() as session:
        spec, called = runtime.definitions.specs(session, task.definition_id)
    found: list[dict[str, Any]] = []
    for process in (spec, *called.values()):
        for task_spec in process.task_specs.values():
            if getattr(task_spec, "bpmn_id", None) != task.activity_id:
                continue
            connector = ((getattr(task_spec, "extensions", None) or {}).get(EXTENSION) or {}).get("connector")
            if connector and connector not in found:
                found.append(connector)
    if len(found) > 1:
        raise ConnectError(f"the id '{task.activity_id}' names elements with different connectors in this process "
                           "and a process it calls; give them different ids")
    return found[0] if found else None


def _context(task: ExternalTaskView) -> Callable[[], dict[str, Any]]:
    """The data of the `execution` built-in for the connector's expressions."""
    return lambda: {"instance_id": task.instance_id, "business_key": task.business_key,
                    "process_key": task.process_key, "activity_id": task.activity_id,
                    "activity_name": task.activity_name, "execution_id": task.id}


def _evaluate(parameters: list[dict[str, Any]], variables: dict[str, Any], task: ExternalTaskView,
              kind: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for parameter in parameters:
        try:
            values[parameter["name"]] = parameter_value(parameter["value"], variables, _context(task))
        except (SandboxError, ScriptError) as exc:
            raise ConnectError(f"{kind} parameter '{parameter['name']}' of the connector: {exc}") from exc
    return values


def http_call(connector: dict[str, Any], task: ExternalTaskView) -> HttpCall:
    """The request the http-connector's input parameters describe."""
    values = _evaluate(connector.get("inputs") or [], task.variables, task, "input")
    url = juel_text(values.get("url")).strip()
    method = juel_text(values.get("method")).strip().upper()
    if not url:
        raise ConnectError("http-connector needs the input parameter 'url'")
    if method not in HTTP_METHODS:
        raise ConnectError(f"http-connector method '{method}' is not supported ({', '.join(HTTP_METHODS)})")
    headers = values.get("headers") or {}
    if not isinstance(headers, dict):
        raise ConnectError("http-connector input parameter 'headers' must be a map (camunda:map)")
    headers = {str(k): juel_text(v) for k, v in headers.items()}
    payload = values.get("payload")
    body = None
    if method in BODY_METHODS and payload is not None:
        body = juel_text(payload).encode("utf-8")
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "text/plain; charset=UTF-8"  # else urllib would claim a form
    return HttpCall(url, method, headers, body)


def response_variables(status: int, body: str | None, headers: dict[str, str]) -> dict[str, Any]:
    """The http-connector's own (local) variables, as Camunda's HttpResponse names them."""
    return {"statusCode": status, "response": body, "headers": headers}


def mail(connector: dict[str, Any], task: ExternalTaskView) -> Mail:
    """The mail the mail-send connector's input parameters describe (from and fromAlias ignored)."""
    values = _evaluate(connector.get("inputs") or [], task.variables, task, "input")

    def addresses(*names: str) -> str:
        parts: list[str] = []
        for name in names:
            value = values.get(name)
            parts.extend(juel_text(v) for v in value) if isinstance(value, list) else parts.append(juel_text(value))
        return ",".join(p for p in parts if p.strip())

    return Mail(to=addresses("to"), cc=addresses("cc", "bcc"), subject=juel_text(values.get("subject")),
                text=juel_text(values.get("text")), html=juel_text(values.get("html")))


def outputs(connector: dict[str, Any], task: ExternalTaskView, response: dict[str, Any]) -> dict[str, Any]:
    """The process variables the connector's output parameters give (the response variables over the
    task's variables, as the connector's scope sits inside the task's)."""
    return _evaluate(connector.get("outputs") or [], {**task.variables, **response}, task, "output")
