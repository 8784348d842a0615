"""Files on cases over HTTP: reading uploads (multipart field `file`) into checked attachments, the
request-size limit of the views that take them, and the download response. The rules (size, types,
who may see) are engine/case_notes.py's."""

from __future__ import annotations

from io import BytesIO
from typing import Any

from flask import Flask, request, send_file

from engine import case_notes, settings
from engine.case_notes import Upload
from engine.errors import FormValidationError
from engine.views import Actor
from web.context import runtime

MAX_FILES = 5  # per request
# views that take files: their body may hold the files plus the form around them
UPLOAD_ENDPOINTS = frozenset({"api.add_attachments", "instances.attach", "complaints.complain"})
FORM_MARGIN = 1024 * 1024


def body_limit() -> int:
    """Bytes one upload request may carry: the file limit (all files together) plus the form around them."""
    return settings.current().attachment_max_bytes + FORM_MARGIN


def install(app: Flask) -> None:
    """Raise the body limit of the upload views; registered before CSRFProtect so that its reading of
    the form already sees the raised limit."""

    @app.before_request
    def _upload_limit() -> None:
        if request.endpoint in UPLOAD_ENDPOINTS:
            request.max_content_length = max(body_limit(), app.config["MAX_CONTENT_LENGTH"] or 0)


def uploaded_attachments(field: str = "file") -> list[Upload]:
    """The request's files, each checked (TooLargeError 413, FormValidationError 422 naming `field`)."""
    files = [f for f in request.files.getlist(field) if f and f.filename]
    if len(files) > MAX_FILES:
        raise FormValidationError(f"at most {MAX_FILES} files at once",
                                  [{"field": field, "message": f"at most {MAX_FILES} files at once"}])
    return [case_notes.check_upload(f.filename or "", f.read(), field) for f in files]


def send_attachment(actor: Actor, attachment_id: str) -> Any:
    """The download: its sniffed type, always as a download (never rendered inline on our origin)."""
    meta, content = case_notes.download(runtime(), actor, attachment_id)
    response = send_file(BytesIO(content), mimetype=meta["content_type"], as_attachment=True,
                         download_name=meta["filename"], max_age=0, etag=meta["sha256"])
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response
