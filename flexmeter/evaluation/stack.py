"""The embedded stack the workload runs against, started with the stack supervisor (`flexmeter up`'s).

Each component is its own ``python -m flexmeter …`` process on a free port in a temporary data dir; their
output goes to a log file (stdout stays clean for ``--json``). Given URLs replace the components: the
workload then runs against the real GEs. The business service is the project's own, so it is always the
embedded one unless ``service_url`` is given.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from flexmeter.evaluation.errors import EvaluationError
from flexmeter.stack.supervisor import READY, Child, StackError, Supervisor

#: entities per notification of the embedded broker, as `flexmeter up` runs it
NOTIFY_BATCH = 100


class QuietChild(Child):
    """A supervisor child whose output goes to a log file instead of our stdout.

    stderr is not merged into stdout as `flexmeter up` does: with unbuffered stdout, a log line written
    on stderr between ``ready on URL`` and its newline would corrupt the URL read from the ready line.
    """

    log: IO[str] | None = None
    env: dict[str, str] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(self.env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flexmeter", *self.args], stdout=subprocess.PIPE,
            stderr=self.log if self.log is not None else subprocess.DEVNULL, text=True, env=env,
            start_new_session=True)
        threading.Thread(target=self._pump, name=f"out-{self.name}", daemon=True).start()
        try:
            url = self._ready.get(timeout=self.ready_timeout)
        except queue.Empty as exc:
            raise StackError(f"{self.name} was not ready within {self.ready_timeout:.0f}s") from exc
        if url is None:
            raise StackError(f"{self.name} exited before it was ready (exit code {self.proc.poll()})")
        self.url = url

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            if self.log is not None:
                self.log.write(f"{self.name:<10}| {line}")
            match = READY.search(line)
            if match:
                self._ready.put(match.group(1))
        self._ready.put(None)


@dataclass
class Endpoints:
    ngsi_url: str
    ql_url: str
    iota_url: str
    service_url: str
    embedded: dict[str, bool] = field(default_factory=dict)
    """component -> True when this run started it (its /metrics and CPU are then ours to read)."""
    pids: dict[str, int] = field(default_factory=dict)


class EmbeddedStack:
    """Starts the components whose URL was not given; ``stop()`` stops them in reverse order."""

    def __init__(self, *, mqtt_url: str, ngsi_url: str | None = None, ql_url: str | None = None,
                 iota_url: str | None = None, service_url: str | None = None, host: str = "127.0.0.1",
                 keep_dir: Path | None = None, families: tuple[str, ...] = ("connode",),
                 amqp_url: str | None = None, south_port: int = 0, agent_env: dict[str, str] | None = None) -> None:
        """``families``, ``amqp_url``, ``south_port`` (0: any) and ``agent_env`` configure the embedded
        agent: the Connode workload needs ``connode`` only, the pilots' every family."""
        self.mqtt_url = mqtt_url
        self.families = families
        self.amqp_url = amqp_url
        self.south_port = south_port
        self.agent_env = agent_env
        self.given = {"broker": ngsi_url, "timeseries": ql_url, "agent": iota_url, "service": service_url}
        self.host = host
        self.work = keep_dir or Path(tempfile.mkdtemp(prefix="flexmeter-e2e-"))
        self._temporary = keep_dir is None
        self.supervisor = Supervisor()
        self.log_path = self.work / "stack.log"
        self._log: IO[str] | None = None

    def _child(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Child:
        child = QuietChild(name, args)
        child.log = self._log
        child.env = env
        return self.supervisor.start(child)

    def start(self) -> Endpoints:
        self.work.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed in stop)
        previous = os.environ.get("FLEXMETER_LOG_LEVEL")
        os.environ["FLEXMETER_LOG_LEVEL"] = "WARNING"
        h = self.host
        urls: dict[str, str] = {}
        try:
            given = self.given
            if given["broker"] is None:
                urls["broker"] = self._child("broker", [
                    "broker", "--host", h, "--port", "0", "--db", str(self.work / "broker.db"),
                    "--notify-batch", str(NOTIFY_BATCH)]).url
            if given["timeseries"] is None:
                urls["timeseries"] = self._child("timeseries", [
                    "timeseries", "--host", h, "--port", "0", "--db", str(self.work / "timeseries.db")]).url
            ngsi = given["broker"] or urls["broker"]
            if given["agent"] is None:
                urls["agent"] = self._child("agent", [
                    "agent", *self.families, "--host", h, "--north-port", "0", "--south-port", str(self.south_port),
                    "--ngsi-url", ngsi, "--mqtt-url", self.mqtt_url, "--amqp-url", self.amqp_url or "none",
                    "--data-dir", str(self.work / "agent")], env=self.agent_env).url
            if given["service"] is None:
                urls["service"] = self._child("service", [
                    "service", "--host", h, "--port", "0", "--ngsi-url", ngsi,
                    "--ql-url", given["timeseries"] or urls["timeseries"],
                    "--data-dir", str(self.work / "service")]).url
        except StackError as exc:
            self.stop()
            raise EvaluationError(f"the embedded stack did not start: {exc} (log: {self.log_path})") from exc
        finally:
            if previous is None:
                os.environ.pop("FLEXMETER_LOG_LEVEL", None)
            else:
                os.environ["FLEXMETER_LOG_LEVEL"] = previous
        pids = {c.name: c.proc.pid for c in self.supervisor.children if c.proc is not None}
        return Endpoints(
            ngsi_url=ngsi, ql_url=given["timeseries"] or urls["timeseries"],
            iota_url=given["agent"] or urls["agent"], service_url=given["service"] or urls["service"],
            embedded={name: given[name] is None for name in given}, pids=pids)

    def alive(self) -> dict[str, bool]:
        return {c.name: c.alive() for c in self.supervisor.children}

    def stop(self) -> None:
        self.supervisor.stop_all()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._temporary:
            shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> EmbeddedStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

