"""Finding the DAG a command works on (shared by run, test, backfill, clear, dags and tasks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flux.dag import DAG
    from flux.dagbag import DagBag


def load_dagbag(subdir: str | None) -> DagBag:
    """The DAGs of ``subdir`` (a DAG file or folder), or of the configured DAG folder."""
    from flux.dagbag import DagBag

    return DagBag(subdir)


def load_dag(dag_id: str, subdir: str | None) -> DAG:
    """The DAG ``dag_id`` from ``subdir`` (file or folder) or the configured DAG folder.

    Raises :class:`flux.exceptions.DagNotFound` (one line, with a hint) when it is not there.
    """
    return load_dagbag(subdir).get_dag(dag_id)
