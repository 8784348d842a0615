"""REST API under /api/v1 (its contract: see ARCHITECTURE.md). Bearer tokens only (no session
cookies), so the API is exempt from CSRF; every error is `{"error": {"code", "message", "details"}}`
via web.errors."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request, url_for

from engine import accounts, case_notes, directory
from engine import schedules as timer_starts
from engine.cases import TASK_SORTS
from engine.credentials import revoke_all
from engine.errors import NotFoundError
from engine.forms import invalid
from engine.inbox import resolve_process
from engine.intake import validate_intake
from engine.permissions import check_admin, check_may_see_instance
from engine.runtime.tasks import DUE_FILTERS
from engine.views import Actor
from web import schemas as s
from web.attachments import send_attachment, uploaded_attachments
from web.complaints import complaint_form, file_complaint
from web.context import database, runtime, sign_in
from web.diagram import instance_diagram as diagram_data
from web.errors import ApiError
from web.openapi import document
from web.processes import uploaded_files
from web.status import lookup_status

bp = Blueprint("api", __name__, url_prefix="/api/v1")

_NOTIFICATION_ID = re.compile(r"[0-9]{1,18}")


@bp.before_request
def _bearer() -> None:
    g.api_actor = None
    header = request.headers.get("Authorization", "")
    if not header:
        return
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "use 'Authorization: Bearer <token>'")
    a = directory.actor_for_token(database(), token.strip())
    if a is None:
        raise ApiError(401, "the token is invalid, expired or revoked")
    g.api_actor = a


def signed_in() -> Actor:
    a = g.get("api_actor")
    if a is None:
        raise ApiError(401, "a bearer token is required (POST /api/v1/auth/token)")
    return a


def lead() -> Actor:
    a = signed_in()
    if not a.is_lead:
        raise ApiError(403, "only quality leads and admins may do this")
    return a


def body() -> Any:
    """The request's JSON ({} without a body). A body of another kind (a form, as `curl -d` sends, or
    text) is refused with 415 rather than read as nothing: its values would be lost without a word.
    `get_data`, not `request.data`: that one runs the form parser first, a third of the cost of reading
    a JSON body on every API write."""
    if not request.get_data(cache=True):
        return {}
    if not request.is_json:
        raise ApiError(415, f"send the body as JSON (Content-Type: application/json), not "
                            f"{request.mimetype or 'without a Content-Type'}")
    payload = request.get_json(silent=True)
    if payload is None:
        raise ApiError(400, "the request body is not valid JSON")
    return payload


def _flag(name: str) -> bool:
    return request.args.get(name, "").lower() in ("1", "true", "yes")


@bp.post("/auth/token")
def token() -> Any:
    data = s.load(s.TokenRequest, body())
    credential = sign_in(data["username"], data["password"])  # 429 (RateLimitedError) before any hashing
    if credential is None:
        raise ApiError(401, "unknown user name or wrong password")
    value, expires = directory.issue_token(database(), credential)
    return jsonify(token=value, expires_at=expires.isoformat())


@bp.get("/processes")
def processes() -> Any:
    signed_in()
    rows = runtime().definitions_list(all_versions=_flag("all"))
    return jsonify([{"key": d["key"], "version": d["version"], "name": d["name"], "kind": d["kind"],
                     "deployed_at": d["deployed_at"].isoformat()} for d in rows])


@bp.post("/processes")
def deploy() -> Any:
    a = lead()
    files = uploaded_files()
    if not files and request.mimetype in ("application/xml", "text/xml", "application/octet-stream"):
        name = (request.args.get("name") or "upload.bpmn").replace("\\", "/").rsplit("/", 1)[-1][:200]
        files = [(name, request.get_data())]
    if not files:
        raise ApiError(400, "send the file as multipart field 'file' or as an XML body")
    report = runtime().deploy(files, a)
    if report.problems:
        raise ApiError(422, f"{len(report.problems)} problem(s); nothing was deployed from the files listed",
                       [p.as_dict() for p in report.problems], code="invalid_definition")
    # Still the list of results; each carries the warnings of the file it came from.
    result = [{"key": r.key, "version": r.version, "unchanged": r.unchanged,
               "warnings": [w.as_dict() for w in report.warnings_of(r.file)]} for r in report.results]
    return jsonify(result), 200 if all(r.unchanged for r in report.results) else 201


@bp.post("/processes/<key>/instances")
def start(key: str) -> Any:
    a = lead()
    data = s.load(s.StartRequest, body())
    instance = runtime().start(key, data["data"], a, version=data.get("version"),
                               business_key=data.get("business_key"))
    return jsonify(id=instance.id, key=instance.key, version=instance.version, status=instance.status,
                   business_key=instance.business_key), 201


@bp.get("/instances/<instance_id>")
def instance(instance_id: str) -> Any:
    a = signed_in()
    return jsonify(s.instance_json(check_may_see_instance(a, runtime().instance(instance_id))))


@bp.get("/instances/<instance_id>/comments")
def comments(instance_id: str) -> Any:
    return jsonify(s.CommentSchema(many=True).dump(case_notes.comments(runtime(), signed_in(), instance_id)))


@bp.post("/instances/<instance_id>/comments")
def add_comment(instance_id: str) -> Any:
    a = signed_in()
    check_may_see_instance(a, runtime().instance(instance_id))  # 404 before any word on the body
    data = s.load(s.CommentRequest, body())
    return jsonify(s.CommentSchema().dump(case_notes.add_comment(runtime(), a, instance_id, data["body"]))), 201


@bp.post("/instances/<instance_id>/attachments")
def add_attachments(instance_id: str) -> Any:
    """Multipart field `file` (one or more files); each is checked (size, sniffed type) before any is stored."""
    a = signed_in()
    check_may_see_instance(a, runtime().instance(instance_id))
    uploads = uploaded_attachments()
    if not uploads:
        raise ApiError(422, "send the file as multipart field 'file'", [{"field": "file", "message": "is required"}])
    stored = case_notes.attach(runtime(), a, instance_id, uploads)
    return jsonify(s.AttachmentSchema(many=True).dump(stored)), 201


@bp.get("/instances/<instance_id>/attachments")
def attachments(instance_id: str) -> Any:
    return jsonify(s.AttachmentSchema(many=True).dump(case_notes.attachments(runtime(), signed_in(), instance_id)))


@bp.get("/attachments/<attachment_id>")
def attachment(attachment_id: str) -> Any:
    return send_attachment(signed_in(), attachment_id)


@bp.get("/instances/<instance_id>/diagram")
def instance_diagram(instance_id: str) -> Any:
    """What the instance page's viewer draws: the definition XML, each element's state (completed,
    active, waiting with due/topic, incident) with its visible tasks and open incidents, flows taken."""
    a = signed_in()
    diagram = diagram_data(a, check_may_see_instance(a, runtime().instance(instance_id)))
    if diagram is None:
        raise NotFoundError(f"the definition of instance {instance_id} is not deployed")
    return jsonify(diagram)


def _bounded_int(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(422, f"{name} must be a whole number from {low} to {high}",
                       [{"field": name, "message": f"must be a whole number from {low} to {high}"}])
    return value


@bp.get("/tasks")
def tasks() -> Any:
    """Filters, sorts and pages of the task list; a `Link: <...>; rel="next"` header when there is more."""
    a = signed_in()
    state = _choice("state", ("open", "claimed", "completed", "cancelled"))
    sort = _choice("sort", TASK_SORTS) or "due"
    due = _choice("due", DUE_FILTERS)
    limit = _bounded_int("limit", 200, 1, 500)
    offset = _bounded_int("offset", 0, 0, 1_000_000)
    min_priority = _bounded_int("min_priority", -1, 0, 1_000_000) if request.args.get("min_priority") else None
    process = request.args.get("process") or None
    rows = runtime().tasks(a, state=state, mine=_flag("mine"), process_key=resolve_process(database(), process),
                           overdue=_flag("overdue"), unassigned=_flag("unassigned"),
                           q=(request.args.get("q") or "").strip()[:200] or None, sort=sort, limit=limit + 1,
                           offset=offset, group=request.args.get("group") or None,
                           assignee=request.args.get("assignee") or None, due=due, min_priority=min_priority)
    response = jsonify([s.task_json(t) for t in rows[:limit]])
    if len(rows) > limit:  # one more than asked for: there is a next page
        args = {**request.args.to_dict(), "limit": str(limit), "offset": str(offset + limit)}
        response.headers["Link"] = f'<{url_for("api.tasks", _external=True, **args)}>; rel="next"'
    return response


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    """The query parameter `name`, one of `allowed` (else 422 naming it), or None when absent."""
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        message = "must be one of " + ", ".join(allowed)
        raise ApiError(422, f"{name} {message}", [{"field": name, "message": message}])
    return value


@bp.get("/tasks/<task_id>")
def task(task_id: str) -> Any:
    return jsonify(s.task_json(runtime().task(task_id, signed_in()), detail=True, database=database()))


@bp.post("/tasks/<task_id>/claim")
def claim(task_id: str) -> Any:
    return jsonify(s.task_json(runtime().claim(task_id, signed_in())))


@bp.post("/tasks/<task_id>/due")
def due(task_id: str) -> Any:
    data = s.load(s.DueDateRequest, body())
    return jsonify(s.task_json(runtime().set_due_date(task_id, lead(), data["due_at"])))


@bp.post("/tasks/<task_id>/assign")
def assign(task_id: str) -> Any:
    data = s.load(s.AssignRequest, body())
    return jsonify(s.task_json(runtime().assign(task_id, lead(), data["assignee"] or None)))


@bp.post("/tasks/<task_id>/unclaim")
def unclaim(task_id: str) -> Any:
    return jsonify(s.task_json(runtime().unclaim(task_id, signed_in())))


@bp.post("/tasks/<task_id>/complete")
def complete(task_id: str) -> Any:
    a = signed_in()
    data = s.load(s.CompleteRequest, body())
    return jsonify(instance=s.instance_json(runtime().complete(task_id, a, data["data"])))


@bp.post("/complaints")
def complaint() -> Any:
    payload = body()
    if not isinstance(payload, dict):
        raise ApiError(400, "the request body must be a JSON object")
    fields = complaint_form()
    if fields is None:
        raise ApiError(503, "complaints cannot be received right now")
    _, problems = validate_intake(fields, payload)  # the complaint process's start form (422 names the fields)
    if problems:
        raise invalid(problems)
    try:  # counts under the client address's complaint limit first (429 with Retry-After)
        reference, inst = file_complaint(fields, payload, "api")
    except NotFoundError as exc:
        raise ApiError(503, "complaints cannot be received right now") from exc
    return jsonify(reference=reference, instance_id=inst.id), 201


@bp.get("/complaints/<reference>")
def complaint_status(reference: str) -> Any:
    """Public: the status of a complaint, for its reference and the customer's e-mail address."""
    email = (request.args.get("email") or "").strip()
    if not email:
        raise ApiError(422, "email is required", [{"field": "email", "message": "is required"}])
    result = lookup_status(reference, email)
    if result is None:  # unknown reference and wrong address answer alike
        raise ApiError(404, "no complaint with this reference and e-mail address")
    return jsonify(result)


