"""``HelloOperator``: a task that greets someone and returns the greeting (its XCom value)."""

from __future__ import annotations

from typing import Any

from flux.baseoperator import BaseOperator
from flux_hello.macros import greet


class HelloOperator(BaseOperator):
    """Log ``Hello, <name>!`` and return it.

    ``name`` is templated, so ``HelloOperator(task_id="hi", name="{{ ds }}")`` greets the date.
    """

    template_fields = ("name",)
    ui_color = "#ffe9a8"

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name = name

    def execute(self, context: dict[str, Any]) -> str:
        message = greet(self.name)
        self.log.info(message)
        return message
