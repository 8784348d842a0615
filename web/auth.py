"""Sign in and out. Attempts are limited per (client address, user name) and per address, shared by
every process (engine/credentials.py); signing out ends the session server-side."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from engine.credentials import RateLimitedError, end_session
from engine.permissions import may_use_web_inbox
from web.context import WebUser, database, sign_in

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("inbox.inbox")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("inbox.inbox")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return render_template("login.html", username="", next=request.args.get("next", ""))
    username = (request.form.get("username") or "").strip()[:80]
    password = request.form.get("password") or ""
    again = {"username": username, "next": request.form.get("next", "")}
    try:
        credential = sign_in(username, password)
    except RateLimitedError as exc:
        response = make_response(render_template(
            "login.html", **again, error="Too many failed attempts. Please wait a few minutes and try again."), 429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if credential is None:
        return render_template("login.html", **again, error="Unknown user name or wrong password."), 401
    if not may_use_web_inbox(credential.actor):
        return render_template("login.html", **again,
                               error="This is a technical account (role worker): it works through /engine-rest "
                                     "and cannot sign in to the web."), 403
    session.clear()
    login_user(WebUser(credential.actor, credential.session_generation))
    flash(f"Signed in as {credential.actor.username}.")
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
@login_required
def logout() -> Any:
    end_session(database(), current_user.username)  # this cookie (and any copy of it) is refused from now on
    logout_user()
    session.clear()
    flash("Signed out.")
    return redirect(url_for("auth.login"))
