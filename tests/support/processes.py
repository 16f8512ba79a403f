"""Real processes for tests: start a ``flexmeter`` command on a free port, wait for its ready line."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

READY = re.compile(r"ready on ((?:http|mqtt)://\S+)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FlexmeterProcess:
    """``python -m flexmeter ARGS`` as a child process; ``url`` is taken from its ready line."""

    def __init__(self, args: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
                 ready_timeout: float = 30.0) -> None:
        self.args = list(args)
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.cwd = cwd
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def start(self) -> FlexmeterProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flexmeter", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            cwd=self.cwd,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        try:
            while True:
                line = self._lines.get(timeout=self.ready_timeout)
                if line is None:
                    raise RuntimeError(f"flexmeter {' '.join(self.args)} exited before ready:\n{self.log()}")
                match = READY.search(line)
                if match:
                    self.url = match.group(1)
                    return self
        except queue.Empty as exc:
            self.stop()
            command = " ".join(self.args)
            raise RuntimeError(f"flexmeter {command} not ready in {self.ready_timeout}s:\n{self.log()}") from exc

    def log(self) -> str:
        return "".join(self.output)

    def kill(self) -> None:
        """SIGKILL: for crash-safety tests."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def __enter__(self) -> FlexmeterProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
