"""Task requests and events as JSON-safe dicts (what crosses the broker and the result backend)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from flux.executors.base import TaskEvent, TaskRequest

VERSION = 1


def request_to_payload(request: TaskRequest) -> dict[str, Any]:
    """``request`` as a JSON-safe dict."""
    payload = dataclasses.asdict(request)
    payload["execution_date"] = request.execution_date.isoformat()
    payload["v"] = VERSION
    return payload


def payload_to_request(payload: dict[str, Any]) -> TaskRequest:
    """The request a payload describes; a ValueError for a message this version cannot read."""
    if not isinstance(payload, dict) or payload.get("v") != VERSION:
        raise ValueError(f"not a flux task request (version {VERSION}): {payload!r:.200}")
    names = {f.name for f in dataclasses.fields(TaskRequest)}
    values = {k: v for k, v in payload.items() if k in names}
    values["execution_date"] = datetime.fromisoformat(values["execution_date"])
    return TaskRequest(**values)


def event_to_result(event: TaskEvent) -> dict[str, Any]:
    """What a worker returns for a request (stored by the result backend)."""
    return {"state": event.state, "try_number": event.try_number, "message": event.message[:2000]}


def result_to_event(request: TaskRequest, result: Any) -> TaskEvent:
    """The event a worker's result stands for (a malformed result: state unknown)."""
    if not isinstance(result, dict):
        return TaskEvent(request.key, None, request.try_number, message=f"unreadable result {result!r:.200}")
    return TaskEvent(request.key, result.get("state"), int(result.get("try_number") or request.try_number),
                     message=str(result.get("message") or ""))
