"""Sign-in, roles and CSRF, enforced for every request in one place (``before_request``).

Rules, in order:

1. ``/health``, ``/login`` and static files are public; nothing else is.
2. A request is signed in by the session cookie (after ``/login``) or by HTTP basic
   credentials (for API clients). The user is read from the database on every request, so a
   deleted user loses access at once and a role change takes effect at once.
3. Anonymous: pages redirect to ``/login?next=...``; ``/api/`` answers 401.
4. Session-signed requests that change something (POST, PUT, PATCH, DELETE) must carry the
   session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``). Basic-auth requests
   carry no cookie, so a forged cross-site request cannot use them; API writes must also send JSON,
   which a cross-site form cannot.
5. Changing something, or opening a page marked :func:`admin_only`, needs the ``admin`` role.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, g, jsonify, redirect, request, session, url_for

F = TypeVar("F", bound=Callable[..., Any])

PUBLIC_ENDPOINTS = frozenset({"health", "auth.login", "static"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_SESSION_USER = "user_id"
_SESSION_CSRF = "csrf"


def admin_only(view: F) -> F:
    """Mark a view that needs the admin role even for GET (action confirmation pages)."""
    view._flux_admin = True  # type: ignore[attr-defined]
    return view


def any_user(view: F) -> F:
    """Mark a view any signed-in user may POST to (signing out)."""
    view._flux_any_user = True  # type: ignore[attr-defined]
    return view


def csrf_token() -> str:
    """The session's CSRF token (created on first use)."""
    token = session.get(_SESSION_CSRF)
    if not token:
        token = session[_SESSION_CSRF] = secrets.token_urlsafe(32)
    return token


def sign_in(user_id: int) -> None:
    """Start a fresh session for ``user_id`` (a new CSRF token too: nothing carries over)."""
    session.clear()
    session[_SESSION_USER] = user_id
    session[_SESSION_CSRF] = secrets.token_urlsafe(32)


def sign_out() -> None:
    session.clear()


def safe_next(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site, else ``default`` (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(ch in target for ch in "\\\r\n\t") or any(ord(ch) < 32 for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def _basic_user() -> Any:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep:
        return None
    from flux_web.users import authenticate

    return authenticate(username, password)


def _session_user() -> Any:
    user_id = session.get(_SESSION_USER)
    if not isinstance(user_id, int):
        return None
    from flux_web.users import get_user

    user = get_user(user_id)
    if user is None:  # deleted since it signed in
        session.clear()
    return user


def _is_api() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def _unauthorized() -> Any:
    if _is_api() or request.headers.get("Authorization"):
        response = jsonify(error="authentication required (sign in, or send HTTP basic credentials)",
                           status=401)
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Basic realm="flux", charset="UTF-8"'
        return response
    if request.method in SAFE_METHODS:
        target = request.full_path if request.query_string else request.path
        return redirect(url_for("auth.login", next=target))
    abort(401)


def _view_flag(name: str) -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, name, False))


def _check_csrf() -> None:
    expected = session.get(_SESSION_CSRF)
    given = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD)
    if not expected or not given or not hmac.compare_digest(str(expected), str(given)):
        abort(400, description="the form's CSRF token is missing or invalid: reload the page and "
                               "try again")


def enforce() -> Any:
    """The ``before_request`` hook implementing the rules of this module."""
    g.user = None
    g.auth = None
    endpoint = request.endpoint
    unsafe = request.method not in SAFE_METHODS
    if endpoint in PUBLIC_ENDPOINTS:
        if unsafe:  # the login form: a session-bound token stops login CSRF
            _check_csrf()
        return None
    user = None
    if request.headers.get("Authorization"):
        user = _basic_user()
        g.auth = "basic" if user is not None else None
    else:
        user = _session_user()
        g.auth = "session" if user is not None else None
    if user is None:
        return _unauthorized()
    g.user = user
    if unsafe and g.auth == "session":
        _check_csrf()
    if unsafe and g.auth == "basic" and not request.is_json:
        abort(415, description="send the request body as JSON (Content-Type: application/json)")
    if (unsafe and not _view_flag("_flux_any_user")) or _view_flag("_flux_admin"):
        if not user.is_admin:
            abort(403, description=f"user {user.username!r} has the role {user.role}; "
                                   "this needs the admin role")
    return None


def secure_headers(response: Any) -> Any:
    """Headers that make injected markup inert and keep the pages out of other sites' frames."""
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if getattr(g, "user", None) is not None:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def install(app: Flask) -> None:
    """Wire the checks into ``app``."""
    app.before_request(enforce)
    app.after_request(secure_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
