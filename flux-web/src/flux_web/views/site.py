"""Pages about the installation: connections (never their passwords), plugins, the audit log."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, render_template, request

from flux.db import session_scope
from flux_web import queries
from flux_web.views.common import int_arg

bp = Blueprint("site", __name__)
bp.flux_menu = [("Connections", "site.connections"), ("Plugins", "site.plugins"),  # type: ignore[attr-defined]
                ("Audit log", "site.audit")]

MASK = "***"


def _safe_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` with every secret-looking key's value masked (nested dictionaries too)."""
    from flux.crypto import is_secret_key

    def walk(value: Any, secret: bool) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, secret or is_secret_key(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, secret) for v in value]
        return MASK if secret and value not in (None, "") else value

    return walk(extra, False)


def connection_rows() -> list[dict[str, Any]]:
    """Every connection (table and ``FLUX_CONN_`` variables) without its password or secrets."""
    from flux.connections import list_connections

    return [
        {"conn_id": c.conn_id, "conn_type": c.conn_type, "host": c.host, "port": c.port,
         "login": c.login, "schema": c.schema, "description": c.description,
         "extra": json.dumps(_safe_extra(c.extra), sort_keys=True) if c.extra else "",
         "has_password": bool(c.password), "source": c.source}
        for c in list_connections(include_env=True)
    ]


@bp.get("/connections")
def connections() -> Any:
    return render_template("connections.html", connections=connection_rows())


@bp.get("/plugins")
def plugins() -> Any:
    """What ``flux plugins`` shows."""
    from flask import current_app

    from flux.plugins import KINDS, get_plugin_manager

    return render_template("plugins.html", plugins=get_plugin_manager().describe(), kinds=list(KINDS),
                           pages=current_app.config.get("FLUX_BLUEPRINTS", {}))


@bp.get("/audit")
def audit() -> Any:
    """Actions taken from the CLI and the web, newest first (filter by DAG, event or user)."""
    page = int_arg(request.args, "page", 1, 1, 10**6)
    page_size = 100
    filters = {name: (request.args.get(name) or "").strip()[:250] or None
               for name in ("dag_id", "event", "owner")}
    with session_scope() as session:
        entries, total = queries.audit_entries(session, page_size, (page - 1) * page_size, **filters)
    return render_template("audit.html", entries=entries, total=total, page=page,
                           pages=max(1, -(-total // page_size)), filters=filters)
