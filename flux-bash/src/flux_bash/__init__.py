"""Flux plugin: the BashOperator, which runs a shell command (or a templated ``.sh`` file) as a task."""
