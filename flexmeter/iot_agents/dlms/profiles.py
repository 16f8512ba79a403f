"""List profiles: what each position of a meter's push list means, as data files.

A push body is one A-XDR element, laid out in one of three ways meters use:

``self_describing``  an array/structure of structures ``(OBIS, value[, (scaler, unit)])`` (Aidon, and any
                     meter pushing COSEM ``register`` captures): the frame carries everything.
``interleaved``      a structure ``[list-version,] OBIS, value, OBIS, value, ...`` (Kamstrup, Kaifa Sweden);
                     null/null pairs (unused phases) are skipped. Scalers come from the profile.
``positional``       a structure of bare values (Kaifa Norway): the list version (first element) and the
                     element count select the OBIS list from the profile.

A profile is a JSON file (``profiles/*.json`` in this package, or any directory given to
:class:`ProfileRegistry`) with ``name``, ``manufacturer``, ``list_versions``, optional ``positional`` and
``positional_unversioned`` (element count → list of OBIS codes), optional ``match_layouts`` (layouts that
select this profile when the frame carries no list version — a heuristic, documented in docs/dlms.md) and
``units`` (OBIS → ``[scaler, unit symbol]``). Supporting a new meter type is a new file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ProfileError

PACKAGE_PROFILES = Path(__file__).with_name("profiles")


@dataclass(frozen=True)
class ListProfile:
    name: str
    manufacturer: str | None
    list_versions: tuple[str, ...] = ()
    positional: dict[int, tuple[str, ...]] = field(default_factory=dict)
    positional_unversioned: dict[int, tuple[str, ...]] = field(default_factory=dict)
    match_layouts: tuple[str, ...] = ()
    units: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    description: str = ""

    @classmethod
    def from_json(cls, doc: dict[str, Any], source: str = "") -> ListProfile:
        try:
            return cls(
                name=str(doc["name"]),
                manufacturer=doc.get("manufacturer"),
                list_versions=tuple(doc.get("list_versions", ())),
                positional={int(k): tuple(v) for k, v in doc.get("positional", {}).items()},
                positional_unversioned={int(k): tuple(v)
                                        for k, v in doc.get("positional_unversioned", {}).items()},
                match_layouts=tuple(doc.get("match_layouts", ())),
                units={k: (int(v[0]), v[1]) for k, v in doc.get("units", {}).items()},
                description=str(doc.get("description", "")),
            )
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ProfileError("list profile file", None, f"{source}: {exc!r}") from None


class ProfileRegistry:
    """The profiles known to a decoder: the package's files plus any extra directories or objects."""

    def __init__(self, profiles: Iterable[ListProfile] = (), directories: Iterable[Path] = (),
                 include_package: bool = True, compile_shapes: bool = True) -> None:
        self.profiles: list[ListProfile] = []
        self.compile_shapes = compile_shapes
        """Whether push bodies seen once take a compiled path afterwards (see shapes.py)."""
        self.shapes: dict[int, tuple[Any, ...]] = {}
        """The compiled shapes of this registry by body length (owned by shapes.py)."""
        self.shape_misses: dict[int, int] = {}
        self.shape_compiles: dict[int, int] = {}
        dirs = [PACKAGE_PROFILES, *directories] if include_package else list(directories)
        for directory in dirs:
            for path in sorted(Path(directory).glob("*.json")):
                try:
                    doc = json.loads(path.read_text("utf-8"))
                except (OSError, ValueError) as exc:
                    raise ProfileError("list profile file is JSON", None, f"{path}: {exc}") from None
                self.profiles.append(ListProfile.from_json(doc, str(path)))
        self.profiles.extend(profiles)
        self._by_version: dict[str, ListProfile] = {}
        self._by_layout: dict[str, ListProfile] = {}
        for profile in self.profiles:
            for version in profile.list_versions:
                self._by_version[version] = profile
            for layout in profile.match_layouts:
                self._by_layout.setdefault(layout, profile)
        self._unversioned = [p for p in self.profiles if p.positional_unversioned]

    def by_version(self, version: str | None) -> ListProfile | None:
        return None if version is None else self._by_version.get(version)

    def by_layout(self, layout: str) -> ListProfile | None:
        return self._by_layout.get(layout)

    def unversioned(self, count: int) -> ListProfile | None:
        for profile in self._unversioned:
            if count in profile.positional_unversioned:
                return profile
        return None


_DEFAULT: ProfileRegistry | None = None


def default_registry() -> ProfileRegistry:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = ProfileRegistry()
    return _DEFAULT
