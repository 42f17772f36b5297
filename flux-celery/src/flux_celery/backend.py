"""The Redis result backend, without Celery's per-message result subscription.

Celery's Redis backend subscribes to a pub/sub channel for every message it sends, so that
``AsyncResult.get()`` can wait for it. The executor never waits on one result: it reads the
outcomes of every message in flight with one ``MGET``. The subscriptions would cost a round trip
per message and, with the backend down, block each send for many seconds of reconnection.
"""

from __future__ import annotations

from typing import Any

from celery.backends.redis import RedisBackend, SentinelBackend


class PollingRedisBackend(RedisBackend):
    """``redis://`` and ``rediss://`` results, read by polling only."""

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """Do not subscribe to the message's result channel (nobody waits on it)."""


class PollingSentinelBackend(SentinelBackend):
    """``sentinel://`` results, read by polling only."""

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """Do not subscribe to the message's result channel (nobody waits on it)."""


#: backend aliases replaced in the app's loader
OVERRIDES = {
    "redis": f"{__name__}:PollingRedisBackend",
    "rediss": f"{__name__}:PollingRedisBackend",
    "sentinel": f"{__name__}:PollingSentinelBackend",
}
