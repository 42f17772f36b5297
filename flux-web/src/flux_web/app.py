"""The Flask application: configuration, security, error pages and every plugin's blueprints."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from flux.exceptions import DagNotFound, DagRunExists, FluxError, TaskNotFound
from flux_web import hookspecs, security
from flux_web.errors import ActionConflict

log = logging.getLogger(__name__)

#: FluxErrors that mean "no such thing" (404); a conflict is 409, any other FluxError is bad input
_NOT_FOUND = (DagNotFound, TaskNotFound)


def secret_key() -> str:
    """This installation's session secret: ``[webserver] secret_key``, generated on first start."""
    from flux.config import get_config

    config = get_config()
    key = str(config.get("webserver", "secret_key", "") or "")
    if not key:
        key = secrets.token_hex(32)
        config.set_persistent("webserver", "secret_key", key)
    return key


def _register_blueprints(app: Flask) -> None:
    """Every ``flux_web_blueprints`` contribution, flux-web's own included; a broken one is skipped."""
    from flux.plugins import get_plugin_manager

    manager = get_plugin_manager()
    if "flux_web_blueprints" not in manager.hook_names():
        manager.add_hookspecs(hookspecs)
    menu: list[tuple[str, str]] = []
    by_plugin: dict[str, list[str]] = {}
    # Discovery order (pluggy would call the last registered first), so core pages come first.
    for impl in manager.hook.flux_web_blueprints.get_hookimpls():
        try:
            blueprints = list(impl.function() or [])
            for blueprint in blueprints:
                app.register_blueprint(blueprint)
                menu.extend(getattr(blueprint, "flux_menu", []) or [])
                by_plugin.setdefault(impl.plugin_name, []).append(blueprint.name)
        except Exception:  # one plugin's broken pages must not take the web server down
            log.exception("plugin %r: flux_web_blueprints failed; its pages are left out",
                          impl.plugin_name)
    app.config["FLUX_MENU"] = menu
    #: plugin name -> the names of the blueprints it added (the plugins page shows them)
    app.config["FLUX_BLUEPRINTS"] = by_plugin


def _wants_json() -> bool:
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best_match(["application/json", "text/html"]) == "application/json"
    )


def _error_response(status: int, title: str, message: str) -> Any:
    if _wants_json():
        response = jsonify(error=message, status=status)
        response.status_code = status
        return response
    return render_template("error.html", status=status, title=title, message=message), status


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return _error_response(exc.code or 500, exc.name, exc.description or exc.name)

    @app.errorhandler(FluxError)
    def flux_error(exc: FluxError) -> Any:
        if isinstance(exc, _NOT_FOUND):
            return _error_response(404, "Not found", str(exc))
        if isinstance(exc, (ActionConflict, DagRunExists)):
            return _error_response(409, "Conflict", str(exc))
        return _error_response(400, "Bad request", str(exc))


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the web application (the metadata database is created or migrated if needed)."""
    from flux.db import get_engine
    from flux.state import State

    get_engine()
    app = Flask("flux_web")
    app.config.update(
        SECRET_KEY=secret_key(),
        SESSION_COOKIE_NAME="flux_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    if config:
        app.config.update(config)
    security.install(app)
    _install_error_handlers(app)

    @app.get("/health")
    def health() -> Any:
        """Liveness for load balancers: the process answers and the database is reachable."""
        from sqlalchemy import text

        from flux.db import session_scope

        try:
            with session_scope() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:
            return jsonify(status="error", database=type(exc).__name__), 503
        return jsonify(status="ok", database="ok")

    from flux_web import templating

    templating.install(app, State)
    _register_blueprints(app)
    return app
