"""The DAGs the web pages draw, imported from their files on demand and kept while unchanged.

The DAG list needs no DAG object (the ``dag`` table has what it shows); the views of one DAG
(tree, graph...) import only that DAG's file, once, and again only when the file changes.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from flux.exceptions import DagNotFound

if TYPE_CHECKING:
    from flux.dag import DAG
    from flux.dagbag import DagBag

#: how many DAG files stay imported (least recently used ones are dropped)
MAX_FILES = 512


class DagFileCache:
    """Imported DAG files by path, re-imported when their modification time or size changes."""

    def __init__(self, max_files: int = MAX_FILES) -> None:
        self.max_files = max_files
        self._bags: OrderedDict[str, tuple[tuple[int, int], DagBag]] = OrderedDict()
        self._lock = threading.Lock()

    def bag(self, path: str) -> DagBag:
        """The DagBag of one DAG file (imported now if it is new or changed)."""
        from flux.dagbag import DagBag

        try:
            stat = os.stat(path)
        except OSError:
            raise DagNotFound(f"DAG file {path} does not exist any more") from None
        signature = (stat.st_mtime_ns, stat.st_size)
        # One lock for all: importing runs the DAG file's module code, which is not thread-safe
        # against a second import of the same file.
        with self._lock:
            cached = self._bags.get(path)
            if cached is not None and cached[0] == signature:
                self._bags.move_to_end(path)
                return cached[1]
            bag = DagBag(path)
            self._bags[path] = (signature, bag)
            self._bags.move_to_end(path)
            while len(self._bags) > self.max_files:
                self._bags.popitem(last=False)
            return bag

    def dag(self, dag_id: str, fileloc: str | None) -> DAG:
        """The DAG ``dag_id`` from its file ``fileloc`` (as recorded in the ``dag`` table)."""
        if not fileloc:
            raise DagNotFound(f"DAG {dag_id!r} has no recorded file")
        return self.bag(fileloc).get_dag(dag_id)

    def clear(self) -> None:
        with self._lock:
            self._bags.clear()


_cache = DagFileCache()


def get_cache() -> DagFileCache:
    """The process-wide cache."""
    return _cache
