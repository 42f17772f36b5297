"""``BashOperator``: run a bash command (or a templated ``.sh`` file) as a task."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from typing import Any

from flux.baseoperator import BaseOperator
from flux.exceptions import DagDefinitionError, TaskFailed, TaskSkipped
from flux_bash.command import BashCommandMixin

#: what bash itself exits with when it cannot find or cannot execute a command
_BASH_EXIT_HINTS = {126: "command not executable", 127: "command not found"}


class BashOperator(BashCommandMixin, BaseOperator):
    """Run ``bash_command`` with bash; its last output line is the task's return value (XCom).

    Every output line (stderr merged into stdout) goes to the task log as it is printed. A non-zero
    exit code fails the task, except ``skip_exit_code``, which marks it skipped. When the task is
    stopped (execution_timeout, SIGTERM, the instance cleared) the command's whole process group
    gets SIGTERM, then SIGKILL after ``[core] killed_task_grace_seconds``.

    :param bash_command: the command; templated. A value ending in ``.sh`` or ``.bash`` names a
        template file, looked up next to the DAG file (and in the DAG's ``template_searchpath``).
    :param env: environment variables for the command; templated.
    :param append_env: add ``env`` to this process's environment (True) or use ``env`` alone
        (False). ``FLUX_CTX_DAG_ID``, ``FLUX_CTX_TASK_ID``, ``FLUX_CTX_EXECUTION_DATE`` and
        ``FLUX_CTX_TRY_NUMBER`` are always set.
    :param cwd: the working directory; templated. Default: a temporary folder, removed afterwards.
    :param output_encoding: how the output is decoded (undecodable bytes become U+FFFD).
    :param skip_exit_code: an exit code that marks the task skipped instead of failed.
    """

    template_fields = ("bash_command", "env", "cwd")
    template_ext = (".sh", ".bash")
    ui_color = "#f0ede4"

    def __init__(
        self,
        task_id: str,
        bash_command: str,
        *,
        env: Mapping[str, Any] | None = None,
        append_env: bool = True,
        cwd: str | None = None,
        output_encoding: str = "utf-8",
        skip_exit_code: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id=task_id, **kwargs)
        self._set_bash_arguments(task_id, bash_command, env, append_env, cwd, output_encoding)
        if skip_exit_code is not None and (isinstance(skip_exit_code, bool)
                                           or not isinstance(skip_exit_code, int)):
            raise DagDefinitionError(f"task {task_id!r}: skip_exit_code must be an integer or None")
        self.skip_exit_code = skip_exit_code

    def execute(self, context: dict[str, Any]) -> str | None:
        result = self.run_bash_command(context)
        code = result.exit_code
        if self.skip_exit_code is not None and code == self.skip_exit_code:
            raise TaskSkipped(f"Bash command exited with code {code} (skip_exit_code)")
        if code != 0:
            raise TaskFailed(f"Bash command failed: {describe_exit(code)}")
        return result.last_line


def describe_exit(code: int) -> str:
    """``exit code 3``, ``exit code 127 (command not found)``, ``killed by signal SIGKILL``."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"killed by signal {name} (exit code {code})"
    hint = _BASH_EXIT_HINTS.get(code)
    return f"exit code {code} ({hint})" if hint else f"exit code {code}"
