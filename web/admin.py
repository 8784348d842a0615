"""Admin: the Users page (create accounts, change role, groups and e-mail, deactivate and reactivate,
reset passwords, list and revoke API tokens). The rules live in engine/accounts.py and
engine/credentials.py; who may do this in engine/permissions.py (`check_admin`)."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required

from engine import accounts, directory
from engine.credentials import revoke_all
from engine.errors import EngineError
from engine.permissions import check_admin
from engine.views import ROLES
from web.context import actor, database

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _admin() -> None:
    check_admin(actor(), "manage accounts")


def _groups(text: str) -> list[str]:
    return [g for g in re.split(r"[\s,]+", text.strip()) if g]


def _errors(exc: EngineError) -> dict[str, str]:
    return {d.get("field") or "form": d.get("message", "") for d in exc.details} or {"form": exc.message}


@bp.get("/users")
@login_required
def users() -> Any:
    _admin()
    return _users_page({}, {})


def _users_page(values: dict[str, Any], errors: dict[str, str], status: int = 200) -> Any:
    return render_template("admin_users.html", users=accounts.list_users(database()),
                           groups=directory.groups(database()), roles=ROLES, values=values, errors=errors), status


@bp.post("/users")
@login_required
def create() -> Any:
    _admin()
    form = request.form
    values = {"username": form.get("username", "").strip(), "role": form.get("role", ""),
              "email": form.get("email", "").strip(), "groups": form.get("groups", "")}
    try:
        accounts.create_user(database(), values["username"], values["role"], form.get("password", ""),
                             email=values["email"] or None, groups=_groups(values["groups"]))
    except EngineError as exc:
        if exc.http_status not in (409, 422):
            raise
        return _users_page(values, _errors(exc), exc.http_status)
    flash(f"Created user {values['username']}.")
    return redirect(url_for("admin.user", name=values["username"]))


@bp.get("/users/<name>")
@login_required
def user(name: str) -> Any:
    _admin()
    return _user_page(name, {})


def _user_page(name: str, errors: dict[str, str], status: int = 200) -> Any:
    return render_template("admin_user.html", user=accounts.user_info(database(), name), roles=ROLES,
                           tokens=directory.user_tokens(database(), name), errors=errors,
                           myself=actor().username == name), status


def _change(name: str, message: str, **changes: Any) -> Any:
    try:
        accounts.update_user(database(), name, actor(), **changes)
    except EngineError as exc:
        if exc.http_status != 422:
            raise
        return _user_page(name, _errors(exc), 422)
    flash(message)
    return redirect(url_for("admin.user", name=name))


@bp.post("/users/<name>")
@login_required
def edit(name: str) -> Any:
    _admin()
    form = request.form
    return _change(name, f"Saved {name}.", role=form.get("role", ""), email=form.get("email", "").strip(),
                   groups=_groups(form.get("groups", "")))


@bp.post("/users/<name>/password")
@login_required
def password(name: str) -> Any:
    _admin()
    ended = "please sign in again" if name == actor().username else "their sessions and API tokens have ended"
    return _change(name, f"New password set for {name}; {ended}.", password=request.form.get("password", ""))


@bp.post("/users/<name>/active")
@login_required
def active(name: str) -> Any:
    _admin()
    on = request.form.get("active") == "1"
    message = f"Reactivated {name}." if on else f"Deactivated {name}; their sessions and API tokens have ended."
    return _change(name, message, active=on)


@bp.post("/users/<name>/revoke")
@login_required
def revoke(name: str) -> Any:
    _admin()
    n = revoke_all(database(), name)
    flash(f"Revoked {n} API token{'s' if n != 1 else ''} of {name} and ended their sessions.")
    return redirect(url_for("admin.user", name=name))


@bp.post("/tokens/<token_id>/revoke")
@login_required
def revoke_token(token_id: str) -> Any:
    _admin()
    owner = directory.revoke_token_id(database(), token_id)
    flash(f"Revoked API token {token_id} of {owner}.")
    return redirect(url_for("admin.user", name=owner))
