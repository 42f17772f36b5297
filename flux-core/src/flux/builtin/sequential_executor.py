"""``SequentialExecutor``: one try at a time, in the calling process (easy to debug with pdb)."""

from __future__ import annotations

from typing import ClassVar

from flux.executors.base import BaseExecutor, TaskEvent, execute_request


class SequentialExecutor(BaseExecutor):
    """Runs each try in this process, one after the other; ``parallelism`` is always 1."""

    executor_name: ClassVar[str] = "sequential"
    runs_out_of_process: ClassVar[bool] = False
    shares_memory: ClassVar[bool] = True

    def __init__(self, parallelism: int | None = None) -> None:
        super().__init__(1)

    def get_events(self, timeout: float = 0.0) -> list[TaskEvent]:
        return [self.finished(execute_request(request)) for request in self.take_pending(1)]
