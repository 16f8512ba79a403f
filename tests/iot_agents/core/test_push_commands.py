"""HTTP push commands (iotagent-json's devices with an ``endpoint``) and the north token on ``/notify``.

The device is a real HTTP server on a free port; the agent and the embedded broker are real processes.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.iot_agents.core.conftest import AgentFactory, must_get_entity, provision, wait_for
from tests.support.processes import FlexmeterProcess, free_port


class HttpDevice:
    """A device's HTTP endpoint: records every request and answers each command as ``answers`` says:
    ``(status, body)`` (a dict is sent as JSON), or ``("sleep", seconds)`` to answer too late."""

    def __init__(self, answers: dict[str, tuple[Any, Any]]) -> None:
        self.answers = answers
        self.requests: list[dict[str, Any]] = []
        device = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                payload = json.loads(body)
                device.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                        "body": payload})
                status, answer = device.answers[next(iter(payload))]
                if status == "sleep":
                    time.sleep(answer)
                    status, answer = 200, {}
                raw = json.dumps(answer).encode() if isinstance(answer, dict) else str(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json" if isinstance(answer, dict) else "text/plain")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # the agent gave up waiting (timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def device() -> Iterator[HttpDevice]:
    dev = HttpDevice({"ping": (200, {"ping": "pong", "extra": "not asked", "other": 1}), "fail": (500, "boom"),
                      "raw": (200, "done"), "slow": ("sleep", 3.0), "reboot": (201, {"reboot": "rebooting"})})
    try:
        yield dev
    finally:
        dev.close()


def _command(ngsi: str, headers: dict[str, str], entity: str, name: str, value: object) -> None:
    response = requests.post(f"{ngsi}/v2/entities/{entity}/attrs", headers=headers, timeout=5,
                             json={name: {"type": "command", "value": value}})
    assert response.status_code == 204, response.text


def _settled(ngsi: str, headers: dict[str, str], entity: str, name: str) -> tuple[str, Any]:
    """(status, info) once the command is no longer PENDING."""
    found = wait_for(lambda: (e := must_get_entity(ngsi, headers, entity))[f"{name}_status"]["value"]
                     not in ("PENDING", "UNKNOWN") and e, timeout=15)
    return found[f"{name}_status"]["value"], found[f"{name}_info"]["value"]


def _subscriptions(ngsi: str, headers: dict[str, str], count: int) -> list[dict[str, Any]]:
    subs: list[dict[str, Any]] = wait_for(lambda: len(s := requests.get(f"{ngsi}/v2/subscriptions", headers=headers,
                                                                        timeout=5).json()) == count and s)
    return subs


def test_http_push_commands(agent_factory: AgentFactory, module_broker: FlexmeterProcess, device: HttpDevice,
                            tenant: dict[str, str]) -> None:
    ngsi = module_broker.url
    agent = agent_factory(ngsi, "json", extra=("--command-timeout", "1"))
    key, other = f"k{uuid.uuid4().hex[:8]}", f"g{uuid.uuid4().hex[:8]}"
    commands = [{"name": n, "type": "command"} for n in ("ping", "fail", "raw", "slow", "reboot", "extra")]
    dead = f"http://127.0.0.1:{free_port()}/cmd"
    provision(agent.url, tenant, [{"apikey": key, "entity_type": "Lamp"},
                                  {"apikey": other, "entity_type": "Pump", "transport": "HTTP",
                                   "endpoint": f"{device.url}/group"}],
              [{"device_id": "lamp1", "protocol": "IoTA-JSON", "apikey": key, "transport": "HTTP",
                "endpoint": f"{device.url}/lamp1", "commands": commands},
               {"device_id": "lamp2", "protocol": "IoTA-JSON", "apikey": key, "transport": "HTTP", "endpoint": dead,
                "commands": [{"name": "ping", "type": "command"}]},
               {"device_id": "pump1", "protocol": "IoTA-JSON", "apikey": other,
                "commands": [{"name": "ping", "type": "command"}]},
               {"device_id": "lamp3", "protocol": "IoTA-JSON", "apikey": key, "transport": "HTTP",
                "endpoint": f"'{device.url}/' + deviceId", "commands": [{"name": "ping", "type": "command"}]}])
    _subscriptions(ngsi, tenant, 4)
    for entity in ("Lamp:lamp1", "Lamp:lamp2", "Pump:pump1", "Lamp:lamp3"):
        wait_for(functools.partial(must_get_entity, ngsi, tenant, entity))

    # the answer's member named after the command is its _info (another command's member sets that one too)
    _command(ngsi, tenant, "Lamp:lamp1", "ping", {"level": 3})
    assert _settled(ngsi, tenant, "Lamp:lamp1", "ping") == ("OK", "pong")
    (sent,) = device.requests
    assert sent["path"] == "/lamp1" and sent["body"] == {"ping": {"level": 3}}
    assert sent["headers"]["fiware-service"] == tenant["Fiware-Service"]
    assert sent["headers"]["fiware-servicepath"] == "/malmo"
    assert sent["headers"]["content-type"] == "application/json"
    lamp = must_get_entity(ngsi, tenant, "Lamp:lamp1")
    assert (lamp["extra_status"]["value"], lamp["extra_info"]["value"]) == ("OK", "not asked")
    assert lamp["reboot_status"]["value"] == "UNKNOWN" and "other" not in lamp and "other_info" not in lamp

    _command(ngsi, tenant, "Lamp:lamp1", "raw", "go")
    assert _settled(ngsi, tenant, "Lamp:lamp1", "raw") == ("OK", "done")  # not JSON: the body itself
    _command(ngsi, tenant, "Lamp:lamp1", "fail", 1)
    assert _settled(ngsi, tenant, "Lamp:lamp1", "fail") == ("ERROR",
                                                            f"the device at {device.url}/lamp1 answered HTTP 500: boom")
    _command(ngsi, tenant, "Lamp:lamp2", "ping", "x")
    assert _settled(ngsi, tenant, "Lamp:lamp2", "ping") == ("ERROR",
                                                            f"cannot reach the device at {dead}: connection refused")
    # iotagent-node-lib documents endpoint as a URL (no expression): a JEXL one is used as given, and fails
    sent_before = len(device.requests)
    _command(ngsi, tenant, "Lamp:lamp3", "ping", "x")
    status, info = _settled(ngsi, tenant, "Lamp:lamp3", "ping")
    assert status == "ERROR" and "is not a usable URL" in info and "not evaluated as an expression" in info, info
    assert device.url in info and "deviceId" in info  # the text as provisioned (Orion's forbidden chars removed)
    assert len(device.requests) == sent_before  # nothing was sent anywhere
    started = time.monotonic()
    _command(ngsi, tenant, "Lamp:lamp1", "slow", "x")
    late = f"the device at {device.url}/lamp1 did not answer within 1 s"
    assert _settled(ngsi, tenant, "Lamp:lamp1", "slow") == ("ERROR", late)
    assert time.monotonic() - started < 2.9  # the agent's timeout, not the device's late answer

    # the group's transport and endpoint apply to its devices; 201 counts as an answer
    _command(ngsi, tenant, "Pump:pump1", "ping", "p")
    assert _settled(ngsi, tenant, "Pump:pump1", "ping") == ("OK", "pong")
    assert device.requests[-1]["path"] == "/group"
    _command(ngsi, tenant, "Lamp:lamp1", "reboot", "now")
    assert _settled(ngsi, tenant, "Lamp:lamp1", "reboot") == ("OK", "rebooting")
    assert [r["body"] for r in device.requests if r["path"] == "/lamp1"] == [
        {"ping": {"level": 3}}, {"raw": "go"}, {"fail": 1}, {"slow": "x"}, {"reboot": "now"}]  # one each
    health = requests.get(f"{agent.url}/health", timeout=5).json()
    assert health["deadLetters"] == 0


def test_notify_requires_the_token_and_subscriptions_send_it(agent_factory: AgentFactory, tmp_path: Path,
                                                             module_broker: FlexmeterProcess, device: HttpDevice,
                                                             tenant: dict[str, str]) -> None:
    ngsi = module_broker.url
    data_dir = tmp_path / "agent-token"
    key = f"k{uuid.uuid4().hex[:8]}"
    commands = [{"name": "ping", "type": "command"}, {"name": "reboot", "type": "command"}]
    first = agent_factory(ngsi, "json", data_dir=data_dir)
    provision(first.url, tenant, [{"apikey": key, "entity_type": "Lamp"}],
              [{"device_id": "lamp9", "protocol": "IoTA-JSON", "transport": "HTTP", "endpoint": f"{device.url}/l9",
                "commands": commands}])
    (plain,) = _subscriptions(ngsi, tenant, 1)
    wait_for(lambda: must_get_entity(ngsi, tenant, "Lamp:lamp9"))
    assert plain["notification"]["http"]["url"].endswith("/notify")
    first.stop()

    token = f"tok-{uuid.uuid4().hex}"
    agent = agent_factory(ngsi, "json", data_dir=data_dir, extra=("--token", token))
    # the subscription made without a token is replaced by one that sends it (Orion's httpCustom)
    (sub,) = wait_for(lambda: (s := _subscriptions(ngsi, tenant, 1)) and "httpCustom" in s[0]["notification"] and s)
    custom = sub["notification"]["httpCustom"]
    assert custom["url"] == f"{agent.url}/notify" and custom["headers"] == {"X-Auth-Token": token}
    assert sub["notification"]["onlyChangedAttrs"] is True and sub["notification"]["attrs"] == ["ping", "reboot"]

    # anyone else reaching the north port cannot trigger a command
    notification = {"subscriptionId": sub["id"], "data": [{"id": "Lamp:lamp9", "type": "Lamp",
                                                            "ping": {"type": "command", "value": "forged"}}]}
    for headers in ({}, {"X-Auth-Token": "wrong"}, {"Authorization": "Bearer wrong"}):
        refused = requests.post(f"{agent.url}/notify", json=notification, timeout=5,
                                headers={**tenant, **headers})
        assert refused.status_code == 401, refused.text
        assert refused.json() == {"name": "UNAUTHORIZED",
                                  "message": "a valid X-Auth-Token (or Authorization: Bearer) is required"}
    assert requests.get(f"{agent.url}/iot/devices", headers=tenant, timeout=5).status_code == 401

    # the broker's own notifications carry it: the round trip works, one command at a time
    _command(ngsi, tenant, "Lamp:lamp9", "ping", "hello")
    assert _settled(ngsi, tenant, "Lamp:lamp9", "ping") == ("OK", "pong")
    _command(ngsi, tenant, "Lamp:lamp9", "reboot", "now")
    assert _settled(ngsi, tenant, "Lamp:lamp9", "reboot") == ("OK", "rebooting")
    assert [r["body"] for r in device.requests] == [{"ping": "hello"}, {"reboot": "now"}]  # "forged" never sent
    authorised = requests.get(f"{agent.url}/iot/devices", headers={**tenant, "X-Auth-Token": token}, timeout=5)
    assert authorised.status_code == 200 and authorised.json()["count"] == 1
