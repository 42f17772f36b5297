"""The OpenAPI 3.1 document of the JSON API (served at ``/api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

from flux.state import State


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _path_param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or {"type": "string"}}


def _query_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


_ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "404": {"$ref": "#/components/responses/NotFound"},
}
_WRITE_ERRORS = {**_ERRORS, "403": {"$ref": "#/components/responses/Forbidden"}}

DAG_ID = _path_param("dag_id", "The DAG's id.")
TASK_ID = _path_param("task_id", "The task's id.")
EXECUTION_DATE = _path_param("execution_date", "An execution date: YYYY-MM-DD or ISO 8601 (UTC if "
                             "no offset), e.g. 2024-01-01T00:00:00.")
TRY_NUMBER = _path_param("try_number", "The try (1 for the first).", {"type": "integer", "minimum": 1})
LIMIT = _query_param("limit", "How many to return (1 to 1000).",
                     {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})
OFFSET = _query_param("offset", "How many to skip.", {"type": "integer", "minimum": 0, "default": 0})

STATE = {"type": ["string", "null"], "enum": [*(s for s in State.ALL if s is not None), None],
         "description": "A task instance state (null: none yet)."}
DATE_TIME = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error", "status"],
              "properties": {"error": {"type": "string", "description": "Why, in one line."},
                             "status": {"type": "integer"}}},
    "Dag": {"type": "object", "properties": {
        "dag_id": {"type": "string"}, "owners": {"type": ["string", "null"]},
        "description": {"type": ["string", "null"]}, "schedule": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}}, "is_paused": {"type": "boolean"},
        "is_active": {"type": "boolean"}, "next_dagrun": DATE_TIME,
        "fileloc": {"type": ["string", "null"]},
        "recent_runs": {"type": "object", "additionalProperties": {"type": "integer"},
                        "description": "State counts of the latest 25 runs."},
        "last_run": {"type": ["object", "null"], "properties": {
            "execution_date": DATE_TIME, "state": {"type": "string"}}},
    }},
    "DagDetail": {"allOf": [_ref("Dag"), {"type": "object", "properties": {
        "tasks": {"type": "array", "items": {"type": "object", "properties": {
            "task_id": {"type": "string"}, "operator": {"type": "string"},
            "upstream_task_ids": {"type": "array", "items": {"type": "string"}},
            "downstream_task_ids": {"type": "array", "items": {"type": "string"}}}}}}}]},
    "DagRun": {"type": "object", "properties": {
        "dag_id": {"type": "string"}, "run_id": {"type": "string"}, "execution_date": DATE_TIME,
        "state": {"type": "string"}, "run_type": {"type": "string",
                                                  "enum": ["scheduled", "backfill", "manual"]},
        "external_trigger": {"type": "boolean"}, "conf": {"type": ["object", "null"]},
        "start_date": DATE_TIME, "end_date": DATE_TIME}},
    "TaskInstance": {"type": "object", "properties": {
        "dag_id": {"type": "string"}, "task_id": {"type": "string"}, "execution_date": DATE_TIME,
        "state": STATE, "try_number": {"type": "integer"}, "max_tries": {"type": "integer"},
        "start_date": DATE_TIME, "end_date": DATE_TIME, "duration": {"type": ["number", "null"]},
        "hostname": {"type": ["string", "null"]}, "pid": {"type": ["integer", "null"]},
        "operator": {"type": ["string", "null"]}, "pool": {"type": ["string", "null"]},
        "queue": {"type": ["string", "null"]}, "priority_weight": {"type": "integer"},
        "note": {"type": ["string", "null"]}}},
    "Log": {"type": "object", "properties": {
        "content": {"type": "string", "description": "The log text (secrets masked)."},
        "offset": {"type": "integer", "description": "The byte offset content starts at."},
        "next_offset": {"type": "integer", "description": "Ask from here for what follows."},
        "exists": {"type": "boolean"}, "size": {"type": "integer"}}},
}


def document() -> dict[str, Any]:
    """The whole document, as a dictionary."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        flux_web_version = version("flux-web")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        flux_web_version = "0"
    ti_path = "/dags/{dag_id}/tasks/{task_id}/instances/{execution_date}"
    return {
        "openapi": "3.1.0",
        "info": {"title": "Flux API", "version": flux_web_version,
                 "description": "DAGs, runs, task instances and their logs; trigger and clear. "
                                "Writes need the admin role."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"basic": []}, {"session": []}],
        "paths": {
            "/dags": {"get": {
                "operationId": "listDags", "summary": "List DAGs (by dag_id), with import errors.",
                "parameters": [LIMIT, OFFSET, _query_param("q", "Only DAG ids containing this.",
                                                           {"type": "string"})],
                "responses": {"200": _json({"type": "object", "properties": {
                    "dags": {"type": "array", "items": _ref("Dag")},
                    "total_entries": {"type": "integer"},
                    "import_errors": {"type": "array", "items": {"type": "object", "properties": {
                        "filename": {"type": "string"}, "timestamp": DATE_TIME,
                        "stacktrace": {"type": ["string", "null"]}}}}}}), **_ERRORS}}},
            "/dags/{dag_id}": {
                "parameters": [DAG_ID],
                "get": {"operationId": "getDag", "summary": "One DAG and its tasks.",
                        "responses": {"200": _json(_ref("DagDetail")), **_ERRORS}},
                "patch": {"operationId": "patchDag", "summary": "Pause or unpause a DAG.",
                          "requestBody": {"required": True, "content": {"application/json": {
                              "schema": {"type": "object", "required": ["is_paused"],
                                         "properties": {"is_paused": {"type": "boolean"}},
                                         "additionalProperties": False}}}},
                          "responses": {"200": _json(_ref("Dag")), **_WRITE_ERRORS}}},
            "/dags/{dag_id}/runs": {
                "parameters": [DAG_ID],
                "get": {"operationId": "listDagRuns", "summary": "A DAG's runs, newest first.",
                        "parameters": [LIMIT, OFFSET],
                        "responses": {"200": _json({"type": "object", "properties": {
                            "dag_runs": {"type": "array", "items": _ref("DagRun")}}}), **_ERRORS}},
                "post": {"operationId": "triggerDagRun",
                         "summary": "Trigger a manual run (queued for the scheduler).",
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"type": "object", "additionalProperties": False,
                                        "properties": {
                                            "conf": {"type": "object",
                                                     "description": "Passed to the run."},
                                            "execution_date": {"type": "string",
                                                               "description": "Default: now."}}}}}},
                         "responses": {"201": _json(_ref("DagRun"), "Created"),
                                       "409": {"$ref": "#/components/responses/Conflict"},
                                       **_WRITE_ERRORS}}},
            "/dags/{dag_id}/runs/{execution_date}/taskInstances": {
                "parameters": [DAG_ID, EXECUTION_DATE],
                "get": {"operationId": "listTaskInstances",
                        "summary": "The task instances of one run (one execution date).",
                        "responses": {"200": _json({"type": "object", "properties": {
                            "task_instances": {"type": "array", "items": _ref("TaskInstance")}}}),
                            **_ERRORS}}},
            ti_path: {
                "parameters": [DAG_ID, TASK_ID, EXECUTION_DATE],
                "get": {"operationId": "getTaskInstance", "summary": "One task instance.",
                        "responses": {"200": _json(_ref("TaskInstance")), **_ERRORS}}},
            ti_path + "/state": {
                "parameters": [DAG_ID, TASK_ID, EXECUTION_DATE],
                "post": {"operationId": "setTaskInstanceState",
                         "summary": "Mark a task instance success or failed.",
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"type": "object", "required": ["state"], "properties": {
                                 "state": {"type": "string", "enum": ["success", "failed"]}}}}}},
                         "responses": {"200": _json(_ref("TaskInstance")), **_WRITE_ERRORS}}},
            ti_path + "/logs/{try_number}": {
                "parameters": [DAG_ID, TASK_ID, EXECUTION_DATE, TRY_NUMBER],
                "get": {"operationId": "getLog",
                        "summary": "One try's log (the last MiB, or from a byte offset).",
                        "parameters": [_query_param("offset", "Read from this byte on.",
                                                    {"type": "integer", "minimum": 0})],
                        "responses": {"200": _json(_ref("Log")), **_ERRORS}}},
            "/dags/{dag_id}/clear": {
                "parameters": [DAG_ID],
                "post": {"operationId": "clearTaskInstances",
                         "summary": "Clear task instances so they run again (dry_run only lists).",
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"type": "object", "required": ["task_ids"],
                                        "additionalProperties": False, "properties": {
                                            "task_ids": {"type": "array", "minItems": 1,
                                                         "items": {"type": "string"}},
                                            "start_date": {"type": "string"},
                                            "end_date": {"type": "string"},
                                            "include_upstream": {"type": "boolean"},
                                            "include_downstream": {"type": "boolean"},
                                            "only_failed": {"type": "boolean"},
                                            "dry_run": {"type": "boolean"}}}}}},
                         "responses": {"200": _json({"type": "object", "properties": {
                             "dry_run": {"type": "boolean"},
                             "task_instances": {"type": "array", "items": {
                                 "type": "object", "properties": {
                                     "task_id": {"type": "string"}, "execution_date": DATE_TIME,
                                     "state": STATE}}}}}), **_WRITE_ERRORS}}},
            "/openapi.json": {"get": {
                "operationId": "getOpenApi", "summary": "This document.",
                "responses": {"200": _json({"type": "object"}), "401": _ERRORS["401"]}}},
        },
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic",
                          "description": "A web user's name and password (flux users create)."},
                "session": {"type": "apiKey", "in": "cookie", "name": "flux_session",
                            "description": "The signed-in browser session; writes also need the "
                                           "X-CSRF-Token header."},
            },
            "schemas": SCHEMAS,
            "responses": {
                name: _json(_ref("Error"), description)
                for name, description in (("BadRequest", "Bad input (the reason is in error)"),
                                          ("Unauthorized", "Not signed in"),
                                          ("Forbidden", "The user's role may not do this"),
                                          ("NotFound", "No such DAG, task, instance or try"),
                                          ("Conflict", "The DAG already has a run for that date"))
            },
        },
    }
