"""Process definitions for quality leads: versions, upload, start, XML download, and timer starts
(a timer start whose every attempt failed is in incident here until the lead retries it)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import login_required

from engine.errors import FormValidationError
from engine.schedules import list_schedules, retry_schedule
from web.context import actor, database, lead_required, runtime

bp = Blueprint("processes", __name__)

ALLOWED_SUFFIXES = (".bpmn", ".dmn", ".xml")


def uploaded_files() -> list[tuple[str, bytes]]:
    files = []
    for upload in request.files.getlist("file"):
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


@bp.post("/processes/<key>/start")
@login_required
@lead_required
def start(key: str) -> Any:
    raw = (request.form.get("data") or "").strip()
    try:
        data = json.loads(raw) if raw else {}
    except json.JSONDecodeError as exc:
        flash(f"Start data is not valid JSON: {exc.msg} (line {exc.lineno})", "error")
        return index(status=422)
    if not isinstance(data, dict):
        flash("Start data must be a JSON object, e.g. {\"reference\": \"C-1\"}.", "error")
        return index(status=422)
    business_key = (request.form.get("business_key") or "").strip() or None
    try:
        instance = runtime().start(key, data, actor(), business_key=business_key)
    except FormValidationError as exc:  # the process's start form refused the data
        for d in exc.details:
            flash(f"Start data: {d.get('field') or 'data'} {d.get('message', '')}", "error")
        return index(status=422)
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
