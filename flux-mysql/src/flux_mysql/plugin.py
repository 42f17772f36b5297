"""The mysql plugin module: what flux-mysql registers with Flux (entry point group ``flux``)."""

from flux.hookspecs import hookimpl  # noqa: F401
