"""``MySqlOperator``: run SQL statements on a MySQL or MariaDB database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from flux.baseoperator import BaseOperator
from flux.exceptions import DagDefinitionError
from flux_mysql.errors import task_errors


class MySqlOperator(BaseOperator):
    """Run ``sql`` on the database of connection ``mysql_dbid``.

    :param sql: one or more statements separated by ``;``, a list of statements, or the name of
        a ``.sql`` template file (looked up next to the DAG file); rendered with Jinja first.
    :param mysql_dbid: the connection (type ``mysql``); may come from the DAG's ``default_args``.
    :param parameters: values for ``%s`` (a sequence) or ``%(name)s`` (a mapping) placeholders,
        handed to the driver, never pasted into the SQL; used by every statement.
    :param autocommit: commit each statement as it runs (default). With ``False`` the statements
        form one transaction, rolled back if one fails.
    :param database: use this database instead of the connection's schema.

    The connection is opened only when the task runs, never while the DAG file is parsed. A task
    stopped by its ``execution_timeout`` or a kill also stops its statement on the server.
    """

    template_fields: ClassVar[Sequence[str]] = ("sql",)
    template_ext: ClassVar[Sequence[str]] = (".sql",)
    ui_color: ClassVar[str] = "#ededed"

    def __init__(
        self,
        task_id: str,
        sql: str | Sequence[str],
        mysql_dbid: str | None = None,
        *,
        parameters: Sequence[Any] | Mapping[str, Any] | None = None,
        autocommit: bool = True,
        database: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id=task_id, **kwargs)
        _check_sql(sql, self.task_id)
        self.sql = sql
        self.mysql_dbid = mysql_dbid
        self.parameters = parameters
        self.autocommit = autocommit
        self.database = database

    def get_hook(self) -> Any:
        """The task's :class:`~flux_mysql.hooks.MySqlHook` (made when the task runs)."""
        from flux_mysql.hooks import MySqlHook

        return MySqlHook(mysql_dbid=self.mysql_dbid, database=self.database)

    def execute(self, context: dict[str, Any]) -> None:
        sql = self.sql if isinstance(self.sql, str) else ";\n".join(self.sql)
        self.log.info("Executing: %s", sql)
        hook = self._hook = self.get_hook()
        statements = self.sql if isinstance(self.sql, str) else list(self.sql)
        with task_errors(f"task {self.task_id!r} on {hook.conn_id!r}"):
            result = hook.run(statements, parameters=self.parameters, autocommit=self.autocommit)
        if isinstance(result, int) and result >= 0:
            self.log.info("Rows affected by the last statement: %d", result)
        elif isinstance(result, tuple):
            self.log.info("The last statement returned %d row(s)", len(result))

    def on_kill(self) -> None:
        """Stop the statement on the server too (``KILL QUERY``) when the task is stopped."""
        hook = getattr(self, "_hook", None)
        if hook is not None:
            hook.kill_queries()


def _check_sql(sql: Any, task_id: str) -> None:
    """Refuse an empty or non-text ``sql`` when the DAG is defined, not when it runs."""
    if isinstance(sql, str):
        if not sql.strip():
            raise DagDefinitionError(f"task {task_id!r}: sql is empty")
        return
    if isinstance(sql, Sequence) and sql and all(isinstance(item, str) for item in sql):
        return
    raise DagDefinitionError(
        f"task {task_id!r}: sql must be a string, a .sql file name or a non-empty list of strings, "
        f"not {sql!r}"
    )
