"""The metadata database's tables (SQLAlchemy 2 ORM)."""

from flux.models.base import Base
from flux.models.connection import Connection
from flux.models.dag import DagModel
from flux.models.dagrun import DagRun
from flux.models.misc import AuditLog, ImportErrorRecord, Job, Pool, Variable, XCom
from flux.models.taskinstance import TaskInstance
from flux.models.user import User

__all__ = [
    "AuditLog", "Base", "Connection", "DagModel", "DagRun", "ImportErrorRecord", "Job", "Pool",
    "TaskInstance", "User", "Variable", "XCom",
]
