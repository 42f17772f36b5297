"""The web plugin module: what flux-web registers with Flux (entry point group ``flux``)."""

from flux.hookspecs import hookimpl  # noqa: F401
