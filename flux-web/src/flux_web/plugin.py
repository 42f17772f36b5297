"""The web plugin module: what flux-web registers with Flux (entry point group ``flux``).

Kept light: ``flux --help`` imports it. Flask is imported only inside the hooks' bodies.
"""

from __future__ import annotations

from typing import Any

from flux.hookspecs import hookimpl

# Declaring flux-web's hookspec here lets the plugin manager know it as soon as this plugin loads,
# so a plugin implementing it is never rejected as having misspelled a hook name.
from flux_web.hookspecs import flux_web_blueprints  # noqa: F401


@hookimpl
def flux_commands() -> list[Any]:
    from flux_web.commands import COMMANDS

    return COMMANDS


@hookimpl(specname="flux_web_blueprints")
def own_blueprints() -> list[Any]:
    """flux-web's own pages and API, registered the way any plugin's pages are."""
    from flux_web.views import blueprints

    return blueprints()
