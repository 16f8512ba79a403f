"""Per-meter keys by reference (``env:NAME``, ``file:PATH``, ``file:PATH#ENTRY``): resolved when sent, never
printed.

What the IoT Agent stores next to the device is the reference and a short digest of the value (so that a
changed key is noticed on the next apply without ever reading a key back); the value goes into the
``secrets`` part of ``internal_attributes``, which the agent moves to its key store.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from flexmeter.provisioning.errors import SecretError


def resolve(reference: str, base: Path, environ: Mapping[str, str] | None = None) -> str:
    """The key a reference points to (whitespace stripped). The message of an error never has the value."""
    environ = os.environ if environ is None else environ
    scheme, _, name = reference.partition(":")
    if scheme == "env":
        value = environ.get(name)
        if value is None or not value.strip():
            raise SecretError(f"environment variable {name} is not set")
        return value.strip()
    if scheme == "file":
        name, _, entry = name.partition("#")
        path = Path(name).expanduser()
        path = path if path.is_absolute() else base / path
        try:
            stat = path.stat()
            text = _read(path, stat.st_mtime_ns, stat.st_size)
        except OSError as exc:
            raise SecretError(f"cannot read key file {name}: {exc.strerror or exc}") from None
        if entry:
            value = _key_file(text).get(entry, "")
            if not value:
                raise SecretError(f"key file {name} has no entry {entry!r}")
            return value
        value = text.strip()
        if not value:
            raise SecretError(f"key file {name} is empty")
        return value
    raise SecretError(f"{reference.split(':', 1)[0]!r} is not a key reference scheme (env:, file:)")


@lru_cache(maxsize=32)
def _read(path: Path, mtime_ns: int, size: int) -> str:
    """A key file's text, read once per version of the file (bulk inventories share one file)."""
    return path.read_text(encoding="utf-8")


@lru_cache(maxsize=32)
def _key_file(text: str) -> dict[str, str]:
    """``NAME=VALUE`` (or ``NAME VALUE``) lines; ``#`` starts a comment line."""
    entries: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.replace("=", " ", 1).partition(" ")
        entries[name.strip()] = value.strip()
    return entries


def digest(value: str) -> str:
    """A short, one-way fingerprint of a key: enough to notice a change, useless to recover the key."""
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]
