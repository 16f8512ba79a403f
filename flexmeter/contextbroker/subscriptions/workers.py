"""Notification worker threads: per-subscription order, a bounded queue per tenant, overflow counted.

A job always goes to the same worker for a given subscription (hash of its id), so its notifications
leave in the order the changes were committed. Each tenant may have at most ``capacity`` jobs waiting
across all workers; beyond that :meth:`Dispatcher.submit` refuses the job and the caller counts it as
dropped, so a slow receiver of one tenant cannot eat the memory of the process nor go unnoticed.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flexmeter.contextbroker.model import EntityChange
from flexmeter.contextbroker.subscriptions.model import Subscription
from flexmeter.contextbroker.subscriptions.payload import NotifyContext

log = logging.getLogger(__name__)


@dataclass
class Job:
    sub: Subscription
    changes: list[EntityChange]
    ctx: NotifyContext
    enqueued: float = field(default_factory=time.monotonic)


class _Worker:
    def __init__(self, index: int, run_jobs: Callable[[list[Job], Any], None],
                 make_context: Callable[[], Any], done: Callable[[Job], None], max_take: int) -> None:
        self.queue: deque[Job] = deque()
        self.cond = threading.Condition()
        self.stopping = False
        self.busy = False
        self._run_jobs = run_jobs
        self._max_take = max_take
        self._make_context = make_context
        self._done = done
        self.thread = threading.Thread(target=self._loop, name=f"notifier-{index}", daemon=True)

    def put(self, job: Job) -> None:
        with self.cond:
            self.queue.append(job)
            self.cond.notify()

    def _loop(self) -> None:
        context = self._make_context()
        try:
            while True:
                with self.cond:
                    while not self.queue and not self.stopping:
                        self.cond.wait()
                    if not self.queue:
                        return
                    jobs = [self.queue.popleft() for _ in range(min(self._max_take, len(self.queue)))]
                    self.busy = True
                try:
                    self._run_jobs(jobs, context)
                except Exception:
                    log.exception("notifications of subscriptions %s failed",
                                  sorted({j.sub.id for j in jobs}))
                finally:
                    for job in jobs:
                        self._done(job)
                    with self.cond:
                        self.busy = False
                        self.cond.notify_all()
        finally:
            close = getattr(context, "close", None)
            if callable(close):
                close()

    def idle(self) -> bool:
        with self.cond:
            return not self.queue and not self.busy


class Dispatcher:
    """``workers`` threads; ``run_jobs(jobs, context)`` runs on them with one ``make_context()`` each.

    A worker takes every job waiting in its queue (up to ``max_take``) at once, so the sender can
    pipeline them to a receiver; jobs are handed over in queue order.
    """

    def __init__(self, workers: int, capacity: int, run_jobs: Callable[[list[Job], Any], None],
                 make_context: Callable[[], Any], max_take: int = 32) -> None:
        self.capacity = capacity
        self._pending: dict[str, int] = {}
        self._lock = threading.Lock()
        self._workers = [_Worker(i, run_jobs, make_context, self._done, max_take)
                         for i in range(max(1, workers))]
        self._started = False

    def start(self) -> None:
        if not self._started:
            for w in self._workers:
                w.thread.start()
            self._started = True

    def has_room(self, service: str) -> bool:
        with self._lock:
            return self._pending.get(service, 0) < self.capacity

    def submit(self, job: Job) -> bool:
        """Queue a job; False when its tenant's queue is full (the job is not queued)."""
        service = job.sub.service
        with self._lock:
            depth = self._pending.get(service, 0)
            if depth >= self.capacity:
                return False
            self._pending[service] = depth + 1
        worker = self._workers[zlib.crc32(job.sub.id.encode()) % len(self._workers)]
        worker.put(job)
        return True

    def _done(self, job: Job) -> None:
        with self._lock:
            self._pending[job.sub.service] = self._pending.get(job.sub.service, 1) - 1

    def depths(self) -> dict[str, int]:
        with self._lock:
            return dict(self._pending)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued job has been handled (True) or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(w.idle() for w in self._workers):
                return True
            time.sleep(0.01)
        return all(w.idle() for w in self._workers)

    def stop(self, drain_timeout: float) -> list[Job]:
        """Let the workers send what is queued for up to ``drain_timeout``, then stop them.

        Returns the jobs still queued then (not sent), so the caller can count them.
        """
        if not self._started:
            return []
        self.wait_idle(drain_timeout)
        left: list[Job] = []
        for w in self._workers:
            with w.cond:
                left.extend(w.queue)
                w.queue.clear()
                w.stopping = True
                w.cond.notify_all()
        for job in left:
            self._done(job)
        for w in self._workers:
            w.thread.join(timeout=5)
        self._started = False
        return left
