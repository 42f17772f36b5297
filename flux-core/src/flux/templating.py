"""Rendering templated operator fields with Jinja2 (``StrictUndefined``: typos fail loudly)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from flux.exceptions import TemplateError

if TYPE_CHECKING:
    import jinja2

    from flux.baseoperator import BaseOperator
    from flux.dag import DAG

_environments: dict[tuple[str, ...], jinja2.Environment] = {}


def search_path(dag: DAG | None) -> list[str]:
    """Where template files are looked up: the DAG file's folder, then its template_searchpath."""
    paths: list[str] = []
    if dag is not None:
        if dag.fileloc and os.path.exists(dag.fileloc):
            paths.append(os.path.dirname(os.path.abspath(dag.fileloc)))
        paths.extend(dag.template_searchpath)
    paths.append(os.getcwd())
    return paths


def get_environment(dag: DAG | None) -> jinja2.Environment:
    """A Jinja environment for one DAG (cached per search path)."""
    import jinja2

    paths = tuple(search_path(dag))
    env = _environments.get(paths)
    if env is None:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(list(paths)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )
        _environments[paths] = env
    return env


def render_value(value: Any, context: dict[str, Any], env: jinja2.Environment,
                 template_ext: tuple[str, ...] = ()) -> Any:
    """Render strings (and strings inside lists, tuples and dicts) with ``context``."""
    if isinstance(value, str):
        if template_ext and value.strip().endswith(template_ext):
            return env.get_template(value.strip()).render(context)
        if "{" not in value:
            return value  # no {{ }}, {% %} or {# #}: compiling it would change nothing
        return env.from_string(value).render(context)
    if isinstance(value, (list, tuple)):
        return type(value)(render_value(v, context, env, template_ext) for v in value)
    if isinstance(value, dict):
        return {k: render_value(v, context, env, template_ext) for k, v in value.items()}
    return value


def render_operator_fields(task: BaseOperator, context: dict[str, Any]) -> dict[str, Any]:
    """Render every ``template_fields`` attribute of ``task`` in place; return the rendered values."""
    import jinja2

    env = get_environment(task.dag)
    extra_globals = task.dag.user_defined_macros if task.dag is not None else {}
    if extra_globals:
        context = {**extra_globals, **context}
    rendered: dict[str, Any] = {}
    for field in task.template_fields:
        value = getattr(task, field, None)
        try:
            result = render_value(value, context, env, tuple(task.template_ext))
        except jinja2.UndefinedError as exc:
            raise TemplateError(
                f"cannot render {field!r} of task {task.task_id!r}: {exc.message}"
            ) from None
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(
                f"cannot render {field!r} of task {task.task_id!r}: template file {exc.name!r} "
                f"not found in {', '.join(search_path(task.dag))}"
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"cannot render {field!r} of task {task.task_id!r}: {exc.message} (line {exc.lineno})"
            ) from None
        setattr(task, field, result)
        rendered[field] = result
    return rendered
