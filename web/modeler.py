"""The BPMN modeler of quality leads (issue 13): `/processes/<key>/edit` opens a deployed version or
the lead's draft, `/processes/new` a template; drafts are saved on the server (engine/drafts.py);
Validate runs the checks `pdcaflow deploy` runs without deploying (Runtime.validate) and compares
the diagram with the deployed latest version (elements added, removed, changed); Deploy
makes the next version. The page is bpmn-js's Modeler with Camunda's moddle (web/static/modeler.js)."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, jsonify, make_response, redirect, render_template, request, url_for
from flask_login import login_required

from engine import drafts
from engine.errors import EngineError
from engine.model_templates import TEMPLATES, new_model
from engine.runtime.diagram import compare_models, locate_problems
from web import CSP
from web.context import actor, database, lead_required, runtime

bp = Blueprint("modeler", __name__)
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,254}")


def _xml_in() -> bytes:
    body = request.get_json(silent=True) or {}
    xml = body.get("xml")
    if not isinstance(xml, str) or not xml.strip():
        abort(400, "send the diagram as JSON: {\"xml\": \"<bpmn:definitions …>\"}")
    return xml.encode("utf-8")


def _page(key: str, xml: str, *, version: int | None, source: str, draft: dict[str, Any] | None) -> Any:
    return render_template("modeler.html", key=key, version=version, source=source, draft=draft,
                           model={"xml": xml, "key": key, "version": version})


@bp.get("/processes/new")
@login_required
@lead_required
def new() -> Any:
    """Without a key: choose key, name and template. With one: the modeler on that template (or on
    the lead's draft of that key)."""
    key = (request.args.get("key") or "").strip()
    if not key:
        return render_template("modeler_new.html", templates=TEMPLATES, drafts=drafts.of_user(database(), actor()))
    if not KEY.fullmatch(key):
        abort(400, "a process key starts with a letter or _ and holds letters, digits, _ . and - only")
    draft = drafts.get(database(), actor(), key)
    if draft:
        return _page(key, draft["xml"], version=draft["base_version"], source="draft", draft=draft)
    name = (request.args.get("name") or "").strip()[:255] or key
    return _page(key, new_model(request.args.get("template") or "blank", key, name), version=None,
                 source="template", draft=None)


@bp.get("/processes/<key>/edit")
@login_required
@lead_required
def edit(key: str) -> Any:
    """A deployed version (latest unless ?version=N), or the lead's draft of it (?source=draft)."""
    version = request.args.get("version", type=int)
    draft = drafts.get(database(), actor(), key)
    if draft and request.args.get("source") != "deployed" and version is None:
        return _page(key, draft["xml"], version=draft["base_version"], source="draft", draft=draft)
    try:
        xml = runtime().definition_xml(key, version)
    except EngineError:
        abort(404, f"process '{key}' is not deployed" + (f" in version {version}" if version else ""))
    if version is None:
        version = max(d["version"] for d in runtime().definitions_list(all_versions=True)
                      if d["key"] == key and d["kind"] == "bpmn")
    return _page(key, xml, version=version, source="deployed", draft=draft)


@bp.post("/processes/<key>/draft")
@login_required
@lead_required
def save_draft(key: str) -> Any:
    body = request.get_json(silent=True) or {}
    drafts.save(database(), actor(), key, _xml_in().decode("utf-8"), body.get("base_version"))
    return jsonify(saved=True, key=key)


@bp.post("/processes/<key>/draft/discard")
@login_required
@lead_required
def discard_draft(key: str) -> Any:
    drafts.discard(database(), actor(), key)
    return redirect(url_for("modeler.edit", key=key, source="deployed"))


@bp.post("/modeler/validate")
@login_required
@lead_required
def validate() -> Any:
    """Every error and warning `pdcaflow deploy` would report, each with the element to mark."""
    xml = _xml_in()
    report = runtime().validate([("diagram.bpmn", xml)], actor())
    problems = locate_problems(xml, report.problems + report.warnings)
    return jsonify(ok=report.ok, problems=problems, compare=_compared(xml))


def _compared(xml: bytes) -> dict[str, Any] | None:
    """The diagram against the deployed latest version of its key (sent as "key"), if there is one."""
    key = (request.get_json(silent=True) or {}).get("key")
    versions = [d["version"] for d in runtime().definitions_list(all_versions=True)
                if d["key"] == key and d["kind"] == "bpmn"]
    if not versions:
        return None
    return {"version": max(versions), **compare_models(runtime().definition_xml(key, max(versions)), xml)}


@bp.post("/modeler/deploy")
@login_required
@lead_required
def deploy() -> Any:
    """Deploy the diagram as the next version of its process; 422 with the problems when refused."""
    xml = _xml_in()
    body = request.get_json(silent=True) or {}
    key = body.get("key") or "diagram"
    safe = "".join(c for c in str(key) if c.isalnum() or c in "-_.")[:200] or "diagram"
    suffix = ".dmn" if body.get("kind") == "dmn" else ".bpmn"
    report = runtime().deploy([(f"{safe}{suffix}", xml)], actor())
    problems = locate_problems(xml, report.problems + report.warnings)
    if report.problems:
        return jsonify(ok=False, problems=problems), 422
    for result in report.results:
        drafts.discard(database(), actor(), result.key)
    results = [{"key": r.key, "version": r.version, "unchanged": r.unchanged, "kind": r.kind,
                "url": url_for("processes.show", key=r.key, version=r.version) if r.kind == "bpmn"
                else url_for("modeler.edit_decision", key=r.key)} for r in report.results]
    return jsonify(ok=True, results=results, problems=problems), 201 if any(not r.unchanged for r in report.results) else 200


# ---------------------------------------------------------------------------------------- DMN
@bp.get("/decisions/<key>/edit")
@login_required
@lead_required
def edit_decision(key: str) -> Any:
    """dmn-js on the latest deployed DMN document of decision KEY, with a form to try the decision."""
    try:
        xml = runtime().decision_xml(key)
        inputs = runtime().decision_inputs(key)
    except EngineError:
        abort(404, f"decision '{key}' is not deployed")
    page = make_response(render_template("dmn_modeler.html", key=key, inputs=inputs, model={"xml": xml, "key": key}))
    # dmn-js renders style attributes in its markup (decision-table menus, DRD), which a strict
    # style-src blocks; this page alone allows inline styles. Scripts stay 'self' only.
    page.headers["Content-Security-Policy"] = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
    return page


@bp.post("/decisions/<key>/evaluate")
@login_required
def evaluate_decision(key: str) -> Any:
    """The page-side twin of POST /api/v1/decisions/{key}/evaluate (session and CSRF instead of a
    bearer token): {"variables": {...}} -> {"result": [...]}, on the latest deployed version."""
    variables = (request.get_json(silent=True) or {}).get("variables") or {}
    if not isinstance(variables, dict):
        abort(400, "variables must be a JSON object")
    return jsonify(result=runtime().evaluate_decision(key, variables, actor()))
