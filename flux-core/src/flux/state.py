"""The states a task instance or DAG run can be in, and the trigger rules between tasks."""

from __future__ import annotations


class State:
    """Task instance and DAG run states (plain strings, as stored in the database)."""

    NONE = None
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"

    #: states a task instance never leaves by itself
    FINISHED = frozenset({SUCCESS, FAILED, UPSTREAM_FAILED, SKIPPED})
    #: states in which a task instance holds (or is about to hold) an executor slot
    ACTIVE = frozenset({QUEUED, RUNNING})
    #: states the scheduler still has to act on
    UNFINISHED = frozenset({None, SCHEDULED, QUEUED, RUNNING, UP_FOR_RETRY, UP_FOR_RESCHEDULE})
    ALL = (None, SCHEDULED, QUEUED, RUNNING, SUCCESS, FAILED, UP_FOR_RETRY,
           UP_FOR_RESCHEDULE, UPSTREAM_FAILED, SKIPPED)

    #: colours used by the CLI and the web UI
    COLORS = {
        None: "#e5e7eb",
        SCHEDULED: "#d2b48c",
        QUEUED: "#9ca3af",
        RUNNING: "#84cc16",
        SUCCESS: "#16a34a",
        FAILED: "#dc2626",
        UP_FOR_RETRY: "#f59e0b",
        UP_FOR_RESCHEDULE: "#06b6d4",
        UPSTREAM_FAILED: "#f97316",
        SKIPPED: "#ec4899",
    }


class DagRunState:
    """DAG run states."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    FINISHED = frozenset({SUCCESS, FAILED})


class TriggerRule:
    """When a task may run, given the states of its upstream tasks."""

    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    NONE_FAILED = "none_failed"
    ALWAYS = "always"
    ALL = frozenset({ALL_SUCCESS, ALL_FAILED, ALL_DONE, ONE_SUCCESS, ONE_FAILED, NONE_FAILED, ALWAYS})