@bp.post("/messages")
def message() -> Any:
    a = lead()
    data = s.load(s.MessageRequest, body())
    ids = runtime().correlate_message(data["name"], data.get("correlation"), data["data"], a)
    return jsonify(instance_ids=ids)


@bp.post("/decisions/<key>/evaluate")
def evaluate_decision(key: str) -> Any:
    a = signed_in()
    data = s.load(s.DecisionEvaluateRequest, body())
    return jsonify(result=runtime().evaluate_decision(key, data["variables"], a, version=data.get("version")))


@bp.post("/signals")
def signal() -> Any:
    a = signed_in()
    if not (a.is_lead or a.role == "worker"):
        raise ApiError(403, "only quality leads, admins and workers may send signals")
    data = s.load(s.SignalRequest, body())
    return jsonify(instance_ids=runtime().signal(data["name"], data["data"], a))


@bp.get("/schedules")
def schedules() -> Any:
    lead()
    state = request.args.get("state") or None
    if state not in (None, *timer_starts.STATES):
        allowed = ", ".join(timer_starts.STATES)
        raise ApiError(422, f"state must be one of {allowed}", [{"field": "state", "message": f"must be one of {allowed}"}])
    return jsonify([v.as_dict() for v in timer_starts.list_schedules(database(), state)])


