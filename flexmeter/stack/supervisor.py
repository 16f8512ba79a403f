"""Child processes of `flexmeter up`: start in order, wait for each ready line, stop in reverse order.

Each child is a plain `python -m flexmeter …` command, so what runs embedded here is exactly what an
operator would run one by one (or replace with the real FIWARE GE by changing a URL).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from flexmeter.errors import FlexmeterError

READY = re.compile(r"ready on ((?:http|mqtt)://\S+)")


class StackError(FlexmeterError):
    """A component of the embedded stack did not start."""


@dataclass
class Child:
    name: str
    args: Sequence[str]
    ready_timeout: float = 60.0
    wait_ready: bool = True
    proc: subprocess.Popen[str] | None = None
    url: str = ""
    _ready: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        width = 10
        for line in self.proc.stdout:
            sys.stdout.write(f"{self.name:<{width}}| {line}")
            sys.stdout.flush()
            match = READY.search(line)
            if match:
                self._ready.put(match.group(1))
        self._ready.put(None)

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flexmeter", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops children in order
        )
        threading.Thread(target=self._pump, name=f"out-{self.name}", daemon=True).start()
        if not self.wait_ready:
            return
        try:
            url = self._ready.get(timeout=self.ready_timeout)
        except queue.Empty as exc:
            raise StackError(f"{self.name} was not ready within {self.ready_timeout:.0f}s") from exc
        if url is None:
            raise StackError(f"{self.name} exited before it was ready (exit code {self.proc.poll()})")
        self.url = url

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Supervisor:
    """Starts children in order; if one dies, stops the rest (a half stack is worse than none)."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(self, child: Child) -> Child:
        self.children.append(child)
        child.start()
        return child

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()

    def wait(self) -> str | None:
        """Block until Ctrl-C/SIGTERM (returns None) or a child exits (returns its name)."""
        stop = threading.Event()

        def _handler(signum: int, frame: object) -> None:
            stop.set()

        previous = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stop.is_set():
                for child in self.children:
                    if child.wait_ready and not child.alive():
                        return child.name
                stop.wait(0.5)
            return None
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def wait_http(url: str, timeout: float = 20.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException as exc:
            if time.monotonic() > deadline:
                raise StackError(f"{url} did not answer within {timeout:.0f}s") from exc
            time.sleep(0.2)
