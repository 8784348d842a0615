"""`/engine-rest` deployments and definition XML, as Camunda Modeler's "Deploy to Camunda 7" and
Cockpit-like tools call them: `GET /deployment` (the Modeler's connection check), `POST
/deployment/create` (multipart: any file fields, `deployment-name`, duplicate filtering) and the
process definitions' BPMN XML.

PDCA Flow has no deployment entity: each deployed definition version is its own deployment, its id
the definition's (`key:version`). Files that did not change since their latest version are not
deployed again (Camunda's `deploy-changed-only`, PDCA Flow's rule for every deploy); the answer
still lists their definitions, so a client can start the version that is current.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from engine.errors import DeploymentError, Problem
from engine.permissions import check_lead, check_lead_or_worker
from engine.runtime.diagram import locate_problems
from web import engine_rest_schemas as s
from web.context import runtime
from web.engine_rest import CamundaError, bp, caller
from web.engine_rest_runtime import definition_json, no_definition
from web.processes import uploaded_files

PARSE_ERROR = "ENGINE-09005 Could not parse BPMN process."  # the prefix Camunda Modeler recognises


def _links(deployment_id: str) -> list[dict[str, str]]:
    return [{"method": "GET", "rel": "self",
             "href": f"{request.host_url.rstrip('/')}/engine-rest/deployment/{deployment_id}"}]


def _deployment_json(definition: dict[str, Any], name: str | None = None, source: str | None = None,
                     ) -> dict[str, Any]:
    deployment_id = s.definition_id(definition["key"], definition["version"])
    return {"id": deployment_id, "name": name or definition["source_name"], "source": source,
            "deploymentTime": s.timestamp(definition["deployed_at"]), "tenantId": None,
            "links": _links(deployment_id)}


def _decision_json(d: dict[str, Any]) -> dict[str, Any]:
    return {"id": s.definition_id(d["key"], d["version"]), "key": d["key"], "category": None, "name": d["name"],
            "version": d["version"], "resource": d["source_name"], "deploymentId": s.definition_id(d["key"], d["version"]),
            "decisionRequirementsDefinitionId": None, "decisionRequirementsDefinitionKey": None, "tenantId": None,
            "versionTag": None, "historyTimeToLive": None}


def _deployments() -> list[dict[str, Any]]:
    """Every deployed definition version (each is a deployment here), newest first; for quality
    leads, admins and workers: file names and models are not every user's to read."""
    check_lead_or_worker(caller(), "read deployments")
    return sorted(runtime().definitions_list(all_versions=True), key=lambda d: (d["deployed_at"], d["key"]),
                  reverse=True)


@bp.get("/deployment")
def deployments() -> Any:
    """Deployments, newest first, filtered by `id`, `name` (the file's name) or `nameLike`, then paged
    (firstResult, maxResults); tenantIdIn matches none (no tenants here)."""
    rows = _deployments()
    if s.listed("tenantIdIn"):
        return jsonify([])
    args = request.args
    for wanted, check in ((args.get("id"), lambda d, v: s.definition_id(d["key"], d["version"]) == v),
                          (args.get("name"), lambda d, v: d["source_name"] == v),
                          (args.get("nameLike"), lambda d, v: s.meets({"n": d["source_name"] or ""}, [("n", "like", v)]))):
        if wanted is not None:
            rows = [d for d in rows if check(d, wanted)]
    skip = s.int_arg("firstResult", 0)
    return jsonify([_deployment_json(d) for d in rows[skip:skip + s.int_arg("maxResults", 1000)]])


@bp.get("/deployment/<definition_id>")
def deployment(definition_id: str) -> Any:
    found = next((d for d in _deployments() if s.definition_id(d["key"], d["version"]) == definition_id), None)
    if found is None:
        raise CamundaError(404, "InvalidRequestException", f"Deployment with id '{definition_id}' does not exist")
    return jsonify(_deployment_json(found))


