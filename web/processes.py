"""Process definitions for quality leads: versions, upload, start, XML download, and timer starts
(a timer start whose every attempt failed is in incident here until the lead retries it)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required

from engine.errors import FormValidationError
from engine.intake import start_form
from engine.schedules import list_schedules, retry_schedule
from web.context import actor, database, lead_required, runtime
from web.diagram import definition_diagram

bp = Blueprint("processes", __name__)

ALLOWED_SUFFIXES = (".bpmn", ".dmn", ".xml")


def uploaded_files(field: str | None = "file") -> list[tuple[str, bytes]]:
    """The request's uploaded files (name without folders, content): those of `field`, or with None
    of every field (Camunda's deployment/create names each field after its file)."""
    files = []
    uploads = request.files.getlist(field) if field else [u for _, u in request.files.items(multi=True)]
    for upload in uploads:
        if not upload or not upload.filename:
            continue
        name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:200]
        files.append((name, upload.read()))
    return files


@bp.get("/processes")
@login_required
@lead_required
def index(problems: list[Any] | None = None, results: list[Any] | None = None, status: int = 200) -> Any:
    definitions = runtime().definitions_list(all_versions=True)
    latest = {d["key"]: d["version"] for d in definitions}
    return render_template("processes.html", definitions=definitions, latest=latest, problems=problems or [],
                           results=results or [], schedules=list_schedules(database())), status


@bp.post("/processes")
@login_required
@lead_required
def upload() -> Any:
    files = uploaded_files()
    bad = [n for n, _ in files if not n.lower().endswith(ALLOWED_SUFFIXES)]
    if not files or bad:
        flash("Choose one or more .bpmn or .dmn files." if not bad else f"Not a BPMN/DMN file: {bad[0]}", "error")
        return index(status=400)
    report = runtime().deploy(files, actor())
    for r in report.results:
        flash(f"{r.key} v{r.version} {'unchanged' if r.unchanged else 'deployed'}")
    for w in report.warnings:  # the files deployed; what is ignored or defaulted at run time
        flash(str(w), "warning")
    if report.problems:
        return index(problems=report.problems, results=report.results, status=422)
    return redirect(url_for("processes.index"))


def _versions(key: str) -> list[dict[str, Any]]:
    return [d for d in runtime().definitions_list(all_versions=True) if d["key"] == key and d["kind"] == "bpmn"]


@bp.get("/processes/<key>")
@login_required
def show(key: str, values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
         status: int = 200) -> Any:
    """One process: the diagram of the chosen version with Cockpit-style counts per element, the
    versions (who deployed what, when), download, and Start through the start event's form.
    Everyone signed in may look; starting, editing and deploying are for quality leads."""
    versions = _versions(key)
    if not versions:
        abort(404, f"process '{key}' is not deployed")
    version = request.values.get("version", type=int) or versions[-1]["version"]
    if version not in {v["version"] for v in versions}:
        abort(404, f"process '{key}' has no version {version}")
    counts = runtime().element_counts(key, version)
    diagram = definition_diagram(key, version, counts=counts["counts"])
    return render_template("process.html", key=key, version=version, versions=versions, counts=counts,
                           diagram=diagram, fields=start_form(runtime(), key, version),
                           values=values or {}, errors=errors or {}), status


def _submitted(fields: list[dict[str, Any]]) -> dict[str, Any]:
    """The start form's inputs as sent (an unchecked box is not sent: it means false)."""
    out: dict[str, Any] = {}
    for f in fields:
        if f.get("readonly"):
            continue
        if f["type"] == "boolean":
            out[f["id"]] = f["id"] in request.form
        elif f["id"] in request.form and (request.form[f["id"]] != "" or f.get("required")):
            out[f["id"]] = request.form[f["id"]]
    return out


@bp.post("/processes/<key>/start")
@login_required
@lead_required
def start(key: str) -> Any:
    """Start from the process page's start form, or (no form fields sent) from JSON start data."""
    version = request.form.get("version", type=int)
    business_key = (request.form.get("business_key") or "").strip() or None
    if "data" in request.form:
        raw = (request.form.get("data") or "").strip()
        try:
            data = json.loads(raw) if raw else {}
        except json.JSONDecodeError as exc:
            flash(f"Start data is not valid JSON: {exc.msg} (line {exc.lineno})", "error")
            return index(status=422)
        if not isinstance(data, dict):
            flash("Start data must be a JSON object, e.g. {\"reference\": \"C-1\"}.", "error")
            return index(status=422)
        try:
            instance = runtime().start(key, data, actor(), business_key=business_key, version=version)
        except FormValidationError as exc:  # the process's start form refused the data
            for d in exc.details:
                flash(f"Start data: {d.get('field') or 'data'} {d.get('message', '')}", "error")
            return index(status=422)
    else:
        data = _submitted(start_form(runtime(), key, version))
        try:
            instance = runtime().start(key, data, actor(), business_key=business_key, version=version)
        except FormValidationError as exc:
            errors = {d.get("field") or "": d.get("message", "") for d in exc.details}
            return show(key, values=dict(request.form), errors=errors, status=422)
    flash(f"Started {key} v{instance.version}.")
    return redirect(url_for("instances.show", instance_id=instance.id))


@bp.get("/processes/<key>/v<int:version>.xml")
@login_required
@lead_required
def download(key: str, version: int) -> Any:
    xml = runtime().definition_xml(key, version)
    safe = "".join(c for c in key if c.isalnum() or c in "-_.") or "process"
    return Response(xml, mimetype="application/xml",
                    headers={"Content-Disposition": f'attachment; filename="{safe}_v{version}.bpmn"'})


@bp.post("/processes/<key>/schedule/retry")
@login_required
@lead_required
def retry_timer_start(key: str) -> Any:
    retry_schedule(database(), key, actor())
    flash(f"The timer start of {key} is re-armed; the scheduler tries it again on its next pass.")
    return redirect(url_for("processes.index"))
