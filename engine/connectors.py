"""Built-in connectors: external-task topics the scheduler serves itself, through the same
fetch-and-lock path as any worker (engine/external_tasks.py), so they get locks, retries and
incidents like every external task.

- `pdcaflow.mail`: e-mail through the notification outbox (delivered and retried by the outbox).
  camunda:properties `to`, `cc` (comma lists), `subject`, `text`, `html`.
- `pdcaflow.http`: a JSON request to a URL allowed by PDCAFLOW_HTTP_ALLOW (scheme, host, port and
  path prefix must match; redirects are not followed), with the headers PDCAFLOW_HTTP_HEADERS gives
  that prefix. camunda:properties `url`, `method` (GET or POST, default POST), `payload` (comma
  list of variables sent as the JSON body; default all for POST), `result` (the variable that gets
  the response body, default `response`).

Property values may name process variables as `${name}` (replaced by the value's text; nothing is
evaluated). A connector failure is reported like a worker's: retries count down with back-off,
then an incident; an address outside the allow-list fails at once (retrying cannot help).

Tasks with Camunda Connect's `camunda:connector` (`http-connector`, `mail-send`) are served on these
two topics with Camunda's semantics (engine/camunda_connect.py), through the same client (`_send`),
allow-list and outbox: one place per mechanism.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from engine import camunda_connect, clock, heartbeat
from engine import external_tasks as xt
from engine.backoff import Backoff
from engine.external_task_model import HTTP_TOPIC, MAIL_TOPIC
from engine.placeholders import fill
from engine.settings import Settings
from engine.settings import current as current_settings
from engine.views import Actor
from storage.scheduling import NotificationOutbox

if TYPE_CHECKING:
    from engine.runtime.facade import Runtime

log = logging.getLogger("pdcaflow.connectors")
MAIL, HTTP = MAIL_TOPIC, HTTP_TOPIC
CONNECTORS = Actor.system("connectors")
BATCH = 50
ROUNDS = 10
_ADDRESS = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
MAX_BODY = 1_000_000  # bytes of a response kept in a variable


class ConnectorError(Exception):
    """The connector could not do its work; `final` when retrying cannot help."""

    def __init__(self, message: str, *, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


@dataclass
class ConnectorPass:
    completed: int = 0
    failed: int = 0
    incidents: list[str] = field(default_factory=list)


def run_connectors(runtime: Runtime, worker: str, settings: Settings | None = None,
                   http_open: Callable[..., Any] | None = None) -> ConnectorPass:
    """One scheduler step: serve the built-in topics until none has fetchable work (bounded)."""
    settings = settings or current_settings()
    result = ConnectorPass()
    handlers: dict[str, Callable[[Runtime, xt.ExternalTaskView], dict[str, Any]]] = {
        MAIL: _mail,
        HTTP: lambda rt, task: _http(rt, task, settings, http_open or _no_redirect_opener().open),
    }
    worker_id = heartbeat.connector_worker(worker)
    for _ in range(ROUNDS):  # a completed task may lead to the next connector task (http, then mail)
        fetched = 0
        for topic, handler in handlers.items():
            lock_ms = int(heartbeat.lease_length().total_seconds() * 1000)
            tasks = xt.fetch_and_lock(runtime, CONNECTORS, worker_id, [xt.TopicRequest(topic, lock_ms)],
                                      max_tasks=BATCH)
            fetched += len(tasks)
            for task in tasks:
                _serve(runtime, worker_id, topic, handler, task, settings, result)
        if not fetched:
            break
    return result


def _serve(runtime: Runtime, worker_id: str, topic: str, handler: Callable[..., dict[str, Any]],
           task: xt.ExternalTaskView, settings: Settings, result: ConnectorPass) -> None:
    try:
        variables = handler(runtime, task)
    except ConnectorError as exc:
        _fail(runtime, worker_id, task, str(exc), exc.final, settings, result)
        return
    except Exception as exc:  # a bug must not stop the scheduler; the task retries
        log.exception("connector %s failed on task %s", topic, task.id)
        _fail(runtime, worker_id, task, f"{type(exc).__name__}: {exc}", False, settings, result)
        return
    xt.complete(runtime, CONNECTORS, task.id, worker_id, variables)
    result.completed += 1


def _fail(runtime: Runtime, worker_id: str, task: xt.ExternalTaskView, message: str, final: bool,
          settings: Settings, result: ConnectorPass) -> None:
    attempts_left = max(1, settings.connector_retries) if task.retries is None else task.retries
    retries = 0 if final else attempts_left - 1
    used = max(1, settings.connector_retries) - retries
    delay = Backoff(timedelta(seconds=settings.connector_backoff)).delay(used)
    log.warning("connector task %s (%s) failed, %d retries left: %s", task.id, task.topic, retries, message)
    xt.handle_failure(runtime, CONNECTORS, task.id, worker_id, message[:2000], None, retries,
                      int(delay.total_seconds() * 1000))
    result.failed += 1
    if retries == 0:
        result.incidents.append(task.instance_id)


# ---------------------------------------------------------------------- pdcaflow.mail
def _addresses(text: str, what: str) -> list[str]:
    out = [a.strip() for a in re.split(r"[,;]", text) if a.strip()]
    bad = [a for a in out if not _ADDRESS.match(a)]
    if bad:
        raise ConnectorError(f"{what}: '{bad[0]}' is not an e-mail address", final=True)
    return out


def _mail(runtime: Runtime, task: xt.ExternalTaskView) -> dict[str, Any]:
    connector = _camunda_connector(runtime, task)
    if connector is not None:  # mail-send: input parameters evaluated, then its output parameters
        mail = _connect(camunda_connect.mail, connector, task)
        _queue_mail(runtime, task, mail.to, mail.cc, mail.subject, mail.text, mail.html,
                    ("mail-send", "input parameter"))
        return _connect(camunda_connect.outputs, connector, task, {})
    props, data = task.properties, task.variables
    _queue_mail(runtime, task, fill(props.get("to"), data), fill(props.get("cc"), data), fill(props.get("subject"), data),
                fill(props.get("text"), data), fill(props.get("html"), data), (MAIL, "camunda:property"))
    return {}


def _queue_mail(runtime: Runtime, task: xt.ExternalTaskView, to_text: str, cc_text: str, subject: str, text: str,
                html: str, named: tuple[str, str]) -> None:
    """One outbox mail per address (the outbox delivers and retries them); `named`: the connector and
    what its settings are called, for the messages."""
    who, what = named
    to = _addresses(to_text, "to")
    cc = _addresses(cc_text, "cc")
    subject = subject.strip()
    if not to:
        raise ConnectorError(f"{who} needs a recipient: {what} 'to'", final=True)
    if not subject or not (text or html):
        raise ConnectorError(f"{who} needs {what}s 'subject' and 'text' or 'html'", final=True)
    now = clock.now()
    with runtime.db.write() as session:
        for address in dict.fromkeys(to + cc):
            dedupe = f"xt:{task.id}:{address}"[:200]
            exists = session.query(NotificationOutbox.id).filter(NotificationOutbox.dedupe_key == dedupe).first()
            if exists is None:  # a retried task (e.g. lost lock) queues each mail once
                session.add(NotificationOutbox(
                    dedupe_key=dedupe, kind="connector_mail", username=None, address=address, subject=subject[:255],
                    body_text=text or _strip_tags(html), body_html=html or None, task_id=task.id,
                    instance_id=task.instance_id, state="pending", attempts=0, next_attempt_at=now, created_at=now))


def _strip_tags(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


# ---------------------------------------------------------------------- pdcaflow.http
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect could leave the allow-list: it is an error response instead


def _no_redirect_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect)


def _origin(url: str) -> tuple[str, str, int | None, str]:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port, parts.path or "/"


def allowed(url: str, allow: tuple[str, ...]) -> str | None:
    """The allow-list entry `url` falls under (same scheme, host and port; path under its path)."""
    scheme, host, port, path = _origin(url)
    if scheme not in ("http", "https") or not host:
        return None
    for entry in allow:
        e_scheme, e_host, e_port, e_path = _origin(entry)
        prefix = e_path if e_path.endswith("/") else e_path + "/"
        if (scheme, host, port) == (e_scheme, e_host, e_port) and (path == e_path or path.startswith(prefix)
                                                                   or e_path == "/"):
            return entry
    return None


@dataclass
class _Answer:
    status: int
    headers: dict[str, str]
    kind: str  # the content type without parameters
    text: str | None  # None when the answer has no body (Camunda's response is null then)


def _send(url: str, method: str, headers: dict[str, str], body: bytes | None, settings: Settings,
          http_open: Callable[..., Any]) -> _Answer:
    """The one HTTP client of the connectors: only URLs under PDCAFLOW_HTTP_ALLOW (else a final error,
    no request), with the headers configured for that prefix over the caller's, redirects not followed.
    Any status is an answer; failing to get one is a ConnectorError (retried)."""
    if allowed(url, settings.http_allow) is None:
        raise ConnectorError(f"{url} is not allowed: PDCAFLOW_HTTP_ALLOW does not list it", final=True)
    headers = dict(headers)
    for prefix, extra in settings.http_headers:
        if allowed(url, (prefix,)):
            headers.update(dict(extra))
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        try:
            response = http_open(request, timeout=settings.http_timeout)
        except urllib.error.HTTPError as exc:  # a status outside 2xx (a redirect too: not followed)
            response = exc
        with response:
            raw = response.read(MAX_BODY + 1) if response.fp is not None else b""
            status, message = response.status, response.headers
    except (urllib.error.URLError, OSError) as exc:
        raise ConnectorError(f"{method} {url} failed: {getattr(exc, 'reason', exc)}") from exc
    if len(raw) > MAX_BODY:
        raise ConnectorError(f"{method} {url}: the response is larger than {MAX_BODY} bytes", final=True)
    try:
        text = raw.decode(message.get_content_charset() or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        text = raw.decode("utf-8", errors="replace")
    empty = not raw and (method == "HEAD" or status in (204, 304))
    return _Answer(int(status), dict(message.items()), message.get_content_type(), None if empty else text)


def _http(runtime: Runtime, task: xt.ExternalTaskView, settings: Settings,
          http_open: Callable[..., Any]) -> dict[str, Any]:
    connector = _camunda_connector(runtime, task)
    if connector is not None:
        return _camunda_http(task, connector, settings, http_open)
    props, data = task.properties, task.variables
    url = fill(props.get("url"), data).strip()
    if not url:
        raise ConnectorError("pdcaflow.http needs camunda:property 'url'", final=True)
    method = (props.get("method") or "POST").strip().upper()
    if method not in ("GET", "POST"):
        raise ConnectorError(f"pdcaflow.http method '{method}' is not supported (GET or POST)", final=True)
    headers = {"Accept": "application/json"}
    body = None
    if method == "POST":
        names = [n.strip() for n in (props.get("payload") or "").split(",") if n.strip()]
        payload = {n: data.get(n) for n in names} if names else data
        body = json.dumps(payload, default=str).encode()
        headers["Content-Type"] = "application/json"
    answer = _send(url, method, headers, body, settings, http_open)
    if not 200 <= answer.status < 300:
        raise ConnectorError(f"{method} {url} answered HTTP {answer.status}")
    value: Any = answer.text
    if answer.kind == "application/json" or answer.kind.endswith("+json"):
        try:
            value = json.loads(answer.text) if answer.text else None
        except ValueError as exc:
            raise ConnectorError(f"{method} {url}: the JSON response does not parse") from exc
    return {(props.get("result") or "response").strip(): value}


# ---------------------------------------------------------------------- camunda:connector
def _camunda_connector(runtime: Runtime, task: xt.ExternalTaskView) -> dict[str, Any] | None:
    return _connect(lambda: camunda_connect.config_of(runtime, task))


def _connect(step: Callable[..., Any], *args: Any) -> Any:
    """A step of engine/camunda_connect.py; what it cannot do fails the task at once (an incident)."""
    try:
        return step(*args)
    except camunda_connect.ConnectError as exc:
        raise ConnectorError(str(exc), final=True) from exc


def _camunda_http(task: xt.ExternalTaskView, connector: dict[str, Any], settings: Settings,
                  http_open: Callable[..., Any]) -> dict[str, Any]:
    """Camunda's http-connector: any status is a response (statusCode), mapped by the output parameters."""
    call = _connect(camunda_connect.http_call, connector, task)
    answer = _send(call.url, call.method, call.headers, call.body, settings, http_open)
    response = camunda_connect.response_variables(answer.status, answer.text, answer.headers)
    return _connect(camunda_connect.outputs, connector, task, response)
