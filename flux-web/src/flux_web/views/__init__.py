"""flux-web's own blueprints (registered through the ``flux_web_blueprints`` hook like any plugin's)."""

from __future__ import annotations

from typing import Any


def blueprints() -> list[Any]:
    """The login pages, the DAG and task instance pages, the site pages and the JSON API."""
    from flux_web.views import api, auth, dags, site, task_instances

    return [auth.bp, dags.bp, task_instances.bp, site.bp, api.bp]
