"""Comments and attachments on a case (a process instance); SQL in storage/case_notes.py.

Who may read or add them is who may see the instance (engine.permissions.check_may_see_instance):
anyone else is told the case does not exist. An attachment's type is what its content is (sniffed by
`filetype`), not what its name or the browser claims; the name's extension must agree with it, so a
page saved as "photo.jpg" or a program renamed "report.pdf" is refused. Size and allowed types are
settings (`PDCAFLOW_ATTACHMENT_MAX_BYTES`, `PDCAFLOW_ATTACHMENT_TYPES`).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import filetype

from engine import clock, settings
from engine.errors import FormValidationError, NotFoundError, TooLargeError
from engine.permissions import check_may_see_instance
from engine.views import Actor
from storage import case_notes as store

MAX_COMMENT_CHARS = 4000
MAX_FILENAME_CHARS = 200

# MIME type (as sniffed) → the extensions a file of that type may carry, by family
FAMILIES: dict[str, dict[str, tuple[str, ...]]] = {
    "image": {"image/jpeg": ("jpg", "jpeg", "jfif"), "image/png": ("png",), "image/gif": ("gif",),
              "image/webp": ("webp",), "image/heic": ("heic", "heif"), "image/tiff": ("tif", "tiff"),
              "image/bmp": ("bmp",)},
    "pdf": {"application/pdf": ("pdf",)},
    "office": {
        "application/msword": ("doc",), "application/vnd.ms-excel": ("xls",),
        "application/vnd.ms-powerpoint": ("ppt",), "application/rtf": ("rtf",),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ("docx",),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("xlsx",),
        "application/vnd.openxmlformats-officedocument.presentationml.presentation": ("pptx",),
        "application/vnd.oasis.opendocument.text": ("odt",),
        "application/vnd.oasis.opendocument.spreadsheet": ("ods",),
        "application/vnd.oasis.opendocument.presentation": ("odp",)},
    # plain text has no signature: it is UTF-8 without NUL bytes and named as text
    "text": {"text/plain": ("txt", "log", "md"), "text/csv": ("csv",)},
}
_TEXT_TYPES = FAMILIES["text"]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ATTACHMENT_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Upload:
    """A file that passed the checks, ready to store."""

    filename: str
    content_type: str
    content: bytes


def allowed_types() -> dict[str, tuple[str, ...]]:
    """MIME type → extensions, from the `attachment_types` setting (family names or exact types)."""
    every = {mime: exts for family in FAMILIES.values() for mime, exts in family.items()}
    allowed: dict[str, tuple[str, ...]] = {}
    for name in settings.current().attachment_types:
        allowed.update(FAMILIES.get(name) or ({name: every[name]} if name in every else {}))
    return allowed


def accept_hint() -> str:
    """The file inputs' `accept` attribute (a hint to the browser; the server checks the content)."""
    return ",".join(sorted({f".{e}" for exts in allowed_types().values() for e in exts}))


