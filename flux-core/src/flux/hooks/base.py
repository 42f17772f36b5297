"""``BaseHook``: the base class of every hook (a client of one kind of outside system).

This is public API, stable for third-party plugins. A hook class:

* sets ``conn_type`` (the connection type it serves, e.g. ``"mysql"``) and is registered by a plugin
  through the ``flux_hooks`` hookspec, keyed by that ``conn_type``;
* may set ``conn_name_attr``, the keyword its constructor takes to name the connection (the
  seed's ``MySqlHook(mysql_dbid='local_mysql')``), and ``default_conn_id``;
* reads its connection with ``self.connection`` (a :class:`flux.connections.ConnectionInfo`,
  loaded on first use, so building a hook while a DAG file is parsed costs no database query).

Example of a third-party hook::

    from flux.hooks.base import BaseHook

    class HttpHook(BaseHook):
        conn_type = "http"
        conn_name_attr = "http_conn_id"
        default_conn_id = "http_default"

        def get(self, path):
            conn = self.connection            # host, port, login, password, extra...
            ...

    HttpHook(http_conn_id="my_api")          # or HttpHook(conn_id="my_api"), or HttpHook("my_api")
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from flux.exceptions import HookError, MissingPluginError

if TYPE_CHECKING:
    from flux.connections import ConnectionInfo

H = TypeVar("H", bound="BaseHook")


class BaseHook:
    """Base class of hooks; subclasses add the methods that talk to their system.

    Construction accepts the connection id as the first positional argument, as ``conn_id=``,
    or as the keyword named by :attr:`conn_name_attr`; without any of them
    :attr:`default_conn_id` is used. The id is kept in ``self.conn_id`` and also in the attribute
    named by ``conn_name_attr`` (``hook.mysql_dbid``).
    """

    #: The connection type this hook serves (``"mysql"``); the key it is registered under.
    conn_type: ClassVar[str] = ""
    #: The connection used when none is named.
    default_conn_id: ClassVar[str | None] = None
    #: The constructor keyword that names the connection, besides ``conn_id`` (``"mysql_dbid"``).
    conn_name_attr: ClassVar[str] = "conn_id"
    #: A human-readable name for listings (defaults to the class name).
    hook_name: ClassVar[str] = ""

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        named = kwargs.pop(self.conn_name_attr, None) if self.conn_name_attr != "conn_id" else None
        if kwargs:
            unexpected = ", ".join(repr(name) for name in kwargs)
            raise TypeError(f"{type(self).__name__}() got unexpected keyword argument(s) {unexpected}")
        if conn_id is not None and named is not None and conn_id != named:
            raise HookError(
                f"{type(self).__name__}: conn_id={conn_id!r} and {self.conn_name_attr}={named!r} "
                "name different connections; give only one"
            )
        chosen = conn_id if conn_id is not None else named if named is not None else self.default_conn_id
        if not chosen:
            raise HookError(
                f"{type(self).__name__} needs a connection id: pass {self.conn_name_attr}='...'"
            )
        self.conn_id: str = chosen
        if self.conn_name_attr != "conn_id":
            setattr(self, self.conn_name_attr, chosen)
        self._connection: ConnectionInfo | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} conn_id={self.conn_id!r}>"

    @property
    def log(self) -> logging.Logger:
        """The hook's logger (``flux.hooks.<ClassName>``); goes to the task log when run in a task."""
        return logging.getLogger(f"flux.hooks.{type(self).__name__}")

    @property
    def connection(self) -> ConnectionInfo:
        """This hook's connection, loaded (and its secrets registered for masking) on first use."""
        if self._connection is None:
            self._connection = self.get_connection(self.conn_id)
        return self._connection

    @classmethod
    def get_connection(cls, conn_id: str) -> ConnectionInfo:
        """The connection ``conn_id`` (``FLUX_CONN_<ID>`` first, then the table).

        Its password and secret extras are registered so that task logs show them as ``***``.
        Raises :class:`flux.exceptions.ConnectionNotFound` for an unknown id.
        """
        from flux.connections import get_connection, register_secrets, secrets_of

        info = get_connection(conn_id)
        register_secrets(secrets_of(info))
        return info

    @classmethod
    def get_hook(cls: type[H], conn_id: str) -> H:
        """An instance of the hook class registered for the connection's ``conn_type``.

        Called on a subclass (``DbApiHook.get_hook("x")``), it also checks that the hook found is
        such a subclass. Raises :class:`MissingPluginError` when no plugin serves the type.
        """
        info = cls.get_connection(conn_id)
        hook_class = hook_class_for(info.conn_type, conn_id=conn_id)
        if not issubclass(hook_class, cls):
            raise HookError(
                f"connection {conn_id!r} has type {info.conn_type!r}, whose hook "
                f"{hook_class.__name__} is not a {cls.__name__}"
            )
        hook = hook_class(conn_id=conn_id)
        hook._connection = info
        return hook

    def test_connection(self) -> tuple[bool, str]:
        """Try the connection: ``(ok, message)``. Subclasses override; the base cannot test anything."""
        return False, f"{type(self).__name__} cannot test its connection"


def hook_class_for(conn_type: str, conn_id: str | None = None) -> type[BaseHook]:
    """The hook class registered (by a plugin's ``flux_hooks``) for ``conn_type``."""
    from flux.plugins import get_plugin_manager

    manager = get_plugin_manager()
    try:
        return manager.get("hooks", conn_type)
    except MissingPluginError:
        available = ", ".join(sorted(manager.hooks())) or "none"
        which = f"connection {conn_id!r} has type {conn_type!r}, but " if conn_id else ""
        raise MissingPluginError(
            f"{which}no installed plugin provides a hook for connection type {conn_type!r} "
            f"(installed hook types: {available})"
        ) from None


def get_hook(conn_id: str) -> BaseHook:
    """An instance of the hook class serving connection ``conn_id`` (see :meth:`BaseHook.get_hook`)."""
    return BaseHook.get_hook(conn_id)
