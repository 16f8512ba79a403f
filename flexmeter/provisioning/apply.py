"""Carry out a plan (or delete an inventory) in batches, recording exactly what was applied.

Order: service groups, static entities (substations, feeders, buildings), IoT Agent devices, Device
entities, subscriptions. Entities go in ``/v2/op/update`` batches and devices in multi-device
``POST /iot/devices`` requests; when a batch is refused it is retried item by item, so one bad item
gets its own message and the others are applied. When an endpoint becomes unreachable the run stops
and the report says what had been applied and what was not attempted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from flexmeter.ngsi import NgsiConnectionError, NgsiResponseError
from flexmeter.provisioning.plan import Change, Plan
from flexmeter.provisioning.remote import Endpoints

Json = dict[str, Any]
ENTITY_BATCH = 500
DEVICE_BATCH = 100


class ProgressSink(Protocol):
    def start(self, name: str, total: int) -> None: ...
    def advance(self, name: str, amount: int) -> None: ...
    def stop(self) -> None: ...


class NoProgress:
    def start(self, name: str, total: int) -> None:
        pass

    def advance(self, name: str, amount: int) -> None:
        pass

    def stop(self) -> None:
        pass


@dataclass
class Outcome:
    change: Change
    status: str  # "applied", "failed", "skipped", "not attempted"
    reason: str = ""

    def as_json(self) -> Json:
        return {**self.change.as_json(), "status": self.status, "reason": self.reason}


@dataclass
class Report:
    """What a run did, item by item; ``aborted`` names the endpoint failure that stopped it, if any."""

    operation: str
    outcomes: list[Outcome] = field(default_factory=list)
    unchanged: list[Change] = field(default_factory=list)
    aborted: str | None = None

    def with_status(self, *statuses: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in statuses]

    @property
    def ok(self) -> bool:
        return self.aborted is None and not self.with_status("failed", "skipped", "not attempted")

    def summary(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        columns = ("created", "updated", "deleted", "unchanged", "failed", "skipped", "not attempted")
        for change in self.unchanged:
            table.setdefault(change.kind, dict.fromkeys(columns, 0))["unchanged"] += 1
        for outcome in self.outcomes:
            row = table.setdefault(outcome.change.kind, dict.fromkeys(columns, 0))
            if outcome.status == "applied":
                row[{"create": "created", "update": "updated", "delete": "deleted"}[outcome.change.action]] += 1
            else:
                row[outcome.status] += 1
        return table

    def as_json(self) -> Json:
        return {
            "operation": self.operation,
            "ok": self.ok,
            "aborted": self.aborted,
            "summary": self.summary(),
            "failed": [o.as_json() for o in self.with_status("failed", "skipped")],
            "notAttempted": len(self.with_status("not attempted")),
        }


class _Abort(Exception):
    """An endpoint became unreachable: stop, the rest is 'not attempted'."""


def _chunks(items: list[Change], size: int) -> Iterator[list[Change]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _scoped(changes: list[Change]) -> dict[tuple[str, str], list[Change]]:
    scopes: dict[tuple[str, str], list[Change]] = {}
    for change in changes:
        scopes.setdefault((change.service, change.service_path), []).append(change)
    return scopes


def _reason(exc: Exception) -> str:
    if isinstance(exc, NgsiResponseError):
        text = f"{exc.status} {exc.error}: {exc.description}".rstrip(": ")
        return text
    return str(exc)


class Runner:
    def __init__(self, endpoints: Endpoints, report: Report, progress: ProgressSink) -> None:
        self.endpoints = endpoints
        self.report = report
        self.progress = progress
        self.done: set[int] = set()

    def record(self, change: Change, status: str, reason: str = "") -> None:
        self.report.outcomes.append(Outcome(change, status, reason))
        self.done.add(id(change))

    def batched(self, name: str, changes: list[Change], size: int,
                send: Callable[[tuple[str, str], list[Change]], None]) -> None:
        """Send ``changes`` by tenant scope in chunks; a refused chunk is retried one item at a time."""
        if not changes:
            return
        self.progress.start(name, len(changes))
        for scope, scoped in _scoped(changes).items():
            for chunk in _chunks(scoped, size):
                try:
                    send(scope, chunk)
                except NgsiConnectionError as exc:
                    raise _Abort(str(exc)) from exc
                except NgsiResponseError:
                    self.one_by_one(name, scope, chunk, send)
                    continue
                for change in chunk:
                    self.record(change, "applied")
                self.progress.advance(name, len(chunk))

    def one_by_one(self, name: str, scope: tuple[str, str], chunk: list[Change],
                   send: Callable[[tuple[str, str], list[Change]], None]) -> None:
        for change in chunk:
            try:
                send(scope, [change])
            except NgsiConnectionError as exc:
                raise _Abort(str(exc)) from exc
            except NgsiResponseError as exc:
                self.record(change, "failed", _reason(exc))
            else:
                self.record(change, "applied")
            self.progress.advance(name, 1)

    def each(self, name: str, changes: list[Change], send: Callable[[Change], None]) -> None:
        if not changes:
            return
        self.progress.start(name, len(changes))
        for change in changes:
            try:
                send(change)
            except NgsiConnectionError as exc:
                raise _Abort(str(exc)) from exc
            except NgsiResponseError as exc:
                self.record(change, "failed", _reason(exc))
            else:
                self.record(change, "applied")
            self.progress.advance(name, 1)


def _body(change: Change) -> Json:
    assert change.resource is not None
    return change.resource.body


def apply_plan(plan: Plan, endpoints: Endpoints, progress: ProgressSink | None = None) -> Report:
    """Make the endpoints hold what the plan wants; never raises for an item, see the report."""
    progress = progress or NoProgress()
    report = Report("apply", unchanged=plan.by_action("unchanged"))
    runner = Runner(endpoints, report, progress)
    pending = plan.pending
    ngsi, iota = endpoints.ngsi, endpoints.iota

    def of(kind: str, action: str, types: tuple[str, ...] = ()) -> list[Change]:
        return [c for c in pending if c.kind == kind and c.action == action and (
            not types or (c.resource is not None and c.resource.entity_type in types))]

    def send_groups(scope: tuple[str, str], chunk: list[Change]) -> None:
        iota.create_groups([_body(c) for c in chunk], headers=endpoints.headers(*scope))

    def update_group(change: Change) -> None:
        body = dict(_body(change))
        iota.update_group(body.pop("apikey"), {k: v for k, v in body.items() if k != "resource"},
                          resource=body.get("resource", ""),
                          headers=endpoints.headers(change.service, change.service_path))

    def send_entities(scope: tuple[str, str], chunk: list[Change]) -> None:
        ngsi.batch_update([_body(c) for c in chunk], "append", headers=endpoints.headers(*scope))

    def send_devices(scope: tuple[str, str], chunk: list[Change]) -> None:
        iota.create_devices([_body(c) for c in chunk], headers=endpoints.headers(*scope))

    def update_device(change: Change) -> None:
        body = {k: v for k, v in _body(change).items() if k != "device_id"}
        iota.update_device(change.key, body, headers=endpoints.headers(change.service, change.service_path))

    def create_subscription(change: Change) -> None:
        ngsi.create_subscription(_body(change), headers=endpoints.headers(change.service, change.service_path))

    def update_subscription(change: Change) -> None:
        assert change.remote_id is not None
        ngsi.update_subscription(change.remote_id, _body(change),
                                 headers=endpoints.headers(change.service, change.service_path))

    places = ("Substation", "Feeder", "Building")
    try:
        runner.batched("service groups", of("group", "create"), 100, send_groups)
        runner.each("service groups (update)", of("group", "update"), update_group)
        failed_groups = {(o.change.service, o.change.service_path, o.change.key.split("|", 1)[1])
                         for o in report.with_status("failed") if o.change.kind == "group"}
        runner.batched("topology entities", of("entity", "create", places) + of("entity", "update", places),
                       ENTITY_BATCH, send_entities)
        devices = of("device", "create")
        for change in devices:
            apikey = _body(change).get("apikey")
            if (change.service, change.service_path, apikey) in failed_groups:
                runner.record(change, "skipped", f"its service group {apikey} failed")
        runner.batched("devices (IoT Agent)", [c for c in devices if id(c) not in runner.done], DEVICE_BATCH,
                       send_devices)
        runner.each("devices (update)", of("device", "update"), update_device)
        runner.batched("Device entities", of("entity", "create", ("Device",)) + of("entity", "update", ("Device",)),
                       ENTITY_BATCH, send_entities)
        runner.each("subscriptions", of("subscription", "create"), create_subscription)
        runner.each("subscriptions (update)", of("subscription", "update"), update_subscription)
    except _Abort as exc:
        report.aborted = str(exc)
    finally:
        progress.stop()
    for change in pending:
        if id(change) not in runner.done:
            report.outcomes.append(Outcome(change, "not attempted"))
    return report


def delete_plan(plan: Plan, endpoints: Endpoints, progress: ProgressSink | None = None,
                *, purge_measurements: bool = False) -> Report:
    """Remove what the inventory declares and the endpoints hold, in reverse order of creation."""
    progress = progress or NoProgress()
    report = Report("delete")
    runner = Runner(endpoints, report, progress)
    present = [Change("delete", c.kind, c.service, c.service_path, c.key, c.label, c.origin, [], c.resource,
                      c.remote_id) for c in plan.by_action("update", "unchanged")]
    ngsi, iota = endpoints.ngsi, endpoints.iota

    def of(kind: str) -> list[Change]:
        return [c for c in present if c.kind == kind]

    def delete_subscription(change: Change) -> None:
        assert change.remote_id is not None
        ngsi.delete_subscription(change.remote_id, headers=endpoints.headers(change.service, change.service_path))

    def delete_entities(scope: tuple[str, str], chunk: list[Change]) -> None:
        ngsi.batch_update([{"id": _body(c)["id"], "type": _body(c)["type"]} for c in chunk], "delete",
                          headers=endpoints.headers(*scope))

    def delete_device(change: Change) -> None:
        headers = endpoints.headers(change.service, change.service_path)
        if purge_measurements:
            body = _body(change)
            try:
                ngsi.delete_entity(str(body["entity_name"]), entity_type=str(body["entity_type"]), headers=headers)
            except NgsiResponseError as exc:
                if exc.status != 404:
                    raise
        iota.delete_device(change.key, headers=headers)

    def delete_group(change: Change) -> None:
        body = _body(change)
        iota.delete_group(str(body["apikey"]), resource=str(body.get("resource", "")),
                          headers=endpoints.headers(change.service, change.service_path))

    try:
        runner.each("subscriptions", of("subscription"), delete_subscription)
        runner.batched("entities", of("entity"), ENTITY_BATCH, delete_entities)
        runner.each("devices (IoT Agent)", of("device"), delete_device)
        runner.each("service groups", of("group"), delete_group)
    except _Abort as exc:
        report.aborted = str(exc)
    finally:
        progress.stop()
    for change in present:
        if id(change) not in runner.done:
            report.outcomes.append(Outcome(change, "not attempted"))
    return report
