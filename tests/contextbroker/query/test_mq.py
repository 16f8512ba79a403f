"""mq matching: attr.metadata, paths into metadata values, builtin metadata, DateTime metadata."""

from __future__ import annotations

import pytest

from flexmeter.contextbroker.query import parse_mq
from tests.contextbroker.query.builders import attr, entity

E = entity(
    temperature=attr(
        21.5,
        metadata={
            "accuracy": 0.4,
            "unitCode": "CEL",
            "calibrated": True,
            "source": None,
            "timestamp": ("DateTime", "2024-05-01T12:00:00Z"),
            "quality": {"level": 3, "flags": ["ok", "checked"]},
            "history": [1, 2, 3],
        },
        cre=1_700_000_000.0,
        mod=1_714_564_800.0,
    ),
    humidity=attr(40, metadata={}),
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("temperature.accuracy<0.5", True),
        ("temperature.accuracy>0.5", False),
        ("temperature.accuracy==0.4", True),
        ("temperature.accuracy=='0.4'", False),
        ("temperature.accuracy!=0.5", True),
        ("temperature.accuracy==0.1..0.5", True),
        ("temperature.accuracy==0.1,0.4", True),
        ("temperature.unitCode==CEL", True),
        ("temperature.unitCode==KWH,CEL", True),
        ("temperature.unitCode!=CEL", False),
        ("temperature.unitCode~=^CE", True),
        ("temperature.calibrated==true", True),
        ("temperature.source==null", True),
        ("temperature.timestamp>2024-01-01", True),
        ("temperature.timestamp==2024-05-01T12:00:00Z", True),
        ("temperature.timestamp<2024-01-01", False),
        ("temperature.quality.level==3", True),
        ("temperature.quality.level>=4", False),
        ("temperature.quality.flags==checked", True),
        ("temperature.quality.flags!=bad", True),
        ("temperature.history>2", True),
        ("temperature.history!=2", False),
        # existence
        ("temperature.accuracy", True),
        ("temperature.missing", False),
        ("!temperature.missing", True),
        ("!temperature.accuracy", False),
        ("temperature.quality.level", True),
        ("temperature.quality.other", False),
        ("!temperature.quality.other", True),
        ("humidity.accuracy", False),
        ("!humidity.accuracy", True),
        ("missing.accuracy", False),
        ("!missing.accuracy", True),
        # binary statements need the metadata
        ("humidity.accuracy!=1", False),
        ("missing.accuracy!=1", False),
        # builtin metadata: the attribute's timestamps
        ("temperature.dateCreated<2024-01-01", True),
        ("temperature.dateModified==2024-05-01T12:00:00Z", True),
        ("temperature.dateCreated", True),
        ("missing.dateCreated", False),
        # AND
        ("temperature.accuracy<0.5;temperature.unitCode==CEL", True),
        ("temperature.accuracy<0.5;humidity.accuracy<0.5", False),
    ],
)
def test_mq(text: str, expected: bool) -> None:
    assert parse_mq(text).matches(E) is expected


def test_mq_attrs_and_kind() -> None:
    f = parse_mq("temperature.accuracy<0.5;humidity.unitCode==P1")
    assert f.kind == "mq"
    assert f.attrs == frozenset({"temperature", "humidity"})


def test_mq_quoted_metadata_name() -> None:
    e = entity(a=attr(1, metadata={"x.y": 5}))
    assert parse_mq("a.'x.y'==5").matches(e)
