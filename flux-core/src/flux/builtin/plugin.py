"""Core's built-in plugin: core commands, executors, operators and macros.

Registered through flux-core's own ``[project.entry-points.flux] core = ...`` so that core's parts
take exactly the path a third party's do.
"""

from __future__ import annotations

from typing import Any

from flux.hookspecs import hookimpl


@hookimpl
def flux_commands() -> list[Any]:
    from flux.cli.commands import core_commands

    return core_commands()


@hookimpl
def flux_operators() -> list[Any]:
    from flux.builtin.operators import DummyOperator, EmptyOperator, FileSensor, PythonOperator
    from flux.transfers import DbApiToDbApiTransfer

    return [PythonOperator, EmptyOperator, DummyOperator, FileSensor, DbApiToDbApiTransfer]


@hookimpl
def flux_executors() -> list[Any]:
    from flux.builtin.local_executor import LocalExecutor
    from flux.builtin.sequential_executor import SequentialExecutor

    return [LocalExecutor, SequentialExecutor]
