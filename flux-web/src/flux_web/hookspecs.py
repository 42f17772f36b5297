"""The hook flux-web adds to Flux's plugin contract: pages contributed by plugins.

flux-web registers it with ``get_plugin_manager().add_hookspecs(flux_web.hookspecs)`` when the web
application is built (and declares it in its plugin module, so ``flux plugins`` credits the
plugins that implement it). flux-web's own pages arrive through it too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from flux.hookspecs import hookspec

if TYPE_CHECKING:
    from flask import Blueprint


@hookspec
def flux_web_blueprints() -> Iterable[Blueprint]:
    """Register Flask blueprints with the web application (pages, JSON endpoints).

    Every route of a blueprint is behind the web server's sign-in: an anonymous request is sent to
    the login page (or gets 401 under ``/api/``), and any POST, PUT, PATCH or DELETE needs the
    ``admin`` role and the session's CSRF token (``{{ csrf_token() }}`` in templates, field
    ``csrf_token`` or header ``X-CSRF-Token``). A blueprint may set ``flux_menu`` to a list of
    ``(label, endpoint)`` pairs to appear in the navigation bar.

    Import Flask inside the hook, so ``flux --help`` does not pay for it.

    Example::

        @hookimpl
        def flux_web_blueprints():
            from flask import Blueprint

            bp = Blueprint("hello", __name__, url_prefix="/hello")

            @bp.get("/")
            def index():
                return "hello from a plugin"

            bp.flux_menu = [("Hello", "hello.index")]
            return [bp]
    """
