"""Fixtures of the M-Bus decoder tests: the corpus folders."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def libmbus_dir(corpus_dir: Path) -> Path:
    return corpus_dir / "libmbus"


@pytest.fixture(scope="session")
def mbus_parser_dir(corpus_dir: Path) -> Path:
    return corpus_dir / "m-bus-parser"
