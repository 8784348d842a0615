"""Admin: users and groups (read-only listing; accounts are managed with `pdcaflow create-user`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_login import login_required

from engine import directory
from web.context import admin_required, database

bp = Blueprint("admin", __name__)


@bp.get("/admin/users")
@login_required
@admin_required
def users() -> Any:
    return render_template("admin_users.html", users=directory.users(database()), groups=directory.groups(database()))
