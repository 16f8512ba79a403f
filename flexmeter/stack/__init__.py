"""The embedded stack on one machine: `flexmeter up` and the embedded MQTT broker."""
