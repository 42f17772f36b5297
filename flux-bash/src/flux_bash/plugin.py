"""The bash plugin module: what flux-bash registers with Flux (entry point group ``flux``)."""

from flux.hookspecs import hookimpl  # noqa: F401