@bp.post("/schedules/<key>/retry")
def retry_schedule(key: str) -> Any:
    return jsonify(timer_starts.retry_schedule(database(), key, lead()).as_dict())


@bp.get("/notifications")
def notifications() -> Any:
    from engine.notifications import notifications_for

    return jsonify(notifications_for(database(), signed_in().username, unread_only=_flag("unread")))


@bp.post("/notifications/read")
def notifications_read() -> Any:
    from engine.notifications import mark_read

    data = s.load(s.MarkReadRequest, body())
    ids = data.get("ids")
    if ids is not None:
        # ids are opaque strings to clients; one that is not a stored (integer) id matches nothing
        ids = [int(i) for i in ids if _NOTIFICATION_ID.fullmatch(i)]
    changed = mark_read(database(), signed_in().username, ids)
    return jsonify(marked=changed)


@bp.get("/kpis")
def kpis() -> Any:
    from engine.kpis import build_query, compute

    lead()
    return jsonify(compute(database(), build_query(request.args, current_app.config["TIMEZONE"])))


# ---------------------------------------------------------------------- users and API tokens (admins)
def _user_json(user: dict[str, Any]) -> dict[str, Any]:
    return s.UserSchema().dump(user)


@bp.get("/users")
def users() -> Any:
    check_admin(signed_in(), "list users")
    return jsonify([_user_json(u) for u in accounts.list_users(database())])


