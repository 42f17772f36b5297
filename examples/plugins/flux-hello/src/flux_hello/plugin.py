"""What flux-hello registers with Flux (the module named by its ``flux`` entry point).

Flux imports this module on every ``flux`` command, ``flux --help`` included, so it imports nothing
but the ``hookimpl`` marker at the top; each hook imports its part when Flux asks for it.
"""

from __future__ import annotations

from typing import Any

from flux.hookspecs import hookimpl


@hookimpl
def flux_operators() -> list[type]:
    """``from flux.operators import HelloOperator`` resolves to this class."""
    from flux_hello.operators import HelloOperator

    return [HelloOperator]


@hookimpl
def flux_commands() -> list[Any]:
    """``flux hello [NAME]``."""
    from flux_hello.commands import hello_command

    return [hello_command]


@hookimpl
def flux_macros() -> dict[str, Any]:
    """``{{ macros.hello.greet("world") }}`` in any template."""
    from flux_hello import macros

    return {"hello": macros}
