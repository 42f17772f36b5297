"""What a worker does with one message: run the try it names, exactly once, as ``flux run`` does.

A message names one try (``try_number``) of one task instance. The try runs only if the instance
is still ``queued`` at ``try_number - 1`` (:func:`flux.executors.base.execute_request` claims it
with a guarded update), so a message delivered twice never runs its try twice.

A message comes back after its worker died mid-task (late acknowledgement). The instance is then
``running`` at this very try, and who runs it may be dead or alive (the broker may also hand out a
copy while the first worker still runs it). The worker does not guess: it watches the try in the
metadata database until its fate is known —

* the try ends (its worker was alive after all): report its outcome;
* its heartbeat is older than ``[scheduler] zombie_threshold_seconds`` (its worker is dead): the
  lost try is failed or set up for retry (:func:`flux.executors.base.handle_lost_try`) and that is
  reported; the scheduler then sends the *next* try as a new message, which runs once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flux.executors.base import TaskEvent, TaskRequest, execute_request
from flux_celery.payload import event_to_result, payload_to_request

log = logging.getLogger(__name__)


def run_payload(payload: dict[str, Any], redelivered: bool = False) -> dict[str, Any]:
    """Run the try a message names (or settle it if it started before); returns the result dict."""
    request = payload_to_request(payload)
    event = settle_started_try(request, redelivered)
    if event is None:
        event = execute_request(request)
    return event_to_result(event)


def _snapshot(request: TaskRequest) -> tuple[str | None, int, Any] | None:
    from flux.db import session_scope
    from flux.models import TaskInstance

    with session_scope() as session:
        ti = session.get(TaskInstance, request.key)
        if ti is None:
            return None
        return ti.state, ti.try_number, ti.heartbeat or ti.start_date


def settle_started_try(request: TaskRequest, redelivered: bool = False,
                       poll: float | None = None) -> TaskEvent | None:
    """None if ``request``'s try has not started (run it); else wait for its fate and return it."""
    from flux.config import get_config
    from flux.dates import utcnow
    from flux.executors.base import handle_lost_try
    from flux.state import State

    config = get_config()
    threshold = float(config.get("scheduler", "zombie_threshold_seconds", 60.0))
    interval = poll if poll is not None else max(
        float(config.get("scheduler", "heartbeat_seconds", 5.0)) / 2, 0.2)
    name = ".".join(request.key[:2])
    announced = False
    while True:
        seen = _snapshot(request)
        if seen is None or seen[0] != State.RUNNING or seen[1] != request.try_number:
            if announced and seen is not None:
                return TaskEvent(request.key, seen[0], seen[1],
                                 message="the try was finished by the worker that started it")
            return None  # not started (or long settled): execute_request decides, fenced
        beat = seen[2]
        if not announced:
            log.warning("%s try %d is already running elsewhere (message %s): waiting to see "
                        "whether its worker is alive", name, request.try_number,
                        "redelivered" if redelivered else "delivered twice")
            announced = True
        silent = (utcnow() - beat).total_seconds() if beat is not None else threshold + 1
        if silent > threshold:
            reason = (f"worker lost: try {request.try_number} stopped heartbeating "
                      f"{silent:.0f} s ago; its message was redelivered")
            new_state = handle_lost_try(request.key, request.try_number, reason)
            log.warning("%s try %d: %s -> %s", name, request.try_number, reason, new_state)
            return TaskEvent(request.key, new_state, request.try_number, message=reason)
        time.sleep(interval)
