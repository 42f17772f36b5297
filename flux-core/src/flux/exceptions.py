"""Every error Flux raises on purpose.

Errors are part of the public API: plugins raise and catch these classes, and the CLI turns any
``FluxError`` into one line on stderr with a non-zero exit code (no traceback), because a
``FluxError`` always means the user (or the environment) has to fix something, not the code.
"""

from __future__ import annotations


class FluxError(Exception):
    """Base class of every error Flux raises on purpose; its message is shown to the user as is."""


# --- configuration and plugins -------------------------------------------------------------------


class ConfigError(FluxError):
    """The configuration file or an environment override is invalid."""


class PluginError(FluxError):
    """A plugin could not be loaded or registered something invalid."""


class PluginConflictError(PluginError):
    """Two plugins registered the same name (an operator, hook type, executor, command...)."""


class MissingPluginError(FluxError, ImportError):
    """A name was asked for that no installed plugin provides.

    It is an ``ImportError`` too, so ``from flux.operators import X`` fails the way Python users
    expect when the distribution providing ``X`` is not installed.
    """


# --- metadata database and connections -----------------------------------------------------------


class DatabaseError(FluxError):
    """The metadata database cannot be reached, created or migrated."""

    def __init__(self, message: str, *, during_commit: bool = False) -> None:
        super().__init__(message)
        #: the error came while committing, so the transaction may have been stored or not
        self.during_commit = during_commit


class DatabaseUnavailable(DatabaseError):
    """The metadata database stayed unreachable for longer than ``[database]
    reconnect_timeout_seconds``: Flux waited for it, then gave up."""


class ConnectionNotFound(FluxError):
    """No connection with this id exists (neither in the table nor in a FLUX_CONN_ variable)."""


class InvalidConnectionURI(FluxError):
    """A connection URI could not be parsed."""


class InvalidConnection(FluxError):
    """A connection's fields are invalid (empty id, port out of range, extra not a JSON object...)."""


class ConnectionExists(FluxError):
    """A connection with this id already exists."""


class FernetKeyError(FluxError):
    """Stored secrets cannot be decrypted or encrypted with the configured Fernet key."""


class HookError(FluxError):
    """A hook could not talk to its outside system (unreachable host, bad credentials...)."""


class MissingDependencyError(FluxError, ImportError):
    """An optional third-party package needed for this feature is not installed."""


# --- DAGs, tasks and templates -------------------------------------------------------------------


class DagDefinitionError(FluxError):
    """A DAG or task is defined wrongly (bad argument, unknown trigger rule...)."""


class DagCycleError(DagDefinitionError):
    """The task dependencies of a DAG form a cycle."""


class DuplicateTaskIdError(DagDefinitionError):
    """Two tasks of one DAG share a task_id."""


class DuplicateDagIdError(DagDefinitionError):
    """Two DAG files define the same dag_id."""


class ScheduleError(DagDefinitionError):
    """A schedule_interval is not a timedelta, a valid cron expression, a preset or None."""


class DagNotFound(FluxError):
    """No DAG with this id was found in the DAG folder."""


class TaskNotFound(FluxError):
    """No task with this id exists in the DAG."""


class DagImportError(FluxError):
    """A DAG file raised, or took too long, while being imported."""


class TemplateError(FluxError):
    """A templated field could not be rendered (undefined variable, syntax error, missing file)."""


class InvalidDateError(FluxError):
    """A date given by the user is not a valid date."""


class XComError(FluxError):
    """An XCom value is not JSON-serializable or is too large."""


class DagRunExists(FluxError):
    """A DAG run already exists for this DAG and execution date (or run_id)."""


class InvalidDagRunConf(FluxError):
    """The ``conf`` given for a DAG run is not a JSON object."""


# --- running tasks -------------------------------------------------------------------------------


class TaskFailed(FluxError):
    """Raised inside a task to fail it with a message (no traceback in the log)."""


class TaskSkipped(FluxError):
    """Raised inside a task to mark it skipped instead of failed."""


class TaskTimeout(FluxError):
    """The task ran longer than its execution_timeout."""


class TaskKilled(FluxError):
    """The running task was told to stop (SIGTERM, Ctrl-C, or its instance cleared or marked)."""


class TaskStopEscalated(BaseException):
    """Raised in a task that went on running after :class:`TaskTimeout` or :class:`TaskKilled`.

    A task's own ``except Exception`` swallows those two (they are FluxErrors); once the grace
    period (``[core] killed_task_grace_seconds``) has passed this one is raised instead, again and
    again, and it derives from ``BaseException`` so that such a handler lets it through.
    """


class SensorTimeout(TaskFailed):
    """A sensor did not see its condition before its timeout."""


class RescheduleTask(FluxError):
    """A sensor in reschedule mode gives its slot back; the task is to run again later."""

    def __init__(self, reschedule_at: object) -> None:
        super().__init__(f"rescheduled to {reschedule_at}")
        self.reschedule_at = reschedule_at


class ExecutorError(FluxError):
    """An executor could not be started or lost its workers."""


class SchedulerError(FluxError):
    """The scheduler cannot run (for example a second scheduler on SQLite)."""
