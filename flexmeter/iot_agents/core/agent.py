"""One IoT Agent process: the chosen families sharing one north API, registry, outbox and transports."""

from __future__ import annotations

import hashlib
import logging
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask

from flexmeter.config import get_settings
from flexmeter.iot_agents.core.amqp import AmqpTransport
from flexmeter.iot_agents.core.coap import CoapPortInUse, CoapTransport, claim_port
from flexmeter.iot_agents.core.command_flow import CommandFlow
from flexmeter.iot_agents.core.context import AgentContext
from flexmeter.iot_agents.core.expressions import Expressions
from flexmeter.iot_agents.core.family import Family, Route, load_family
from flexmeter.iot_agents.core.forwarder import Forwarder
from flexmeter.iot_agents.core.json_family import JsonFamily
from flexmeter.iot_agents.core.mapping import Mapper
from flexmeter.iot_agents.core.metrics import AgentMetrics
from flexmeter.iot_agents.core.mqtt import MqttTransport
from flexmeter.iot_agents.core.mqttlink import MqttConfigError, MqttEndpoint
from flexmeter.iot_agents.core.north import NorthHooks, create_north_app
from flexmeter.iot_agents.core.outbox import Outbox
from flexmeter.iot_agents.core.pipeline import Inbound, Pipeline
from flexmeter.iot_agents.core.registry import Registry
from flexmeter.iot_agents.core.south_http import create_south_app
from flexmeter.serving import BackgroundServer, serve

log = logging.getLogger(__name__)


