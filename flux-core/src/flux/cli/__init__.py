"""The ``flux`` command line. Commands come from plugins (core's own included) through
``flux_commands``; see :mod:`flux.cli.main`."""
