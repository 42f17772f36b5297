"""Signing in and out."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from flux_web.security import any_user, csrf_token, safe_next, sign_in, sign_out

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The sign-in form; after signing in, go back to ``next`` if it is a page of this site."""
    target = safe_next(request.values.get("next"), url_for("dags.index"))
    error = None
    if request.method == "POST":
        from flux_web.users import authenticate

        username = request.form.get("username", "")
        user = authenticate(username, request.form.get("password", ""), record_login=True)
        if user is not None:
            sign_in(user.id)
            return redirect(target)
        error = "Wrong user name or password."
    csrf_token()
    return render_template("login.html", next=target, error=error,
                           username=request.form.get("username", "")), (401 if error else 200)


@bp.post("/logout")
@any_user
def logout() -> Any:
    sign_out()
    flash("Signed out.")
    return redirect(url_for("auth.login"))
