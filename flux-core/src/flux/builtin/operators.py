"""Core's own operators: ``PythonOperator``, ``EmptyOperator`` (alias ``DummyOperator``) and
``FileSensor``, registered through core's plugin (``from flux.operators import PythonOperator``)."""

from __future__ import annotations

import glob
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from flux.baseoperator import BaseOperator
from flux.exceptions import DagDefinitionError
from flux.sensors import BaseSensorOperator


class EmptyOperator(BaseOperator):
    """Does nothing: a join point, a placeholder, or a marker in a DAG."""

    ui_color: ClassVar[str] = "#e8f7e4"

    def execute(self, context: dict[str, Any]) -> None:
        return None


class DummyOperator(EmptyOperator):
    """The same as :class:`EmptyOperator`, under the name Airflow users know."""


class PythonOperator(BaseOperator):
    """Call a Python function; what it returns is logged and pushed as the XCom ``return_value``.

    The function gets ``op_args`` and ``op_kwargs``, plus the template context keys it asks for:
    every key if it takes ``**kwargs``, else those named by its parameters (``ds``, ``ti``,
    ``params``, ``templates_dict``...)::

        def report(ds, ti, table):
            return f"{table} {ds} after {ti.xcom_pull(task_ids='load')}"

        PythonOperator(task_id="report", python_callable=report, op_kwargs={"table": "sales"})

    ``op_args``, ``op_kwargs`` and ``templates_dict`` are templated.
    """

    template_fields: ClassVar[Sequence[str]] = ("templates_dict", "op_args", "op_kwargs")
    ui_color: ClassVar[str] = "#ffefeb"

    def __init__(
        self,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not callable(python_callable):
            raise DagDefinitionError(
                f"task {self.task_id!r}: python_callable must be callable, got {python_callable!r}"
            )
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = dict(templates_dict) if templates_dict is not None else None

    def execute(self, context: dict[str, Any]) -> Any:
        context["templates_dict"] = self.templates_dict
        kwargs = callable_kwargs(self.python_callable, len(self.op_args), context, self.op_kwargs)
        return self.python_callable(*self.op_args, **kwargs)


def callable_kwargs(func: Callable[..., Any], positional: int, context: Mapping[str, Any],
                    explicit: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments to call ``func`` with: ``explicit`` plus the context keys it takes.

    Parameters already filled by the first ``positional`` arguments are left out.
    """
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: pass only what was given
        return dict(explicit)
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return {**context, **explicit}
    filled = {p.name for p in params[:positional]
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)}
    wanted = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    kwargs = {name: context[name] for name in wanted - filled if name in context}
    kwargs.update(explicit)
    return kwargs


class FileSensor(BaseSensorOperator):
    """Wait until a file exists (or a non-empty folder, or anything matching a glob pattern).

    :param filepath: templated; glob patterns (``data/*.csv``) allowed; a relative path is taken
        from the folder of the DAG file.
    """

    template_fields: ClassVar[Sequence[str]] = ("filepath",)
    ui_color: ClassVar[str] = "#91818a"

    def __init__(self, filepath: str | os.PathLike[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filepath = os.fspath(filepath)

    def resolved_path(self) -> str:
        """``filepath`` made absolute (relative to the DAG file's folder)."""
        path = os.path.expanduser(str(self.filepath))
        if not os.path.isabs(path):
            dag = self.dag
            base = os.path.dirname(os.path.abspath(dag.fileloc)) if dag and dag.fileloc \
                and os.path.exists(dag.fileloc) else os.getcwd()
            path = os.path.join(base, path)
        return path

    def poke(self, context: dict[str, Any]) -> bool:
        path = self.resolved_path()
        self.log.info("Poking for %s", path)
        candidates = glob.glob(path) if any(c in path for c in "*?[") else [path]
        for candidate in candidates:
            if os.path.isfile(candidate):
                self.log.info("Found file %s", candidate)
                return True
            if os.path.isdir(candidate) and any(os.scandir(candidate)):
                self.log.info("Found non-empty folder %s", candidate)
                return True
        return False
