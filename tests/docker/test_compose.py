"""What can be checked without a Docker engine: the compose files parse, their ports and URLs agree with
flexmeter's defaults (so embedded <-> real GEs is only a change of URLs), and the image's Dockerfile copies
files that exist and installs the package."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from flexmeter.config import Settings

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
DEFAULTS = Settings()

#: compose service -> (container port, the Settings port field, the Settings URL field)
GE_PORTS = {
    "orion": (DEFAULTS.broker_port, "ngsi_url"),
    "quantumleap": (DEFAULTS.timeseries_port, "ql_url"),
    "iot-agent": (DEFAULTS.iota_north_port, "iota_url"),
    "service": (DEFAULTS.service_port, "service_url"),
    "mosquitto": (1883, "mqtt_url"),
    "rabbitmq": (5672, "amqp_url"),
}


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DOCKER / name).read_text())
    return document


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load("compose.yaml")


def published(service: dict[str, Any]) -> dict[int, int]:
    """container port -> host port."""
    ports = {}
    for entry in service.get("ports", []):
        host, _, container = str(entry).rpartition(":")
        ports[int(container)] = int(host)
    return ports


def default_port(url: str) -> int:
    parts = urlsplit(url)
    assert parts.port is not None, url
    return parts.port


def test_compose_files_parse_and_every_service_has_an_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"mongo", "orion", "crate", "quantumleap", "mosquitto", "rabbitmq", "grafana", "iot-agent",
            "service"} <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
    variant = load("compose.timescale.yaml")["services"]
    assert variant["quantumleap"]["environment"]["QL_DEFAULT_DB"] == "timescale"
    assert variant["crate"]["profiles"] == ["crate"]  # CrateDB is not started in the Timescale variant
    assert variant["quantumleap"]["environment"]["POSTGRES_HOST"] == "timescale"
    assert "5432" in str(variant["timescale"]["ports"])


def test_ports_are_flexmeters_defaults(compose: dict[str, Any]) -> None:
    for name, (port, url_field) in GE_PORTS.items():
        ports = published(compose["services"][name])
        assert ports.get(port) == port, f"{name} must publish {port}:{port}, has {ports}"
        assert default_port(getattr(DEFAULTS, url_field)) == port, url_field
    assert published(compose["services"]["iot-agent"])[DEFAULTS.iota_south_port] == DEFAULTS.iota_south_port
    orion = compose["services"]["orion"]["command"]
    assert orion[orion.index("-port") + 1] == str(DEFAULTS.broker_port)
    assert orion[orion.index("-dbhost") + 1] == "mongo"
    assert "-multiservice" in orion  # Fiware-Service tenants


def test_flexmeter_env_names_settings_and_points_at_the_right_services(compose: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    by_url_field = {url_field: (name, port) for name, (port, url_field) in GE_PORTS.items()}
    for name in ("iot-agent", "service"):
        environment = compose["services"][name]["environment"]
        for key, value in environment.items():
            if not key.startswith("FLEXMETER_"):
                continue
            field = key.removeprefix("FLEXMETER_").lower()
            assert field in fields or field == "log_level", f"{name}: {key} is not a flexmeter setting"
            if field in by_url_field:
                target, port = by_url_field[field]
                parts = urlsplit(str(value))
                assert (parts.hostname, parts.port) == (target, port), f"{key}={value}"
                assert target in compose["services"]
        settings = Settings(**{k.removeprefix("FLEXMETER_").lower(): v for k, v in environment.items()
                               if k.removeprefix("FLEXMETER_").lower() in fields})
        assert settings.host == "0.0.0.0"
    agent = compose["services"]["iot-agent"]["command"]
    public = urlsplit(agent[agent.index("--public-url") + 1])
    assert (public.hostname, public.port) == ("iot-agent", DEFAULTS.iota_north_port)


def test_mounted_files_exist_and_mongo_gets_the_indexes(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).exists(), f"{name}: {source}"
    script = (DOCKER / "mongo-init" / "orion-indexes.js").read_text()
    readme = (REPO / "orion_config" / "README.md").read_text()
    for index in ("_id.id", "_id.type", "_id.servicePath", "attrNames", "creDate", "location.coords"):
        assert f'"{index}"' in script and index in readme, index
    for tenant in ("iren", "eon"):
        assert f'"{tenant}"' in script


def test_orion_flags_are_explained(compose: dict[str, Any]) -> None:
    readme = (REPO / "orion_config" / "README.md").read_text()
    flags = [arg for arg in compose["services"]["orion"]["command"] if str(arg).startswith("-")]
    for flag in flags:
        assert f"`{flag}" in readme, f"{flag} is not explained in orion_config/README.md"


def test_grafana_datasource_and_dashboard_agree(compose: dict[str, Any]) -> None:
    datasource = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/quantumleap.yaml").read_text())
    uid = datasource["datasources"][0]["uid"]
    dashboard = json.loads((DOCKER / "grafana/dashboards/metering.json").read_text())
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert re.search(r"FROM mt\$tenant\.et[a-z]+", panel["targets"][0]["rawSql"]), panel["title"]
    provider = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/flexmeter.yaml").read_text())
    mounts = {str(v).split(":")[1] for v in compose["services"]["grafana"]["volumes"]}
    assert provider["providers"][0]["options"]["path"] in mounts
    env = compose["services"]["grafana"]["environment"]
    for placeholder in re.findall(r"\$\{(\w+)\}", (DOCKER / "grafana/provisioning/datasources/quantumleap.yaml")
                                  .read_text()):
        assert placeholder in env, placeholder


def test_dockerfile_copies_existing_files_and_installs_the_package(compose: dict[str, Any]) -> None:
    build = compose["services"]["iot-agent"]["build"]
    context = (DOCKER / build["context"]).resolve()
    assert context == REPO
    dockerfile = context / build["dockerfile"]
    lines = [line.strip() for line in dockerfile.read_text().splitlines()]
    copies = [shlex.split(line)[1:] for line in lines if line.startswith("COPY ") and "--from" not in line]
    assert copies
    copied = set()
    for args in copies:
        for source in args[:-1]:
            assert (context / source).exists(), f"COPY {source}: not in the repository"
            copied.add(source)
    assert {"pyproject.toml", "flexmeter", "orion_config", "examples"} <= copied
    pyproject = (REPO / "pyproject.toml").read_text()
    readme = re.search(r'^readme = "([^"]+)"', pyproject, re.M)
    assert readme and readme.group(1) in copied  # setuptools needs it to build
    assert any(re.match(r"RUN pip (wheel|install) .*\.(\s|$)", line + " ") for line in lines)
    assert any(line.startswith("RUN pip install /wheels/") for line in lines)
    ignored = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignored and not set(ignored) & copied
    for name in ("iot-agent", "service", "provision"):
        assert compose["services"][name]["image"] == "flexmeter:latest"


def test_the_provision_job_applies_the_pilots(compose: dict[str, Any]) -> None:
    job = compose["services"]["provision"]
    command = " ".join(job["command"])
    for inventory in re.findall(r"examples/\S+\.yaml", command):
        assert (REPO / inventory).is_file(), inventory
    assert "provision apply" in command