@bp.post("/users")
def create_user() -> Any:
    check_admin(signed_in(), "create users")
    data = s.load(s.UserCreateRequest, body())
    user = accounts.create_user(database(), data["username"], data["role"], data["password"],
                                email=data.get("email"), groups=data.get("groups"))
    return jsonify(_user_json(user)), 201


@bp.get("/users/<name>")
def user(name: str) -> Any:
    check_admin(signed_in(), "read accounts")
    return jsonify(_user_json(accounts.user_info(database(), name)))


@bp.patch("/users/<name>")
def update_user(name: str) -> Any:
    by = signed_in()
    check_admin(by, "change users")
    data = s.load(s.UserUpdateRequest, body())
    if "email" in data and data["email"] is None:
        data["email"] = ""  # null clears the address
    return jsonify(_user_json(accounts.update_user(database(), name, by, **data)))


@bp.get("/users/<name>/tokens")
def user_tokens(name: str) -> Any:
    check_admin(signed_in(), "list API tokens")
    return jsonify(s.ApiTokenSchema(many=True).dump(directory.user_tokens(database(), name)))


@bp.delete("/users/<name>/tokens")
def revoke_user_tokens(name: str) -> Any:
    check_admin(signed_in(), "revoke API tokens")
    return jsonify(revoked=revoke_all(database(), name))


@bp.delete("/tokens/<token_id>")
def revoke_token(token_id: str) -> Any:
    check_admin(signed_in(), "revoke API tokens")
    directory.revoke_token_id(database(), token_id)
    return "", 204


@bp.get("/openapi.json")
def openapi() -> Any:
    # the complaint body is the configured complaint process's start form
    return jsonify(document(complaint_form(log=False)))
