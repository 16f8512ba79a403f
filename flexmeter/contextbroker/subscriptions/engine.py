"""The subscription engine: the subscriptions of every tenant, matching of committed changes, delivery.

Core calls :meth:`SubscriptionEngine.on_changes` after each commit. It only matches and queues (no
network, no disk), so an update answers before its notifications go out; worker threads render and send
them (see :mod:`workers`). Subscriptions live in memory, indexed by entity id, and in each tenant's
SQLite file (see :mod:`store`).
"""

from __future__ import annotations

import logging
import secrets
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import cast

from flask import Blueprint

from flexmeter.config import get_settings
from flexmeter.contextbroker.errors import NotFound
from flexmeter.contextbroker.model import EntityChange
from flexmeter.contextbroker.subscriptions.model import Subscription
from flexmeter.contextbroker.subscriptions.payload import (
    HttpMessage,
    Message,
    MqttMessage,
    NotifyContext,
    RenderCache,
    build_messages,
)
from flexmeter.contextbroker.subscriptions.senders import HttpSender, MqttPool, Outcome
from flexmeter.contextbroker.subscriptions.store import SubscriptionStore
from flexmeter.contextbroker.subscriptions.validation import Definition
from flexmeter.contextbroker.subscriptions.workers import Dispatcher, Job
from flexmeter.contextbroker.tenancy import path_matches
from flexmeter.metrics import Registry

log = logging.getLogger(__name__)

NOT_FOUND = "The requested subscription has not been found. Check id"


def new_subscription_id() -> str:
    """24 hex characters like a MongoDB ObjectId (time first, so ids sort by creation)."""
    return f"{int(time.time()):08x}{secrets.token_hex(8)}"


class _Group:
    """Subscriptions whose subject and service path are identical: matched once per change."""

    __slots__ = ("created", "first", "subs")

    def __init__(self, subs: list[Subscription]) -> None:
        self.subs = subs
        self.first = subs[0]
        self.created = (self.first.created, self.first.id)


class _TenantIndex:
    """Immutable snapshot of a tenant's subscriptions for lock-free matching, indexed by entity id."""

    __slots__ = ("by_id", "others")

    def __init__(self, subs: list[Subscription]) -> None:
        by_signature: dict[str, list[Subscription]] = {}
        for sub in subs:
            by_signature.setdefault(sub.signature, []).append(sub)
        self.by_id: dict[str, list[_Group]] = {}
        self.others: list[_Group] = []
        for members in by_signature.values():
            group = _Group(members)
            if group.first.exact_ids is None:
                self.others.append(group)
            else:
                for entity_id in group.first.exact_ids:
                    self.by_id.setdefault(entity_id, []).append(group)

    def candidates(self, entity_id: str) -> list[_Group]:
        exact = self.by_id.get(entity_id)
        if not exact:
            return self.others
        if not self.others:
            return exact
        return sorted(exact + self.others, key=lambda g: g.created)


class _WorkerContext:
    def __init__(self, timeout: float) -> None:
        self.http = HttpSender(timeout)

    def close(self) -> None:
        self.http.close()


