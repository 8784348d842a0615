"""The signed-in user's in-app notifications: the list (newest first, each linking to its task or
case), mark one or all read (POST forms with the CSRF token, like every form). The unread count
for the bell in the page header is `unread_for_header` (web/__init__.py makes it a template global)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from engine import notifications as notes
from web.context import actor, database

bp = Blueprint("notifications", __name__)
PAGE_SIZE = 50


def unread_for_header() -> int | None:
    """The bell's count; None when nobody is signed in or the count cannot be read (the page that
    is being shown, e.g. a 503 for an unreachable database, must still render)."""
    if not current_user.is_authenticated:
        return None
    try:
        return notes.unread_count(database(), current_user.username)
    except Exception:  # noqa: BLE001 - the header never turns a page into an error
        return None


@bp.get("/notifications")
@login_required
def index() -> Any:
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), 10_000)
    listing = notes.notifications_for(database(), actor().username, limit=PAGE_SIZE + 1,
                                      offset=(page - 1) * PAGE_SIZE)
    items = listing["items"][:PAGE_SIZE]
    return render_template("notifications.html", items=items, unread=listing["unread"], page=page,
                           more=len(listing["items"]) > PAGE_SIZE)


@bp.post("/notifications/<int:notification_id>/read")
@login_required
def read_one(notification_id: int) -> Any:
    notes.mark_read(database(), actor().username, [notification_id])
    return redirect(url_for("notifications.index", page=request.form.get("page", type=int) or None))


@bp.post("/notifications/read")
@login_required
def read_all() -> Any:
    notes.mark_read(database(), actor().username)
    return redirect(url_for("notifications.index"))