def clean_filename(name: str) -> str:
    base = _CONTROL.sub("", (name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip().strip(".")
    if len(base) > MAX_FILENAME_CHARS:
        stem, dot, ext = base.rpartition(".")
        base = (stem[:MAX_FILENAME_CHARS - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 \
            else base[:MAX_FILENAME_CHARS]
    return base or "attachment"


def _sniff(content: bytes) -> str | None:
    kind = filetype.guess(content)
    if kind is not None:
        return kind.mime
    if b"\x00" in content:
        return None
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text/plain"


def check_upload(filename: str, content: bytes, field: str = "file") -> Upload:
    """The upload as it will be stored, or TooLargeError (413) / FormValidationError (422 naming `field`)."""
    limit = settings.current().attachment_max_bytes
    if len(content) > limit:
        raise TooLargeError(f"{filename or 'the file'} is larger than {limit // (1024 * 1024) or limit} "
                            f"{'MB' if limit >= 1024 * 1024 else 'bytes'}",
                            [{"field": field, "message": f"is larger than the limit of {limit} bytes"}])
    name = clean_filename(filename)

    def bad(message: str) -> FormValidationError:
        return FormValidationError(f"{name} {message}", [{"field": field, "message": message}])

    if not content:
        raise bad("is empty")
    allowed = allowed_types()
    sniffed = _sniff(content)
    ext = name.rpartition(".")[2].lower() if "." in name else ""
    if sniffed == "text/plain":  # text is told apart by its name: .csv is CSV, other text needs a text name
        sniffed = next((m for m, exts in _TEXT_TYPES.items() if ext in exts), None)
        if sniffed is None:
            raise bad("is not an allowed type (images, PDF, office documents, text)")
    if sniffed not in allowed:
        raise bad("is not an allowed type (images, PDF, office documents, text)")
    if ext and ext not in allowed[sniffed]:
        raise bad(f"is named .{ext} but its content is {sniffed}")
    return Upload(name, sniffed, content)


def _visible(runtime: Any, actor: Actor, instance_id: str) -> None:
    check_may_see_instance(actor, runtime.instance(instance_id))


def _comment(row: Any) -> dict[str, Any]:
    return {"id": str(row.id), "author": row.author, "body": row.body, "created_at": row.created_at}


def _attachment(row: Any) -> dict[str, Any]:
    return {"id": row.id, "filename": row.filename, "content_type": row.content_type, "size": row.size,
            "sha256": row.sha256, "uploaded_by": row.uploaded_by, "uploaded_at": row.uploaded_at}


def comments(runtime: Any, actor: Actor, instance_id: str) -> list[dict[str, Any]]:
    _visible(runtime, actor, instance_id)
    with runtime.db.read() as session:
        return [_comment(r) for r in store.comments(session.connection(), instance_id)]


def add_comment(runtime: Any, actor: Actor, instance_id: str, body: str) -> dict[str, Any]:
    _visible(runtime, actor, instance_id)  # an outsider learns nothing, not even that the text was bad
    text = (body or "").strip()
    if not text:
        raise FormValidationError("the comment is empty", [{"field": "body", "message": "is required"}])
    if len(text) > MAX_COMMENT_CHARS:
        raise FormValidationError("the comment is too long",
                                  [{"field": "body", "message": f"is longer than {MAX_COMMENT_CHARS} characters"}])
    with runtime.unit_of_work() as uow:
        row = store.add_comment(uow.conn, instance_id, actor.username, text, clock.now())
        uow.audit("comment", actor, instance_id, None, {"comment": str(row.id), "excerpt": text[:120]})
    return _comment(row)


def attachments(runtime: Any, actor: Actor, instance_id: str) -> list[dict[str, Any]]:
    _visible(runtime, actor, instance_id)
    with runtime.db.read() as session:
        return [_attachment(r) for r in store.attachments(session.connection(), instance_id)]


def attach(runtime: Any, actor: Actor | None, instance_id: str, uploads: list[Upload]) -> list[dict[str, Any]]:
    """Store checked uploads on the case. `actor` None: the customer's files from the public form
    (the caller has just filed that case)."""
    if actor is not None:
        _visible(runtime, actor, instance_id)
    stored = []
    with runtime.unit_of_work() as uow:
        for up in uploads:
            values = {"id": uuid.uuid4().hex, "instance_id": instance_id, "filename": up.filename,
                      "content_type": up.content_type, "size": len(up.content),
                      "sha256": hashlib.sha256(up.content).hexdigest(),
                      "uploaded_by": actor.username if actor else None, "uploaded_at": clock.now(),
                      "content": up.content}
            store.add_attachment(uow.conn, values)
            uow.audit("attach", actor, instance_id, None,
                      {"attachment": values["id"], "filename": up.filename, "content_type": up.content_type,
                       "size": values["size"]})
            stored.append(_attachment(SimpleNamespace(**values)))
    return stored


def download(runtime: Any, actor: Actor, attachment_id: str) -> tuple[dict[str, Any], bytes]:
    """(metadata, content) of an attachment on a case the actor may see; else NotFoundError."""
    missing = NotFoundError(f"attachment {attachment_id[:40]} not found")
    if not _ATTACHMENT_ID.fullmatch(attachment_id or ""):  # ids are uuid4 hex: anything else is no attachment
        raise missing
    with runtime.db.read() as session:
        meta = store.attachment_meta(session.connection(), attachment_id)
    if meta is None:
        raise missing
    try:
        _visible(runtime, actor, meta.instance_id)
    except NotFoundError:
        raise missing from None
    with runtime.db.read() as session:
        content = store.attachment_content(session.connection(), attachment_id)
    if content is None:
        raise missing
    return _attachment(meta), content