def _parse_error(problems: list[Problem], files: list[tuple[str, bytes]]) -> Any:
    """Camunda's ParseException: the message lists every problem (the Modeler shows it), `details`
    each resource's errors with line and element (the element the modeler marks)."""
    lines, details = [], {}
    for name, xml in files:
        located = locate_problems(xml, [p for p in problems if p.file == name])
        if not located:
            continue
        entry = details[name] = {"errors": [], "warnings": []}
        for p in located:
            entry["errors"].append({"message": p["message"], "line": p["line"] or 0, "column": 0,
                                    "mainElementId": p["element_id"],
                                    "elementIds": [p["element_id"]] if p["element_id"] else []})
            lines.append(f"* {p['message']} | resource {name} | line {p['line'] or 0} | element {p['element']}")
    names = {name for name, _ in files}
    for p in problems:  # one no upload is named for (never expected): still listed, not lost
        if p.file not in names:
            details.setdefault(p.file, {"errors": [], "warnings": []})["errors"].append(
                {"message": p.message, "line": p.line or 0, "column": 0, "mainElementId": None, "elementIds": []})
            lines.append(f"* {p.message} | resource {p.file} | line {p.line or 0} | element {p.element}")
    response = jsonify(type="ParseException", message=f"{PARSE_ERROR} Errors: \n" + "\n".join(lines), details=details)
    response.status_code = 400
    return response


@bp.post("/deployment/create")
def create_deployment() -> Any:
    """Deploy the uploaded BPMN and DMN files (quality leads and admins). A file with a problem
    deploys nothing (400, Camunda's ParseException naming line and element)."""
    actor = caller()
    check_lead(actor, "deploy process models")
    if request.form.get("tenant-id"):
        raise CamundaError(400, "InvalidRequestException", "tenant-id: PDCA Flow has no tenants; deploy without one")
    files = uploaded_files(field=None)
    if not files:
        raise CamundaError(400, "InvalidRequestException", "No deployment resources contained in the form upload.")
    try:  # a Camunda deployment is one transaction: a problem in any file deploys none of them
        report = runtime().deploy(files, actor, all_or_nothing=True)
    except DeploymentError as exc:
        return _parse_error(exc.problems, files)
    current = {(d["key"], d["version"]): d for d in runtime().definitions_list(all_versions=True)}
    deployed = [current[(r.key, r.version)] for r in report.results if (r.key, r.version) in current]
    if not deployed:
        raise CamundaError(400, "InvalidRequestException", "the files define no executable process or decision")
    processes = {s.definition_id(d["key"], d["version"]): definition_json(d) for d in deployed if d["kind"] == "bpmn"}
    decisions = {s.definition_id(d["key"], d["version"]): _decision_json(d) for d in deployed if d["kind"] == "dmn"}
    # the deployment's id is its first process's (each version is its own deployment here)
    first = next((d for d in deployed if d["kind"] == "bpmn"), deployed[0])
    first = _deployment_json(first, request.form.get("deployment-name"), request.form.get("deployment-source"))
    return jsonify({**first, "deployedProcessDefinitions": processes or None, "deployedCaseDefinitions": None,
                    "deployedDecisionDefinitions": decisions or None,
                    "deployedDecisionRequirementsDefinitions": None})


def _xml(key: str, version: int | None, definition_id: str | None = None) -> Any:
    """The BPMN XML of a process version as deployed (its latest with `version` None), for quality
    leads, admins and workers (it holds scripts and connector settings). Camunda's answers for what
    is not there: an unknown id is 400, an unknown key 404."""
    check_lead_or_worker(caller(), "read process models")
    versions = [d["version"] for d in runtime().definitions_list(all_versions=True)
                if d["key"] == key and d["kind"] == "bpmn" and version in (None, d["version"])]
    if not versions:
        if definition_id is None:
            raise no_definition(key, None)
        raise CamundaError(400, "InvalidRequestException", f"No matching definition with id {definition_id}")
    version = max(versions)
    return jsonify(id=s.definition_id(key, version), bpmn20Xml=runtime().definition_xml(key, version))


@bp.get("/process-definition/key/<key>/xml")
def definition_xml_by_key(key: str) -> Any:
    return _xml(key, None)


@bp.get("/process-definition/<definition_id>/xml")
def definition_xml(definition_id: str) -> Any:
    found = s.definition_of(definition_id)
    if found is None:
        raise CamundaError(400, "InvalidRequestException", f"No matching definition with id {definition_id}")
    return _xml(*found, definition_id=definition_id)
