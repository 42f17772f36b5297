"""The plugin contract: every hook a Flux plugin may implement.

A plugin is a module (by convention ``<package>/plugin.py``) named by an entry point of group
``flux`` in its distribution's ``pyproject.toml``::

    [project.entry-points.flux]
    hello = "flux_hello.plugin"

and implementing some of the hooks below with :data:`flux.hookimpl`. Hooks that register things
take no arguments and return an iterable, so that Flux can credit every contribution to the
distribution that made it (``flux plugins``) and report two plugins claiming one name.

Keep plugin modules light: ``flux --help`` imports every plugin module, so import heavy libraries
(database drivers, web frameworks) inside the hook bodies or inside the registered classes' methods.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import pluggy

if TYPE_CHECKING:
    import click

    from flux.baseoperator import BaseOperator
    from flux.executors.base import BaseExecutor
    from flux.hooks.base import BaseHook
    from flux.models.taskinstance import TaskInstance

PROJECT_NAME = "flux"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class RemoteTaskLog(NamedTuple):
    """What :func:`flux_remote_task_log` returns: log ``text`` and the byte offset to read on from."""

    text: str
    next_offset: int


@hookspec
def flux_hooks() -> Iterable[type[BaseHook]]:
    """Register hook classes (connections to outside systems), keyed by their ``conn_type``.

    Example::

        @hookimpl
        def flux_hooks():
            from flux_mysql.hooks import MySqlHook   # MySqlHook.conn_type == "mysql"
            return [MySqlHook]
    """


@hookspec
def flux_operators() -> Iterable[type[BaseOperator]]:
    """Register operator classes (sensors and transfers too), keyed by their class name.

    Each becomes importable as ``from flux.operators import <ClassName>``.

    Example::

        @hookimpl
        def flux_operators():
            from flux_hello.operators import HelloOperator
            return [HelloOperator]
    """


@hookspec
def flux_executors() -> Iterable[type[BaseExecutor]]:
    """Register executor classes, keyed by their ``executor_name`` (``[core] executor = "local"``).

    Example::

        @hookimpl
        def flux_executors():
            from flux_celery.executor import CeleryExecutor   # executor_name = "celery"
            return [CeleryExecutor]
    """


@hookspec
def flux_commands() -> Iterable[click.Command]:
    """Register click commands or groups, added to the ``flux`` command under their own name.

    Define the commands in a module that imports nothing heavy at the top, so ``flux --help`` stays
    fast; import what the command needs inside its function.

    Example::

        @click.command()
        def hello():
            \"\"\"Say hello.\"\"\"
            click.echo("hello")

        @hookimpl
        def flux_commands():
            return [hello]
    """


@hookspec
def flux_macros() -> Mapping[str, Any]:
    """Register template macro namespaces: ``{namespace: module or object}``.

    Each namespace is reachable in every template as ``macros.<namespace>``.

    Example::

        @hookimpl
        def flux_macros():
            from flux_mysql import macros
            return {"mysql": macros}   # {{ macros.mysql.max_value("t", "id", "local_mysql") }}
    """


@hookspec
def flux_task_instance_state_changed(ti: TaskInstance, previous: str | None, state: str) -> None:
    """Called in the process that changed it, after a task instance's new state was committed.

    A listener must be quick and must not raise: an exception is logged and ignored.

    Example::

        @hookimpl
        def flux_task_instance_state_changed(ti, previous, state):
            if state == "failed":
                notify_chat(f"{ti.dag_id}.{ti.task_id} {ti.execution_date} failed")
    """


@hookspec(firstresult=True)
def flux_remote_task_log(ti: TaskInstance, try_number: int, offset: int) -> RemoteTaskLog | None:
    """The log of a try that ran on another machine, from byte ``offset`` on; None if not yours.

    Asked (by the web UI) only when the try's log file is not in the local log folder. The first
    implementation returning something other than None wins. Return ``(text, next_offset)``, where
    ``next_offset`` is where the next read starts; when the log cannot be fetched, return a one-line
    explanation as the text (with ``next_offset == offset``) rather than raising.

    Example::

        @hookimpl
        def flux_remote_task_log(ti, try_number, offset):
            if ti.hostname == socket.gethostname():
                return None   # this machine's log, or none at all
            data = fetch_from(ti.hostname, ti.dag_id, ti.task_id, try_number, offset)
            return (data, offset + len(data.encode()))
    """
