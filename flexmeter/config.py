"""Every URL, port, path and tenant the project uses, from ``FLEXMETER_*`` environment variables.

One settings object for every component, so that swapping an embedded component for the real FIWARE
Generic Enabler is a change of URL and nothing else.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from flexmeter.errors import FlexmeterError


class ConfigError(FlexmeterError):
    """A ``FLEXMETER_*`` variable holds a value its setting cannot take (the message names the variable)."""


class Settings(BaseSettings):
    """Defaults are the embedded stack on one machine (DESIGN.md §3)."""

    model_config = SettingsConfigDict(env_prefix="FLEXMETER_", env_file=None, extra="ignore")

    data_dir: Path = Field(Path("data"), description="Where embedded components keep their SQLite files.")
    host: str = Field("127.0.0.1", description="Address the embedded servers bind to.")

    broker_port: int = Field(1026, description="Embedded context broker port (Orion's).")
    timeseries_port: int = Field(8668, description="Embedded time-series port (QuantumLeap's).")
    iota_north_port: int = Field(4041, description="IoT Agent north (provisioning) API port.")
    iota_south_port: int = Field(7896, description="IoT Agent south HTTP port (iotagent-json's).")
    iota_coap_port: int = Field(5683, description="IoT Agent south CoAP (UDP) port.")
    service_port: int = Field(5050, description="Business-logic service port.")

    ngsi_url: str = Field("http://127.0.0.1:1026", description="NGSI-v2 context broker (embedded or Orion).")
    ql_url: str = Field("http://127.0.0.1:8668", description="Time series (embedded or QuantumLeap).")
    iota_url: str = Field("http://127.0.0.1:4041", description="IoT Agent north API.")
    service_url: str = Field("http://127.0.0.1:5050", description="Business-logic service.")
    mqtt_url: str = Field("mqtt://127.0.0.1:1883", description="MQTT broker for south traffic "
                          "(mqtt://[user[:password]@]host:port, or mqtts:// for TLS).")
    mqtt_username: str | None = Field(None, description="MQTT user name when the URL carries none.")
    mqtt_password: SecretStr | None = Field(None, description="MQTT password when the URL carries none "
                                            "(keeps it out of command lines).")
    mqtt_ca_file: Path | None = Field(None, description="CA certificate(s) (PEM) trusted for mqtts:// "
                                      "(default: the system's CAs).")
    mqtt_cert_file: Path | None = Field(None, description="Client certificate (PEM) for mqtts:// brokers that "
                                        "require one.")
    mqtt_key_file: Path | None = Field(None, description="Private key (PEM) of the client certificate.")
    mqtt_session_expiry: int = Field(7 * 24 * 3600, ge=0, le=0xFFFFFFFF, description="Seconds the MQTT broker "
                                     "keeps an agent's session, and the QoS 1 messages for it, while it is away.")
    forward_in_flight: int = Field(1, ge=1, le=16, description="Batches an agent has in the context broker at "
                                   "once. 1 suits the embedded broker (its GIL: two concurrent batches cost it "
                                   "10 % of its throughput under overload); Orion applies concurrent batches "
                                   "in parallel and gains from 2-4.")
    amqp_url: str = Field("amqp://guest:guest@127.0.0.1:5672/%2F", description="AMQP broker (Midori).")
    postgres_dsn: str | None = Field(None, description="PostgreSQL DSN for the time-series backend.")

    corpus_dir: Path = Field(Path(__file__).resolve().parents[2] / "shared" / "corpus",
                             description="The public meter frames the decoders' benchmarks read.")
    mbus_duplicate_window: float = Field(900.0, description="Seconds an identical M-Bus telegram (repeated by "
                                         "wM-Bus repeaters or gateways) is dropped as a duplicate.")
    mbus_silence_check: float = Field(30.0, description="Seconds between the M-Bus agent's checks for silent "
                                      "meters.")
    dlms_udp_port: int | None = Field(None, description="DLMS/UDP (wrapper) listener of the DLMS agent: "
                                      "unset = none, 0 = a free port.")
    dlms_udp_host: str = Field("127.0.0.1", description="Address the DLMS/UDP listener binds to.")
    dlms_udp_apikey: str = Field("dlms", description="Service group of meters pushing over DLMS/UDP.")
    dlms_state_dir: Path | None = Field(None, description="Where an earlier DLMS agent kept its invocation "
                                        "counters (dlms-counters.db, migrated into outbox.db at start; default: "
                                        "the agent's data dir).")
    midori_queue: str = Field("midori", description="AMQP queue the Midori agent consumes.")
    midori_apikey: str = Field("midori", description="Service group of Midori messages whose routing key "
                               "names none.")

    notify_workers: int = Field(4, ge=1, description="Threads of the embedded broker sending notifications.")
    notify_queue: int = Field(10_000, ge=1, description="Notifications a tenant may have waiting in the embedded "
                              "broker before new ones are dropped (and counted).")
    notify_timeout: float = Field(5.0, gt=0, description="Seconds the embedded broker waits for a notification "
                                  "receiver (a subscription's own http timeout wins).")
    notify_pipeline: int = Field(32, ge=1, description="Notifications in flight on one connection to a receiver "
                                 "(HTTP pipelining; 1 = off).")
    orion_config: Path | None = Field(None, description="The orion_config/ folder of subscriptions provisioning "
                                      "uses (default: the checkout's, else ./orion_config).")

    service: str = Field("flexmeter", description="Default Fiware-Service (tenant).")
    service_path: str = Field("/", description="Default Fiware-ServicePath.")
    token: str | None = Field(None, description="Bearer token sent to / required by north APIs.")

    def db_path(self, name: str) -> Path:
        """One SQLite file per component under the data dir."""
        return self.data_dir / f"{name}.db"


def load_settings() -> Settings:
    """The settings from the environment; a bad value raises :class:`ConfigError` naming its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"FLEXMETER_{'_'.join(str(part) for part in error['loc']).upper()}={error.get('input')!r}: "
            f"{error['msg']}" for error in exc.errors())
        raise ConfigError(f"bad configuration: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
