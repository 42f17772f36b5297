"""``CeleryExecutor``: task instances run on ``flux worker`` processes, on any machine, via a broker.

Sending: each request becomes one message on its task's queue (the operator's ``queue``, default
``[celery] default_queue``), a JSON payload naming its DAG file and its try number.

Learning how tries ended, two ways, so that no outcome is ever lost:

* **the result backend, in bulk**: each call of :meth:`get_events` reads the states of every
  message in flight with one round trip (one ``MGET`` on Redis), then sleeps a little (20 ms,
  growing to 250 ms while nothing ends) until something ended or ``timeout`` passed;
* **the metadata database, every** ``[celery] sync_interval`` **seconds**: the task instances in
  flight are read in one query. One that ended there while its result never came (a result backend
  restarted empty) is reported from its row; one whose try stopped heartbeating for
  ``[scheduler] zombie_threshold_seconds`` (its whole worker machine died) is failed or set up for
  retry; one still queued ``[celery] queued_timeout`` seconds after it was sent (no worker listens
  on its queue, or the broker lost the message) counts as a failed try.

The broker being down never loses a task instance: requests that cannot be sent stay pending and
are sent again every few seconds, with one clear log line each time.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, ClassVar

from flux.executors.base import BaseExecutor, TaskEvent, TaskKey, TaskRequest, handle_lost_try
from flux_celery.errors import BrokerUnavailable
from flux_celery.payload import request_to_payload, result_to_event
from flux_celery.settings import CelerySettings, redact

log = logging.getLogger(__name__)

#: seconds between two tries to reach a broker that is down
BROKER_RETRY_SECONDS = 3.0
#: seconds an answer about which queues the workers consume is trusted
QUEUE_CHECK_SECONDS = 300.0
_ENDED = frozenset({"SUCCESS", "FAILURE", "REVOKED"})


@dataclass
class _Sent:
    request: TaskRequest
    message_id: str
    sent_at: float


class CeleryExecutor(BaseExecutor):
    """Sends task instances to Celery workers (``flux worker``); at most ``parallelism`` in flight."""

    executor_name: ClassVar[str] = "celery"
    runs_out_of_process: ClassVar[bool] = True
    shares_memory: ClassVar[bool] = False

    def __init__(self, parallelism: int | None = None) -> None:
        super().__init__(parallelism)
        self.settings = CelerySettings.from_config()
        self.sent: dict[TaskKey, _Sent] = {}
        self._app: Any = None
        self._last_sync = time.monotonic()
        self._broker_down = False
        self._next_send_try = 0.0
        self._backend_down = False
        self._queues_seen: dict[str, float] = {}

    def __repr__(self) -> str:
        return (f"<CeleryExecutor parallelism={self.parallelism} "
                f"broker={redact(self.settings.broker_url)}>")

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def app(self) -> Any:
        if self._app is None:
            from flux_celery.app import get_app

            self._app = get_app(self.settings)
        return self._app

    def start(self) -> None:
        """Check the broker once; when it is down, say so (requests wait and are retried)."""
        try:
            self.check_broker()
        except BrokerUnavailable as exc:
            self._note_broker_down(exc)
        else:
            log.info("Celery broker %s reachable", redact(self.settings.broker_url))

    def check_broker(self) -> None:
        """Raise :class:`BrokerUnavailable` unless the broker accepts a connection now."""
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0,
                                             timeout=self.settings.broker_timeout)
        except Exception as exc:  # kombu raises many kinds; all mean "not reachable"
            raise BrokerUnavailable(self._broker_message(exc)) from None

    def _broker_message(self, exc: BaseException) -> str:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"cannot reach the Celery broker {redact(self.settings.broker_url)}: {detail}"

    def _note_broker_down(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, BrokerUnavailable) else self._broker_message(exc)
        log.error("%s; %d task instance(s) wait, retrying every %g s", message,
                  len(self.pending), BROKER_RETRY_SECONDS)
        self._broker_down = True
        self._next_send_try = time.monotonic() + BROKER_RETRY_SECONDS

    def end(self) -> None:
        """Wait until every sent try ended; requests the broker never took are given back."""
        while self.sent or self.pending:
            if self.pending and self._broker_down:
                log.warning("stopping with %d task instance(s) never sent (broker down): they go "
                            "back to the scheduler", len(self.pending))
                self.pending.clear()
            self.get_events(timeout=1.0)

    def terminate(self, grace: float = 10.0) -> list[TaskEvent]:
        """Stop running tries (their workers get SIGTERM and mark them failed); forget the rest."""
        self.pending.clear()
        events: list[TaskEvent] = []
        if self.sent:
            ids = [sent.message_id for sent in self.sent.values()]
            try:
                self.app.control.revoke(ids, terminate=True, signal="SIGTERM")
            except Exception as exc:
                log.error("could not revoke running tasks: %s", exc)
            deadline = time.monotonic() + grace
            while self.sent and time.monotonic() < deadline:
                events.extend(self.get_events(timeout=0.5))
            events.extend(self._sync(force=True, final=True))
        for key in list(self.sent):  # not stopped in time: its row tells later how it ended
            self.sent.pop(key)
            self.running.pop(key, None)
        return events

    # --- sending ---------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        if not self.pending or (self._broker_down and time.monotonic() < self._next_send_try):
            return
        for request in self.take_pending():
            try:
                self._send(request)
            except Exception as exc:
                # back to the front of the line, with everything not sent yet
                unsent = [r for r in self.running.values() if r.key not in self.sent]
                for item in unsent:
                    self.running.pop(item.key, None)
                self.pending[:0] = sorted(unsent, key=lambda r: r is not request)
                self._note_broker_down(exc)
                return
        if self._broker_down:
            log.info("Celery broker %s is back", redact(self.settings.broker_url))
            self._broker_down = False

    def _send(self, request: TaskRequest) -> None:
        from flux_celery.app import TASK_NAME

        queue = request.queue or self.settings.default_queue
        message_id = str(uuid.uuid4())
        options: dict[str, Any] = {}
        if request.hard_timeout:
            options["time_limit"] = request.hard_timeout
        self.app.send_task(TASK_NAME, args=[request_to_payload(request)], queue=queue,
                           task_id=message_id, retry=False, **options)
        self.sent[request.key] = _Sent(request, message_id, time.monotonic())
        self._check_queue(queue)

    def _check_queue(self, queue: str) -> None:
        """Warn once in a while when no worker consumes ``queue`` (its tasks would only wait)."""
        now = time.monotonic()
        if now - self._queues_seen.get(queue, -QUEUE_CHECK_SECONDS) < QUEUE_CHECK_SECONDS:
            return
        self._queues_seen[queue] = now
        try:
            replies = self.app.control.inspect(timeout=1.0).active_queues() or {}
        except Exception as exc:
            log.debug("could not ask the workers for their queues: %s", exc)
            return
        consumed = {q.get("name") for queues in replies.values() for q in queues or []}
        if queue not in consumed:
            log.warning("no Celery worker consumes queue %r now: its task instances wait for one "
                        "(start one with: flux worker -q %s); a try not picked up within %g s "
                        "fails ([celery] queued_timeout)", queue, queue,
                        self.settings.queued_timeout)

    # --- collecting ------------------------------------------------------------------------------

    def get_events(self, timeout: float = 0.0) -> list[TaskEvent]:
        self._dispatch()
        deadline = time.monotonic() + max(timeout, 0.0)
        pause = 0.02
        while True:
            events = self._poll_results()
            events.extend(self._sync())
            remaining = deadline - time.monotonic()
            if events or remaining <= 0 or not (self.sent or self.pending):
                break
            time.sleep(min(pause, remaining))
            pause = min(pause * 1.5, 0.25)
            self._dispatch()
        self._dispatch()
        return events

    def _done(self, key: TaskKey, event: TaskEvent) -> TaskEvent:
        self.sent.pop(key, None)
        return self.finished(event)

    def _poll_results(self) -> list[TaskEvent]:
        if not self.sent:
            return []
        try:
            metas = self._ended_metas([sent.message_id for sent in self.sent.values()])
        except Exception as exc:
            if not self._backend_down:
                log.error("cannot read the Celery result backend %s: %s (outcomes are read from "
                          "the metadata database meanwhile)", redact(self.settings.result_backend),
                          str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            self._backend_down = True
            return []
        self._backend_down = False
        events = []
        for key, sent in list(self.sent.items()):
            meta = metas.get(sent.message_id)
            if meta is None:
                continue
            if meta["status"] == "SUCCESS":
                event = result_to_event(sent.request, meta.get("result"))
            else:
                event = self._lost(sent.request, f"the worker could not run it: {_describe(meta)}")
            events.append(self._done(key, event))
        if events:
            self._forget([self.app.backend.get_key_for_task(m) for m in metas]
                         if hasattr(self.app.backend, "get_key_for_task") else [])
        return events

    def _ended_metas(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored outcome of each ended message among ``ids``, read in one round trip."""
        backend = self.app.backend
        found: dict[str, dict[str, Any]] = {}
        if hasattr(backend, "mget") and hasattr(backend, "get_key_for_task"):
            values = backend.mget([backend.get_key_for_task(i) for i in ids])
            for message_id, value in zip(ids, values, strict=True):
                if value:
                    meta = backend.decode_result(value)
                    if meta.get("status") in _ENDED:
                        found[message_id] = meta
            return found
        for message_id in ids:  # a backend without bulk reads (rpc://, databases)
            meta = backend.get_task_meta(message_id)
            if meta.get("status") in _ENDED:
                found[message_id] = meta
        return found

    def _forget(self, keys: list[Any]) -> None:
        """Delete read results at once (one round trip) rather than leave them to expire."""
        client = getattr(self.app.backend, "client", None)
        if not keys or client is None or not hasattr(client, "delete"):
            return
        try:
            client.delete(*keys)
        except Exception:  # they expire anyway
            pass

    def _lost(self, request: TaskRequest, reason: str) -> TaskEvent:
        state = handle_lost_try(request.key, request.try_number, reason)
        log.error("%s try %d: %s -> %s", ".".join(request.key[:2]), request.try_number, reason, state)
        return TaskEvent(request.key, state, request.try_number, message=reason)

    # --- the metadata database -------------------------------------------------------------------

    def _sync(self, force: bool = False, final: bool = False) -> list[TaskEvent]:
        """Settle what the result backend cannot tell: lost results, dead machines, lost messages."""
        now = time.monotonic()
        if not self.sent or (not force and now - self._last_sync < self.settings.sync_interval):
            return []
        self._last_sync = now
        from flux.config import get_config
        from flux.dates import utcnow
        from flux.exceptions import FluxError
        from flux.state import State

        try:
            rows = self._rows(list(self.sent))
        except FluxError as exc:
            log.error("cannot check task instances in the metadata database: %s", exc)
            return []
        threshold = float(get_config().get("scheduler", "zombie_threshold_seconds", 60.0))
        wall = utcnow()
        events = []
        for key, sent in list(self.sent.items()):
            request, row = sent.request, rows.get(key)
            if row is None:
                events.append(self._done(key, TaskEvent(key, None, request.try_number,
                                                        "the task instance was deleted")))
                continue
            state, tries, beat = row
            if state == State.QUEUED and tries == request.try_number - 1:
                waited = now - sent.sent_at
                if final or waited > self.settings.queued_timeout:
                    queue = request.queue or self.settings.default_queue
                    if final:
                        continue  # never started: the caller releases it
                    events.append(self._done(key, self._lost(request, (
                        f"not picked up by any worker within {waited:.0f} s (queue {queue!r}: is "
                        f"a worker listening? flux worker -q {queue})"))))
            elif state == State.RUNNING and tries == request.try_number:
                silent = (wall - beat).total_seconds() if beat is not None else 0.0
                if silent > threshold:
                    events.append(self._done(key, self._lost(request, (
                        f"worker lost: no heartbeat for {silent:.0f} s"))))
            else:  # ended (or taken over by someone else): the row is the truth
                events.append(self._done(key, TaskEvent(key, state, tries,
                                                        "read from the metadata database")))
        return events

    @staticmethod
    def _rows(keys: list[TaskKey]) -> dict[TaskKey, tuple[str | None, int, Any]]:
        from sqlalchemy import select

        from flux.db import session_scope
        from flux.models import TaskInstance as TI  # noqa: N817 - short in queries

        by_dag: dict[str, set[TaskKey]] = defaultdict(set)
        for key in keys:
            by_dag[key[0]].add(key)
        found: dict[TaskKey, tuple[str | None, int, Any]] = {}
        with session_scope() as session:
            for dag_id, wanted in by_dag.items():
                dates = sorted({k[2] for k in wanted})
                tasks = sorted({k[1] for k in wanted})
                for chunk in range(0, len(dates), 500):
                    rows = session.execute(select(
                        TI.task_id, TI.execution_date, TI.state, TI.try_number, TI.heartbeat,
                        TI.start_date).where(TI.dag_id == dag_id,
                                             TI.execution_date.in_(dates[chunk:chunk + 500]),
                                             TI.task_id.in_(tasks))).all()
                    for task_id, when, state, tries, beat, started in rows:
                        key = (dag_id, task_id, when)
                        if key in wanted:
                            found[key] = (state, tries, beat or started)
        return found


def _describe(meta: dict[str, Any]) -> str:
    result = meta.get("result")
    if isinstance(result, dict) and "exc_type" in result:
        message = result.get("exc_message")
        if isinstance(message, (list, tuple)):
            message = " ".join(map(str, message))
        return f"{meta['status']} {result['exc_type']}: {message}"
    return f"{meta['status']} {result!r:.300}"
