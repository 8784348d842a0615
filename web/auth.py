"""Sign in and out. Failed sign-ins are rate-limited per (IP, user name)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import login_required, login_user, logout_user

from engine.accounts import authenticate
from engine.permissions import may_use_web_inbox
from web.context import WebUser, client_ip, database

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
    limiter = current_app.extensions["pdcaflow.limits"]["login"]
    key = f"{client_ip()}|{username.lower()}"
    if limiter.blocked(key):
        return render_template("login.html", username=username, next=request.form.get("next", ""),
                               error="Too many failed attempts. Please wait a few minutes and try again."), 429
    actor = authenticate(database(), username, password) if username and password else None
    if actor is None:
        limiter.hit(key)
        return render_template("login.html", username=username, next=request.form.get("next", ""),
                               error="Unknown user name or wrong password."), 401
    limiter.reset(key)
    if not may_use_web_inbox(actor):
        return render_template("login.html", username=username, next=request.form.get("next", ""),
                               error="This is a technical account (role worker): it works through /engine-rest "
                                     "and cannot sign in to the web."), 403
    session.clear()
    login_user(WebUser(actor))
    flash(f"Signed in as {actor.username}.")
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
@login_required
def logout() -> Any:
    logout_user()
    session.clear()
    flash("Signed out.")
    return redirect(url_for("auth.login"))
