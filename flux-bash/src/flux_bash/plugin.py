"""What flux-bash registers with Flux (the module named by its ``flux`` entry point).

Flux imports this module on every ``flux`` command, so it imports nothing but the ``hookimpl``
marker at the top; the operator modules are imported only when Flux asks for the operators.
"""

from __future__ import annotations

from flux.hookspecs import hookimpl


@hookimpl
def flux_operators() -> list[type]:
    """``from flux.operators import BashOperator`` (and ``BashSensor``) resolve to these classes."""
    from flux_bash.operators import BashOperator
    from flux_bash.sensors import BashSensor

    return [BashOperator, BashSensor]
