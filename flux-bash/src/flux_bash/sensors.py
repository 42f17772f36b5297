"""``BashSensor``: wait until a bash command exits with code 0."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flux.sensors import BaseSensorOperator
from flux_bash.command import BashCommandMixin
from flux_bash.operators import describe_exit


class BashSensor(BashCommandMixin, BaseSensorOperator):
    """Poke by running ``bash_command``: the condition holds when it exits with code 0.

    Takes the arguments of :class:`~flux_bash.operators.BashOperator` (``bash_command``, ``env``,
    ``append_env``, ``cwd``, ``output_encoding``; the first three templated) and those of
    :class:`~flux.sensors.BaseSensorOperator` (``poke_interval``, ``timeout``, ``soft_fail``,
    ``mode``). Each poke's output goes to the task log.
    """

    template_fields = ("bash_command", "env", "cwd")
    template_ext = (".sh", ".bash")

    def __init__(
        self,
        task_id: str,
        bash_command: str,
        *,
        env: Mapping[str, Any] | None = None,
        append_env: bool = True,
        cwd: str | None = None,
        output_encoding: str = "utf-8",
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id=task_id, **kwargs)
        self._set_bash_arguments(task_id, bash_command, env, append_env, cwd, output_encoding)

    def poke(self, context: dict[str, Any]) -> bool:
        code = self.run_bash_command(context).exit_code
        if code != 0:
            self.log.info("Condition not met: %s", describe_exit(code))
        return code == 0
