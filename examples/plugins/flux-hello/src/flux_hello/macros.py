"""The ``macros.hello`` namespace of templates: ``{{ macros.hello.greet(params.who) }}``."""

from __future__ import annotations


def greet(name: str) -> str:
    """The greeting for ``name``: ``greet("Ada")`` is ``"Hello, Ada!"``."""
    return f"Hello, {name}!"