@dataclass
class AgentConfig:
    families: list[str]
    ngsi_url: str
    data_dir: Path
    host: str = "127.0.0.1"
    north_port: int = 4041
    south_port: int = 7896
    mqtt_url: str | None = "mqtt://127.0.0.1:1883"
    """``mqtt://[user[:password]@]host:port`` or ``mqtts://`` (TLS); credentials and TLS files not in the URL
    come from the settings (``FLEXMETER_MQTT_USERNAME``, ``_PASSWORD``, ``_CA_FILE``, ``_CERT_FILE``, ``_KEY_FILE``)."""
    mqtt_endpoint: MqttEndpoint | None = None
    """Overrides ``mqtt_url`` and the settings (in-process agents)."""
    amqp_url: str | None = None
    coap_port: int | None = None
    """CoAP (UDP) south port; 0 = a free port; None = no CoAP server."""
    coap_optional: bool = False
    """When the CoAP port is taken, run without CoAP (a warning) instead of refusing to start: the CLI's
    default port, so that a second agent on one machine still starts."""
    token: str | None = None
    ngsi_token: str | None = None
    command_timeout: float = 30.0
    linger: float = 0.02
    max_batch: int = 1000
    public_url: str | None = None
    durable: bool = False
    extra_families: list[Family] = field(default_factory=list)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        if config.north_port == 0:
            config.north_port = _free_port(config.host)
        if config.coap_port is not None:  # before anything starts: an explicit port in use is fatal
            try:
                config.coap_port = claim_port(config.host, config.coap_port)
            except CoapPortInUse as exc:
                if not config.coap_optional:
                    raise
                log.warning("%s: running without CoAP (--coap-port to choose another)", exc)
                config.coap_port = None
        self.families: list[Family] = [load_family(name) for name in config.families] + config.extra_families
        if not self.families:
            raise ValueError("an agent needs at least one family")
        self.metrics = AgentMetrics()
        self.registry = Registry(config.data_dir / "registry.db", config.data_dir / "secrets.db")
        self.outbox = Outbox(config.data_dir / "outbox.db", durable=config.durable)
        self.mapper = Mapper(Expressions())
        self.forwarder = Forwarder(self.outbox, config.ngsi_url, self.metrics, linger=config.linger,
                                   max_entities=config.max_batch, token=config.ngsi_token,
                                   max_in_flight=get_settings().forward_in_flight)
        self.pipeline = Pipeline(self.registry, self.outbox, self.mapper, self.metrics,
                                 on_persisted=self.forwarder.wake)
        identity = hashlib.sha1(str(config.data_dir.resolve()).encode()).hexdigest()[:12]
        self.routes: list[tuple[Family, Route]] = [(f, r) for f in self.families for r in f.routes]
        endpoint = config.mqtt_endpoint or (MqttEndpoint.from_settings(config.mqtt_url, get_settings())
                                            if config.mqtt_url else None)
        self.mqtt = MqttTransport(endpoint, f"flexmeter-iota-{identity}", self.routes,
                                  self.pipeline.submit) if endpoint is not None else None
        self.amqp = AmqpTransport(config.amqp_url, f"flexmeter.iota.{identity}", self.routes,
                                  self.pipeline.submit) if config.amqp_url else None
        self.coap = CoapTransport(config.host, config.coap_port, self.routes, self.pipeline.submit,
                                  pending=self.pipeline.pending) if config.coap_port is not None else None
        by_protocol: dict[str, Family] = {}
        for family in self.families:
            for protocol in (*family.protocols(), family.name):
                by_protocol.setdefault(protocol, family)
        default = next((f for f in self.families if f.name == "json"), None) or JsonFamily()
        self.north_url = config.public_url or f"http://{config.host}:{config.north_port}"
        self.commands = CommandFlow(self.registry, self.outbox, self.metrics, config.data_dir / "commands.db",
                                    ngsi_url=config.ngsi_url, north_url=self.north_url, families=by_protocol,
                                    default_family=default, publish=self._publish, wake=self.forwarder.wake,
                                    timeout=config.command_timeout, token=config.ngsi_token,
                                    notify_token=config.token)
        self.pipeline.reply_handler = self.commands.on_reply
        self.pipeline.families = {f.name: f for f in self.families}
        if self.mqtt is not None:
            self.pipeline.after_acks.append(self.mqtt.flush_acks)
        self.pipeline.resolver.on_autoprovision = self.commands.device_changed
        self.hooks = NorthHooks()
        self.hooks.device_changed = self.commands.device_changed
        self.hooks.notification = self.commands.handle_notification
        self.hooks.status = self._status
        self.south: BackgroundServer | None = None
        self._pipeline_started = False
        self.contexts: list[AgentContext] = []
        """The families started (``Family.start``), in start order, with the context each was given."""
        self.metrics.registry.on_collect(self._collect)

    def _collect(self) -> None:
        self.metrics.outbox_depth.set(self.outbox.depth())
        self.metrics.dead_letters.set(self.outbox.dead_count())

    def _status(self) -> dict[str, object]:
        return {"mqtt": None if self.mqtt is None else self.mqtt.connected.is_set(),
                "mqttError": None if self.mqtt is None else self.mqtt.last_error,
                "amqp": None if self.amqp is None else self.amqp.connected.is_set(),
                "coap": None if self.coap is None else self.coap.url,
                "pipeline": self.pipeline.pending(), "inbox": self.outbox.inbox_depth(),
                "commandSubscriptionsPending": self.commands.subscriptions_pending(),
                "backoff": self.forwarder.backoff}

    def _publish(self, topic: str, payload: bytes) -> None:
        if self.mqtt is None:
            log.error("cannot send a command to %s: the agent has no MQTT broker (--mqtt-url)", topic)
            return
        try:
            self.mqtt.publish(topic, payload)
        except OSError as exc:  # the command times out to ERROR; the broker status says why
            log.error("cannot publish the command on %s: %s", topic, exc)

    def submit(self, item: Inbound) -> None:
        self.pipeline.submit(item)

    def north_app(self) -> Flask:
        from flexmeter import __version__

        return create_north_app(self.registry, self.outbox, self.metrics, self.hooks, port=self.config.north_port,
                                version=__version__, token=self.config.token,
                                families=[f.name for f in self.families])

    def start(self) -> None:
        self.forwarder.start()
        self.forwarder.wake()  # whatever a previous run left in the outbox
        self.commands.start()
        # Families first: state a family keeps (the DLMS invocation counters) must be loaded before the
        # pipeline decodes what the previous run left in the inbox; what they submit meanwhile is queued.
        self._start_families()
        self.pipeline.start()
        self._pipeline_started = True
        south_app = create_south_app(self.routes, self.pipeline.submit, poll=self.commands.poll)
        self.south = BackgroundServer(south_app, host=self.config.host, port=self.config.south_port, threads=8)
        self.south.start()
        if self.coap is not None:
            self.coap.start()
        if self.mqtt is not None:
            self.mqtt.start()
        if self.amqp is not None:
            self.amqp.start()
        # Ready means subscribed (a first session gets nothing published before its SUBACK); a broker that
        # is down does not block the start: the transports keep reconnecting in the background.
        deadline = time.monotonic() + 5
        for transport in (self.mqtt, self.amqp):
            if transport is None or not transport.routes:
                continue
            while not transport.connected.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline or getattr(transport, "refused", False):
                    log.warning("%s not connected yet; continuing, it keeps retrying", type(transport).__name__)
                    break
        print(f"south on {self.south.url}", flush=True)
        if self.coap is not None:
            print(f"coap on {self.coap.url}", flush=True)

    def _start_families(self) -> None:
        """Each family's lifecycle hook, before the pipeline takes its first message (a family that cannot
        start, e.g. a UDP port in use, stops the agent from starting: a configuration error must not go
        unnoticed)."""
        for family in self.families:
            context = AgentContext(family, self.pipeline, self.registry, self.outbox, self.metrics,
                                   data_dir=self.config.data_dir)
            try:
                family.start(context)
            except BaseException:
                context.close()
                self._stop_families()
                raise
            self.contexts.append(context)

    def _stop_families(self) -> None:
        while self.contexts:
            context = self.contexts.pop()
            try:
                context.family.stop()
            except Exception:
                log.exception("stopping the family %s", context.family.name)
            context.close()

    def stop(self) -> None:
        """Stop taking input (families' own listeners and tasks first), let the pipeline persist what it
        has, then stop the rest."""
        self._stop_families()
        for transport in (self.mqtt, self.amqp):
            if transport is not None:
                try:
                    transport.stop()
                except Exception:
                    log.exception("stopping a transport")
        if self.south is not None:
            self.south.stop()
        if self.coap is not None:
            self.coap.stop()
        if self._pipeline_started:
            self.pipeline.stop()
        self.commands.stop()
        self.forwarder.stop()
        self.outbox.close()
        self.registry.close()


def run_agent(config: AgentConfig) -> None:
    # Hand the GIL over sooner (default 5 ms): an MQTT ack waits for the pipeline thread's commit, and the
    # MQTT broker's in-flight window stalls while it waits.
    sys.setswitchinterval(0.0005)
    logging.getLogger("pika").setLevel(logging.WARNING)  # pika logs every connection step at INFO
    try:
        agent = Agent(config)
    except MqttConfigError as exc:  # a bad --mqtt-url or TLS file: say so, no traceback
        print(f"agent: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from exc
    agent.start()
    log.info("IoT Agent with families %s; north %s, broker %s", [f.name for f in agent.families],
             agent.north_url, config.ngsi_url)
    serve(agent.north_app(), config.host, config.north_port, threads=8, on_stop=[agent.stop])
