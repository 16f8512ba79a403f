"""`flexmeter config`: what a component will use, passwords masked; docs/configuration.md lists every setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from flexmeter.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _config(env: dict[str, str]) -> dict[str, dict[str, str | None]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLEXMETER_")}
    done = subprocess.run([sys.executable, "-m", "flexmeter", "config", "--json"], capture_output=True, text=True,
                          env={**clean, **env}, timeout=60, check=True)
    return {row["env"]: row for row in json.loads(done.stdout)["settings"]}


def test_values_come_from_the_environment_and_passwords_never_show() -> None:
    rows = _config({"FLEXMETER_MIDORI_QUEUE": "midori-b", "FLEXMETER_DLMS_UDP_PORT": "0",
                    "FLEXMETER_MQTT_URL": "mqtts://meter:s3cret@mqtt.example:8883",
                    "FLEXMETER_MQTT_PASSWORD": "other-secret",
                    "FLEXMETER_POSTGRES_DSN": "host=db password=pg-secret dbname=ts"})
    assert rows["FLEXMETER_MIDORI_QUEUE"]["value"] == "midori-b"
    assert rows["FLEXMETER_MIDORI_QUEUE"]["default"] == "midori"
    assert rows["FLEXMETER_DLMS_UDP_PORT"]["value"] == "0" and rows["FLEXMETER_DLMS_UDP_PORT"]["default"] is None
    assert rows["FLEXMETER_MQTT_URL"]["value"] == "mqtts://meter:***@mqtt.example:8883"
    assert rows["FLEXMETER_MQTT_PASSWORD"]["value"] == "***"
    assert rows["FLEXMETER_POSTGRES_DSN"]["value"] == "host=db password=*** dbname=ts"
    text = json.dumps(rows)
    assert "s3cret" not in text and "other-secret" not in text and "pg-secret" not in text


def test_a_bad_value_is_refused_with_the_setting_named() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLEXMETER_")}
    done = subprocess.run([sys.executable, "-m", "flexmeter", "config"], capture_output=True, text=True,
                          env={**clean, "FLEXMETER_DLMS_UDP_PORT": "udp"}, timeout=60)
    assert done.returncode == 2 and "FLEXMETER_DLMS_UDP_PORT='udp'" in done.stderr and "Traceback" not in done.stderr


def test_docs_list_every_setting_as_the_code_defines_it() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = [f"FLEXMETER_{name.upper()}" for name in Settings.model_fields
               if f"`FLEXMETER_{name.upper()}`" not in doc]
    assert missing == []
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLEXMETER_")}
    table = subprocess.run([sys.executable, "-m", "flexmeter", "config", "--markdown"], capture_output=True,
                           text=True, env=clean, timeout=60, check=True).stdout.strip()
    assert table in doc, "regenerate the table with `flexmeter config --markdown`"
