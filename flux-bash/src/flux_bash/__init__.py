"""Flux plugin: the BashOperator, which runs a shell command (or a templated ``.sh`` file) as a task.

Import the operator as the seed does, ``from flux.operators import BashOperator``; this package's
modules are imported lazily by Flux through the ``bash`` entry point (``flux_bash.plugin``).
"""