class SubscriptionEngine:
    """Owns the subscriptions of every tenant under ``db_base`` and sends their notifications."""

    def __init__(self, db_base: Path, metrics: Registry, notify_batch: int | None = None, *,
                 workers: int | None = None, queue_capacity: int | None = None,
                 timeout: float | None = None) -> None:
        self.db_base = Path(db_base)
        self.metrics = metrics
        self.notify_batch = notify_batch if notify_batch and notify_batch > 1 else None
        settings = get_settings()
        self.timeout = timeout if timeout is not None else settings.notify_timeout
        workers = workers if workers is not None else settings.notify_workers
        capacity = queue_capacity if queue_capacity is not None else settings.notify_queue
        self.store = SubscriptionStore(self.db_base)
        self.mqtt = MqttPool(self.timeout)
        self.dispatcher = Dispatcher(workers, capacity, self._run_jobs, lambda: _WorkerContext(self.timeout))
        self._subs: dict[str, dict[str, Subscription]] = {}
        self._index: dict[str, _TenantIndex] = {}
        self._last_fire: dict[str, float] = {}  # throttling guard, by subscription id
        self._last_drop_log: dict[str, float] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._loaded = False
        self._sent = metrics.counter("flexmeter_broker_notifications_sent_total",
                                     "Notifications delivered (the receiver answered, whatever its status).")
        self._failed = metrics.counter("flexmeter_broker_notifications_failed_total",
                                       "Notifications not delivered (connection error, timeout).")
        self._dropped = metrics.counter("flexmeter_broker_notifications_dropped_total",
                                        "Notifications not sent: tenant queue full, or still queued at shutdown.")
        self._throttled = metrics.counter("flexmeter_broker_notifications_throttled_total",
                                          "Notifications skipped by a subscription's throttling (as Orion).")
        self._queue_depth = metrics.gauge("flexmeter_broker_notification_queue_depth",
                                          "Notification jobs waiting per tenant.")
        self._sub_count = metrics.gauge("flexmeter_broker_subscriptions", "Subscriptions per tenant.")
        metrics.on_collect(self._collect)

    # -- lifecycle ------------------------------------------------------------------------------
    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            for sub in self.store.load_all():
                self._subs.setdefault(sub.service, {})[sub.id] = sub
            for service in self._subs:
                self._reindex(service)
            self._loaded = True

    def start(self) -> None:
        """Load every tenant's subscriptions and start the workers and the state flusher."""
        self._load()
        self._stop.clear()
        # The workers are I/O bound: with the default 5 ms GIL switch interval each response they
        # wait for costs up to 5 ms behind CPU-bound request threads, capping a subscription's rate.
        if sys.getswitchinterval() > 0.001:
            sys.setswitchinterval(0.001)
        self.dispatcher.start()
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_loop, name="subs-flusher", daemon=True)
            self._flusher.start()

    def stop(self, drain_timeout: float = 10.0) -> None:
        """Send what is queued (up to ``drain_timeout``), join the workers, flush the state."""
        left = self.dispatcher.stop(drain_timeout)
        for job in left:
            self._dropped.inc(1, service=job.sub.service, reason="shutdown")
        if left:
            log.warning("stopping: %d queued notifications not sent", len(left))
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
            self._flusher = None
        self.flush()
        self.mqtt.close()
        self.store.close()

    def _flush_loop(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.flush()
            except Exception:
                log.exception("flushing subscription state")

    def flush(self) -> None:
        """Persist the delivery state of every subscription that changed since the last flush."""
        with self._lock:
            dirty = [s for subs in self._subs.values() for s in subs.values() if s.dirty]
        if dirty:
            self.store.save_states(dirty)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """For tests and benchmarks: wait until no notification is queued or being sent."""
        return self.dispatcher.wait_idle(timeout)

    def _collect(self) -> None:
        depths = self.dispatcher.depths()
        with self._lock:
            services = set(self._subs) | set(depths)
            for service in services:
                self._queue_depth.set(depths.get(service, 0), service=service)
                self._sub_count.set(len(self._subs.get(service, {})), service=service)

    # -- CRUD (used by the API) -----------------------------------------------------------------
    def _reindex(self, service: str) -> None:
        subs = sorted(self._subs.get(service, {}).values(), key=lambda s: (s.created, s.id))
        self._index[service] = _TenantIndex(subs)

    def create(self, service: str, service_path: str, definition: Definition) -> Subscription:
        self._load()
        sub = Subscription(id=new_subscription_id(), service=service, service_path=service_path,
                           definition=definition, created=time.time())
        with self._lock:
            self.store.insert(sub)
            self._subs.setdefault(service, {})[sub.id] = sub
            self._reindex(service)
        return sub

    def get(self, service: str, sub_id: str) -> Subscription:
        self._load()
        with self._lock:
            sub = self._subs.get(service, {}).get(sub_id)
        if sub is None:
            raise NotFound(NOT_FOUND)
        return sub

    def list_subscriptions(self, service: str, paths: list[str]) -> list[Subscription]:
        self._load()
        with self._lock:
            subs = list(self._subs.get(service, {}).values())
        subs = [s for s in subs if path_matches(s.service_path, paths) or s.service_path in paths]
        return sorted(subs, key=lambda s: (s.created, s.id))

    def replace_definition(self, sub: Subscription, definition: Definition) -> None:
        """Apply a PATCH: new definition, recompiled matchers; a re-activation clears failures."""
        candidate = Subscription(id=sub.id, service=sub.service, service_path=sub.service_path,
                                 definition=definition, created=sub.created)  # compiles, may raise
        with self._lock:
            with sub.lock:
                sub.definition = candidate.definition
                sub.compile()
                if definition.get("status") == "active" and sub.state.fails_counter:
                    sub.state.fails_counter = 0
            self.store.save(sub)
            self._last_fire.pop(sub.id, None)
            self._reindex(sub.service)

    def delete(self, sub: Subscription) -> None:
        with self._lock:
            self.store.delete(sub)
            self._subs.get(sub.service, {}).pop(sub.id, None)
            self._last_fire.pop(sub.id, None)
            self._reindex(sub.service)

    # -- matching (request path) ----------------------------------------------------------------
    def on_changes(self, changes: list[EntityChange]) -> None:
        """Match committed changes and queue their notifications; never blocks on the network."""
        if not changes:
            return
        now = time.time()
        matched: dict[int, tuple[_Group, list[EntityChange]]] = {}
        for change in changes:
            index = self._index.get(change.service)
            if index is None:
                continue
            for group in index.candidates(change.entity["id"]):
                if group.first.matches(change):
                    entry = matched.get(id(group))
                    if entry is None:
                        matched[id(group)] = (group, [change])
                    else:
                        entry[1].append(change)
        for group, group_changes in matched.values():
            for sub in group.subs:
                if sub.can_fire(now):
                    self._enqueue(sub, group_changes, now)

    def _enqueue(self, sub: Subscription, changes: list[EntityChange], now: float) -> None:
        size = self.notify_batch or 1
        chunks = [changes[i:i + size] for i in range(0, len(changes), size)]
        throttling = sub.definition.get("throttling") or 0
        oneshot = sub.definition["status"] == "oneshot"
        if throttling or oneshot:
            with sub.lock:
                if not sub.can_fire(now):
                    return
                last = self._last_fire.get(sub.id)
                if throttling and last is not None and now - last < throttling:
                    self._throttled.inc(len(chunks), service=sub.service)
                    return
                self._last_fire[sub.id] = now
                if throttling:
                    self._throttled.inc(len(chunks) - 1, service=sub.service)
                chunks = chunks[:1]
                if oneshot:
                    sub.definition = {**sub.definition, "status": "inactive"}
                    sub.dirty = True
        for index, chunk in enumerate(chunks):
            if not self.dispatcher.has_room(sub.service):
                self._drop(sub, len(chunks) - index, now)
                return
            first = chunk[0]
            token = first.extra.get("authToken") or first.extra.get("auth_token") or ""
            ctx = NotifyContext(subscription_id=sub.id, service=sub.service,
                                correlator=first.correlator or str(uuid.uuid4()), auth_token=str(token))
            if not self.dispatcher.submit(Job(sub, chunk, ctx)):
                self._drop(sub, 1, now)

    def _drop(self, sub: Subscription, count: int, now: float) -> None:
        """Count notifications refused by a full tenant queue; warn at most once a second per tenant."""
        self._dropped.inc(count, service=sub.service, reason="queue_full")
        if now - self._last_drop_log.get(sub.service, 0.0) >= 1.0:
            self._last_drop_log[sub.service] = now
            log.warning("notification queue of tenant %r full: dropping notifications (subscription %s); "
                        "see flexmeter_broker_notifications_dropped_total", sub.service, sub.id)

    # -- delivery (worker threads) --------------------------------------------------------------
    def _run_jobs(self, jobs: list[Job], context: _WorkerContext) -> None:
        """Render the jobs' messages and send them in order (per receiver: one keep-alive connection)."""
        items: list[tuple[Subscription, Message]] = []
        cache: RenderCache = {}  # subscriptions rendering alike share the rendering of a change
        for job in jobs:
            sub = job.sub
            with self._lock:
                alive = sub.id in self._subs.get(sub.service, {})
            if not alive:
                continue
            try:
                messages = build_messages(sub.id, sub.notification, job.changes, job.ctx, cache)
            except Exception:  # a template that cannot render must not stop the others
                log.exception("rendering a notification of subscription %s", sub.id)
                continue
            items.extend((sub, message) for message in messages)
        http_positions = [i for i, (_, m) in enumerate(items) if isinstance(m, HttpMessage)]
        http_outcomes = context.http.send_many([cast(HttpMessage, items[i][1]) for i in http_positions])
        outcomes: dict[int, Outcome] = dict(zip(http_positions, http_outcomes, strict=True))
        for index, (sub, message) in enumerate(items):
            outcome = outcomes.get(index)
            if outcome is None:
                outcome = self.mqtt.send(cast(MqttMessage, message))
            self._record(sub, outcome)

    def _record(self, sub: Subscription, outcome: Outcome) -> None:
        now = time.time()
        with sub.lock:
            state = sub.state
            state.times_sent += 1
            state.last_notification = now
            if outcome.ok:
                state.last_success = now
                state.last_success_code = outcome.code
                state.fails_counter = 0
            else:
                state.last_failure = now
                state.last_failure_reason = outcome.failure
                state.fails_counter += 1
                limit = sub.notification.get("maxFailsLimit")
                if limit and state.fails_counter > limit and sub.definition["status"] != "inactive":
                    sub.definition = {**sub.definition, "status": "inactive"}
                    log.warning("subscription %s: %d consecutive failures (maxFailsLimit %d): now inactive",
                                sub.id, state.fails_counter, limit)
            sub.dirty = True
        if outcome.ok:
            self._sent.inc(1, service=sub.service)
        else:
            self._failed.inc(1, service=sub.service)

    # -- API ------------------------------------------------------------------------------------
    def blueprint(self) -> Blueprint:
        from flexmeter.contextbroker.subscriptions.api import make_blueprint

        return make_blueprint(self)
