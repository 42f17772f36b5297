"""Core's own plugin parts, registered through flux-core's ``flux`` entry point like any other."""
